"""The content settings as pure decisions: parsing and validation, title templates, filters, the
rating scale, managed collections and labels, and which hook edits they make relevant."""

from __future__ import annotations

import os

import pytest

from stashplugin.hook import relevant_update_fields, synced_fields
from stashplugin.settings import SPEC, Settings, SettingsError, parse_names, take_over_legacy
from worker.filtered import FilteredScenes
from worker.metadata import (
    build_metadata,
    diff_metadata,
    filter_reason,
    metadata_hash,
    render_title,
    stash_rating,
    written_after,
)


def settings(**raw):
    return Settings.from_raw(raw, strict=True)


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("collections_from", "studio, network", "studio, parent_studio and/or groups"),
        ("title_template", "{studio} - {name}", "use only the placeholders"),
        ("title_template", "{title", "use only the placeholders"),
        ("content_rating", "X" * 65, "at most 64 characters"),
        ("labels", "A, " + "B" * 129, "at most 128 characters"),
        ("exclude_tags", "x" * 200, "at most 128 characters"),
        ("sync_rating", "sometimes", "switch it on or off"),
        ("only_organized", "perhaps", "switch it on or off"),
    ],
)
def test_bad_content_settings_name_the_setting_in_one_sentence(name, value, words):
    with pytest.raises(SettingsError) as err:
        settings(**{name: value})
    text = str(err.value)
    assert SPEC[name][2] in text and name in text and words in text and "\n" not in text


def test_names_may_hold_commas_and_quotes_in_double_quotes():
    assert parse_names('Adults, "Net, ""Q"" é", ,  東京 ') == ("Adults", 'Net, "Q" é', "東京")
    assert settings(labels='A, "B, C"').label_names == ("A", "B, C")


def test_studio_as_collection_means_the_studio_source():
    assert settings(sync_collection=True).collection_sources == ("studio",)
    assert settings(sync_collection=True, collections_from="groups").collection_sources == (
        "studio",
        "groups",
    )
    assert settings(collections_from="Parent_Studio").collection_sources == ("parent_studio",)


def test_community_skip_unorganized_is_taken_over_only_when_ours_is_unset():
    def taken(**raw):
        return settings(**take_over_legacy(dict(raw, plexHost="plex.lan", plexToken="t"))[0]).only_organized

    assert taken(skipUnorganized=True) is True
    assert taken(skipUnorganized=False) is False
    assert taken(skipUnorganized=True, only_organized=False) is False
    assert taken() is False


def test_the_hook_reads_bad_content_settings_leniently():
    s = Settings.from_raw({"title_template": "{nope}", "sync_rating": True}, strict=False)
    assert s.title_template == "" and s.sync_rating is True


@pytest.mark.parametrize(
    "rating100, plex", [(85, "8.5"), (87, "8.7"), (100, "10"), (1, "0.1"), (None, ""), (20, "2"), (150, "10")]
)
def test_stash_rating_becomes_plex_user_rating(rating100, plex):
    assert stash_rating(rating100) == plex


@pytest.mark.parametrize(
    "template, values, title",
    [
        ("{studio} - {title}", {"title": "T"}, "T"),
        ("{studio} - {title}", {"title": "T", "studio": "S"}, "S - T"),
        ("{studio} - {date} - {title}", {"title": "T", "studio": "S"}, "S - T"),
        ("[{code}] {title} ({year})", {"title": "T"}, "T"),
        ("[{code}] {title} ({year})", {"title": "T", "year": "2021"}, "T (2021)"),
        ("Scene: {title}", {"title": "T"}, "Scene: T"),
        ("Scene: {title}", {}, ""),
        ("Fixed", {}, "Fixed"),
    ],
)
def test_title_template_collapses_empty_parts(template, values, title):
    assert render_title(template, values) == title


