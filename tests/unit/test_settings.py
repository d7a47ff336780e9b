"""Settings: every value validated once, every bad one named with what to put there."""

from __future__ import annotations

import os

import pytest
import yaml

from stashplugin.settings import (
    SPEC,
    Settings,
    SettingsError,
    parse_path_map,
    read_hook_cache,
    take_over_legacy,
    write_hook_cache,
)
from tests.conftest import ROOT

GOOD = {"plex_url": "http://192.168.1.10:32400", "plex_token": "abcd1234"}


def manifest():
    with open(os.path.join(ROOT, "PlexSync.yml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_untouched_settings_take_their_defaults():
    s = Settings.from_raw({})
    assert s.sync_title is True and s.sync_collection is False
    assert s.max_retries == 5 and s.strict_matching is True and s.libraries == []


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("max_retries", "lots", "whole number from 1 to 100"),
        ("max_retries", 0, "whole number from 1 to 100"),
        ("max_retries", 2.5, "whole number"),
        ("max_tags", 1000, "1 to 500"),
        ("read_timeout", -1, "number from 1 to 600"),
        ("connect_timeout", True, "number"),
        ("sync_title", "maybe", "switch it on or off"),
        ("path_map", "/data:/media", "stash_prefix=plex_prefix"),
        ("path_map", "/data=", "both sides"),
        ("tagline_source", "studio", "code, director"),
        ("recovery_rates", "fast", "positive numbers"),
        ("recover_error_classes", "plex down!", "dead-letter reasons"),
    ],
)
def test_each_bad_value_names_the_setting_and_what_to_put_there(name, value, words):
    with pytest.raises(SettingsError) as err:
        Settings.from_raw(dict(GOOD, **{name: value}), need_plex=True)
    text = str(err.value)
    assert SPEC[name][2] in text and name in text and words in text
    assert "\n" not in text


@pytest.mark.parametrize(
    "url, problem",
    [
        ("", "enter your Plex server's address"),
        ("ftp://plex:32400", "http or https"),
        ("http://plex:99999", "http or https"),
        ("http://", "http or https"),
    ],
)
def test_plex_url_is_checked(url, problem):
    with pytest.raises(SettingsError) as err:
        Settings.from_raw(dict(GOOD, plex_url=url), need_plex=True)
    assert "Plex URL" in str(err.value) and problem in str(err.value)


def test_plex_url_without_scheme_gets_http():
    assert (
        Settings.from_raw(dict(GOOD, plex_url="plex.local:32400/"), need_plex=True).plex_url
        == "http://plex.local:32400"
    )


def test_missing_token_says_where_to_find_it():
    with pytest.raises(SettingsError) as err:
        Settings.from_raw({"plex_url": "http://plex:32400"}, need_plex=True)
    assert "Plex token" in str(err.value) and "X-Plex-Token" in str(err.value)


def test_hook_reads_bad_values_leniently():
    s = Settings.from_raw({"max_retries": "lots", "path_map": "nonsense", "sync_tags": False}, strict=False)
    assert s.max_retries == 5 and s.path_pairs == [] and s.sync_tags is False


def test_path_map_accepts_several_pairs_and_windows_paths():
    assert parse_path_map("/data=/media; D:\\Videos=/mnt/v\n/x=/y") == [
        ("/data", "/media"),
        ("D:\\Videos", "/mnt/v"),
        ("/x", "/y"),
    ]


def test_library_names_are_split_and_trimmed():
    assert Settings.from_raw({"plex_libraries": " Movies , Clips,, "}).libraries == ["Movies", "Clips"]


def test_hook_cache_never_holds_the_token(tmp_path):
    s = Settings.from_raw(dict(GOOD, sync_tags=False))
    write_hook_cache(str(tmp_path), s)
    raw = open(os.path.join(str(tmp_path), "data", "settings_cache.json"), encoding="utf-8").read()
    assert "abcd1234" not in raw and "plex_token" not in raw and "plex_url" not in raw
    assert read_hook_cache(str(tmp_path)).sync_tags is False


def test_manifest_lists_every_setting_with_display_name_description_and_default():
    settings = manifest()["settings"]
    assert set(settings) == set(SPEC)
    types = {"str": "STRING", "bool": "BOOLEAN", "int": "NUMBER", "float": "NUMBER"}
    for name, entry in settings.items():
        kind, default, display, description = SPEC[name]
        assert entry["displayName"] == display
        assert entry["description"] == description and (
            "Default" in description or "(required)" in description
        )
        assert entry["type"] == types[kind]