def test_filters_give_a_reason_in_order():
    s = settings(only_organized=True, require_stash_id=True, exclude_tags="Private")
    assert filter_reason({"organized": False}, s) == "not_organized"
    assert filter_reason({"organized": True, "stash_ids": []}, s) == "no_stash_id"
    scene = {"organized": True, "stash_ids": [{"stash_id": "abc"}], "tags": [{"name": "PRIVATE"}]}
    assert filter_reason(scene, s) == "excluded_tag"
    assert filter_reason(dict(scene, tags=[]), s) == ""
    assert filter_reason({}, settings()) == ""


def test_a_rating_only_job_is_synced_only_while_sync_rating_is_on():
    assert relevant_update_fields(["rating100"]) == ["rating100"]  # the hook keeps it
    assert synced_fields(["rating100"], settings()) == []  # the drain drops it
    assert synced_fields(["rating100"], settings(sync_rating=True)) == ["rating100"]
    assert synced_fields(["stash_ids"], settings(require_stash_id=True)) == ["stash_ids"]


def test_fields_the_new_settings_read_are_synced_with_their_own_switch_off():
    off = dict(sync_studio=False, sync_performers=False, sync_tags=False, sync_date=False)
    assert synced_fields(["studio_id"], settings(collections_from="parent_studio", **off)) == ["studio_id"]
    assert synced_fields(
        ["performer_ids", "date"], settings(title_template="{performers} {year}", **off)
    ) == ["performer_ids", "date"]
    assert synced_fields(["tag_ids"], settings(exclude_tags="Private", **off)) == ["tag_ids"]
    assert synced_fields(["tag_ids"], settings(**off)) == []


def test_filtered_scenes_are_counted_once_and_forgotten_when_they_pass(tmp_path):
    filtered = FilteredScenes(str(tmp_path))
    for _ in range(3):
        filtered.note("1", "not_organized")
    filtered.note("2", "excluded_tag")
    filtered.flush()
    again = FilteredScenes(str(tmp_path))
    assert again.counts() == {"not_organized": 1, "excluded_tag": 1}
    again.note("1", "")
    again.flush()
    assert FilteredScenes(str(tmp_path)).counts() == {"excluded_tag": 1}


def test_filtered_entries_that_are_not_reasons_are_dropped_not_a_crash(tmp_path):
    """Valid JSON that is not scene -> reason (a hand edit): View Queue Status and the drain go on."""
    with open(os.path.join(str(tmp_path), "filtered.json"), "w") as fh:
        fh.write('{"": [null], "3": {"a": 1}, "4": 7, "5": "not_organized"}')
    filtered = FilteredScenes(str(tmp_path))
    assert filtered.counts() == {"not_organized": 1}
    filtered.note("6", "excluded_tag")
    filtered.flush()
    assert FilteredScenes(str(tmp_path)).counts() == {"not_organized": 1, "excluded_tag": 1}


def test_settings_nobody_uses_leave_the_hash_of_every_scene_as_it_was():
    scene = {"title": "T", "studio": {"name": "S"}, "tags": [{"name": "A"}], "rating100": 80}
    before = {
        "title": "T",
        "summary": "",
        "studio": "S",
        "originallyAvailableAt": "",
        "actors": [],
        "genres": ["A"],
    }
    assert metadata_hash(build_metadata(scene, settings())) == metadata_hash(before)
    assert metadata_hash(build_metadata(scene, settings(content_rating="XXX"))) != metadata_hash(before)


def test_managed_lists_remove_only_their_own_names_and_claim_only_what_they_added():
    s = settings(labels="Ours, Both")
    desired = build_metadata({"title": "T"}, s)
    current = {"labels": ["Theirs", "Both"], "locked": set()}
    changes = diff_metadata(desired, current, s)
    assert changes["labels"] == {"add": ["Ours"], "remove": []}
    written = written_after(desired, current, changes)
    assert written["labels"] == ["Ours"]  # "Both" was there before: not claimed
    off = settings()
    after = {"labels": ["Theirs", "Both", "Ours"], "locked": set()}
    assert diff_metadata(build_metadata({"title": "T"}, off), after, off, written)["labels"] == {
        "add": [],
        "remove": ["Ours"],
    }