def test_manifest_is_a_stash_plugin_with_both_hooks():
    with open(os.path.join(ROOT, "PlexSync.yml"), encoding="utf-8") as fh:
        assert fh.readline().strip() == "# requires: PythonDepManager"
    m = manifest()
    assert m["interface"] == "raw" and m["exec"] == ["python3", "{pluginDir}/plexsync.py"]
    triggers = {t for h in m["hooks"] for t in h["triggeredBy"]}
    assert triggers == {
        "Scene.Update.Post",
        "Scene.Create.Post",
        "Tag.Update.Post",
        "Tag.Destroy.Post",
        "Tag.Merge.Post",
        "Performer.Update.Post",
        "Performer.Destroy.Post",
        "Studio.Update.Post",
        "Studio.Destroy.Post",
        "Group.Update.Post",
        "Group.Destroy.Post",
    }
    for key in ("name", "description", "version", "url"):
        assert m[key]


def test_every_task_in_the_manifest_has_a_mode_the_entrypoint_knows():
    import plexsync

    tasks = manifest()["tasks"]
    names = [t["name"] for t in tasks]
    assert "Process Queue" in names and "View Queue Status" in names
    for task in tasks:
        assert task["defaultArgs"]["mode"] in plexsync.TASKS, task["name"]
        assert len(task["description"]) > 20
    destructive = [t for t in tasks if t["defaultArgs"]["mode"] in ("clear_queue", "clear_dlq", "purge_dlq")]
    assert destructive and all("Destructive" in t["description"] for t in destructive)


def test_relative_data_folder_lives_inside_the_plugin_folder(tmp_path):
    from stashplugin.settings import resolve_data_dir

    plugin = str(tmp_path / "PlexSync")
    assert resolve_data_dir(Settings.from_raw({"data_dir": "state"}), plugin) == os.path.join(plugin, "state")
    assert resolve_data_dir(Settings.from_raw({}), plugin) == os.path.join(plugin, "data")
    absolute = str(tmp_path / "elsewhere")
    assert resolve_data_dir(Settings.from_raw({"data_dir": absolute}), plugin) == absolute


# --- taking over the Community "Plex Sync" settings ---------------------------------------------


def test_the_community_plugins_plex_settings_are_taken_over_when_ours_are_empty():
    old = {"plexHost": "192.168.1.10", "plexPort": "32400", "plexToken": "tok-123456", "cleanTitles": True}
    raw, taken = take_over_legacy(old)
    assert taken == ["plex_url", "plex_token", "skip_tls_verify"]
    # As that plugin connected: https, certificate errors ignored.
    assert raw["plex_url"] == "https://192.168.1.10:32400" and raw["plex_token"] == "tok-123456"
    assert raw["skip_tls_verify"] is True
    assert {k: raw[k] for k in old} == old  # the old settings stay
    assert Settings.from_raw(raw, need_plex=True).plex_url == "https://192.168.1.10:32400"


def test_nothing_is_taken_over_when_plexsync_has_its_own_plex_settings():
    old = {"plexHost": "old-host", "plexToken": "old-token", "plex_url": "http://new:32400"}
    assert take_over_legacy(old) == (old, [])
    assert take_over_legacy({"plexToken": "x", "plex_token": "mine"})[1] == []


def test_a_host_typed_with_its_scheme_keeps_it_and_gets_the_port():
    raw, _ = take_over_legacy({"plexHost": "http://plex.lan", "plexPort": "32401", "plexToken": "t-1234"})
    assert raw["plex_url"] == "http://plex.lan:32401"
    raw, _ = take_over_legacy({"plexHost": "http://plex.lan:32400/", "plexToken": "t-1234"})
    assert raw["plex_url"] == "http://plex.lan:32400"
    assert take_over_legacy({})[1] == [] and take_over_legacy({"plexPort": "1"})[1] == []


def test_the_hook_puts_only_the_bad_settings_default_in_its_place():
    s = Settings.from_raw(
        {
            "path_map": "nonsense",
            "reconcile_scope": "24h",
            "recovery_rates": "1,3",
            "tagline_source": "Code",
            "labels": "A, B",
            "title_template": "{nope}",
        },
        strict=False,
    )
    assert s.path_pairs == [] and s.title_template == ""
    assert s.reconcile_scope == "24h" and s.recovery_rate_steps == (1.0, 3.0)
    assert s.tagline_source == "code" and s.label_names == ("A", "B")


def test_every_setting_is_an_attribute_even_without_validation():
    s = Settings()
    assert s == Settings.from_raw({}) and s.to_dict() == {name: spec[1] for name, spec in SPEC.items()}
    assert s.path_pairs == [] and s.recovery_rate_steps == (2.0, 5.0, 10.0) and s.collection_sources == ()


def test_settings_never_show_the_token():
    assert "abcd1234" not in repr(Settings.from_raw(GOOD)) and "192.168.1.10" in repr(Settings.from_raw(GOOD))
