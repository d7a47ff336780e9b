"""PlexWriter against the Plex emulator over real HTTP, driven by the real plexapi."""

from __future__ import annotations

import pytest
from plexapi.server import PlexServer

from emulators.world import PLEX_TOKEN
from stashplugin.settings import Settings
from worker.errors import classify
from worker.plex_writer import PlexWriter, PosterMemo, fetch_item, read_item, trigger_scan

FILE = "/media/videos/Clip One.mp4"
COVER = "http://stash.local:9999/scene/7/screenshot?t=1700000000"


@pytest.fixture
def section(plex):
    return plex.add_section("Movies", locations=["/media/videos"])


@pytest.fixture
def rk(plex, section):
    return plex.add_item(section, file=FILE, size=1234)


@pytest.fixture
def server(plex):
    return PlexServer(plex.url, PLEX_TOKEN)


class Covers:
    """Stash's side of image downloads: url -> bytes, counting downloads."""

    def __init__(self, data=b"\x89PNG cover one"):
        self.data = data
        self.downloads = 0

    def __call__(self, url):
        self.downloads += 1
        return self.data


def settings(**raw):
    return Settings.from_raw(raw, strict=True)


def scene(**overrides):
    base = {
        "id": "7",
        "title": "A Title",
        "code": "ABC-123",
        "details": "Line one\nLine two",
        "director": "Dee Rector",
        "date": "2021-06-05",
        "studio": {"name": "Studio One"},
        "performers": [{"name": "Anna"}, {"name": "Bob"}],
        "tags": [{"name": "Outdoor"}, {"name": "Drama"}],
        "files": [{"path": FILE, "basename": "Clip One.mp4", "size": 1234}],
        "paths": {"screenshot": COVER},
    }
    base.update(overrides)
    return base


def writer(server, tmp_path, covers=None, **raw):
    return PlexWriter(server, settings(**raw), image_source=covers, memo=PosterMemo(str(tmp_path)))


def test_fresh_item_gets_every_field(plex, server, rk, tmp_path):
    w = writer(server, tmp_path, sync_collection=True, sync_sort_title=True, tagline_source="code")
    result = w.sync(scene(), rk)
    item = plex.item(rk)
    assert item["title"] == "A Title" and item["titleSort"] == "A Title"
    assert item["summary"] == "Line one\nLine two"
    assert item["tagline"] == "ABC-123"
    assert item["studio"] == "Studio One"
    assert item["originallyAvailableAt"] == "2021-06-05" and item["year"] == 2021
    assert item["actors"] == ["Anna", "Bob"]
    assert sorted(item["genres"]) == ["Drama", "Outdoor"]
    assert item["collections"] == ["Studio One"]
    assert not result.unchanged and "title" in result.changed and "genres" in result.changed


def test_fresh_item_costs_one_get_and_one_put(plex, server, rk, tmp_path):
    w = writer(server, tmp_path)
    plex.clear_log()
    result = w.sync(scene(), rk)
    assert plex.count(method="GET") == 1
    assert plex.count(method="PUT") == 1
    assert result.plex_requests == len(plex.requests) == 2


def test_unchanged_scene_sends_no_put_and_costs_one_get(plex, server, rk, tmp_path):
    w = writer(server, tmp_path, sync_collection=True, sync_sort_title=True, tagline_source="director")
    w.sync(scene(), rk)
    plex.clear_log()
    result = w.sync(scene(), rk)
    assert plex.count(method="PUT") == 0
    assert plex.count(method="GET") == 1
    assert len(plex.requests) == 1
    assert result.unchanged and result.changed == [] and result.plex_requests == 1


def test_title_change_sends_one_put_and_leaves_other_fields_intact(plex, server, rk, tmp_path):
    w = writer(server, tmp_path)
    w.sync(scene(), rk)
    before = plex.item(rk)
    plex.clear_log()
    result = w.sync(scene(title="Renamed"), rk)
    after = plex.item(rk)
    assert plex.count(method="PUT") == 1
    put = [r for r in plex.requests if r.method == "PUT"][0]
    assert (
        "title.value" in put.query
        and "summary.value" not in put.query
        and not any("genre" in k for k in put.query)
    )
    assert result.changed == ["title"]
    assert after["title"] == "Renamed"
    for field in ("summary", "studio", "originallyAvailableAt", "actors", "genres"):
        assert after[field] == before[field], field


def test_removed_performer_and_tag_are_removed_in_plex(plex, server, rk, tmp_path):
    w = writer(server, tmp_path)
    w.sync(scene(), rk)
    w.sync(scene(performers=[{"name": "Anna"}], tags=[{"name": "Drama"}, {"name": "Night"}]), rk)
    item = plex.item(rk)
    assert item["actors"] == ["Anna"]
    assert sorted(item["genres"]) == ["Drama", "Night"]


def test_emptied_stash_fields_clear_plex(plex, server, rk, tmp_path):
    w = writer(server, tmp_path)
    w.sync(scene(), rk)
    w.sync(scene(details="", studio=None, date=None, performers=[], tags=[]), rk)
    item = plex.item(rk)
    assert item["summary"] == "" and not item["studio"] and not item["originallyAvailableAt"]
    assert item["actors"] == [] and item["genres"] == []
    assert item["title"] == "A Title"


def test_keep_plex_when_empty_leaves_plex_values(plex, server, rk, tmp_path):
    writer(server, tmp_path).sync(scene(), rk)
    plex.clear_log()
    writer(server, tmp_path, keep_plex_when_empty=True).sync(scene(details="", studio=None, tags=[]), rk)
    item = plex.item(rk)
    assert plex.count(method="PUT") == 0
    assert item["summary"] == "Line one\nLine two" and item["studio"] == "Studio One"
    assert sorted(item["genres"]) == ["Drama", "Outdoor"]


def test_tags_beyond_max_tags_are_not_sent(plex, server, rk, tmp_path):
    tags = [{"name": "tag%02d" % i} for i in range(12)] + [{"name": "TAG00"}]
    writer(server, tmp_path, max_tags=5).sync(scene(tags=tags), rk)
    assert sorted(plex.item(rk)["genres"]) == ["tag00", "tag01", "tag02", "tag03", "tag04"]


def test_unicode_round_trips_exactly(plex, server, rk, tmp_path):
    title = "\u201cQuoted\u201d \u2014 \U0001f469\u200d\U0001f469\u200d\U0001f467 \u6771\u4eac \u05e9\u05dc\u05d5\u05dd"
    details = "Caf\u00e9 \u2026\n\tsecond line \u0645\u0631\u062d\u0628\u0627\r\nthird"
    tags = [{"name": "\u00c9t\u00e9"}, {"name": "a, b & c"}, {"name": "100% / 50%"}]
    w = writer(server, tmp_path)
    w.sync(scene(title=title, details=details, tags=tags, performers=[{"name": "\u674e\u5c0f\u9f99"}]), rk)
    current = read_item(fetch_item(server, rk))
    assert current["title"] == title
    assert current["summary"] == details.replace("\r\n", "\n")
    assert sorted(current["genres"]) == sorted(t["name"] for t in tags)
    assert current["actors"] == ["\u674e\u5c0f\u9f99"]
    plex.clear_log()
    assert w.sync(
        scene(title=title, details=details, tags=tags, performers=[{"name": "\u674e\u5c0f\u9f99"}]), rk
    ).unchanged
    assert plex.count(method="PUT") == 0


def test_very_long_cjk_summary_is_accepted_and_not_rewritten(plex, server, rk, tmp_path):
    w = writer(server, tmp_path)
    details = "\u6771\u4eac\u306e\u591c\u3002" * 2000
    w.sync(scene(details=details), rk)
    stored = plex.item(rk)["summary"]
    assert stored and details.startswith(stored)
    plex.clear_log()
    assert w.sync(scene(details=details), rk).unchanged
    assert plex.count(method="PUT") == 0


def test_removing_a_tag_with_special_characters(plex, server, rk, tmp_path):
    w = writer(server, tmp_path)
    w.sync(scene(tags=[{"name": "a, b & c"}, {"name": "100% / 50%"}, {"name": "Keep"}]), rk)
    w.sync(scene(tags=[{"name": "Keep"}]), rk)
    assert plex.item(rk)["genres"] == ["Keep"]


def test_written_fields_are_locked(plex, server, rk, tmp_path):
    writer(server, tmp_path).sync(scene(), rk)
    locked = plex.item(rk)["locked"]
    assert {"title", "summary", "studio", "originallyAvailableAt", "genre", "actor"} <= locked
    assert read_item(fetch_item(server, rk))["locked"] >= {"title", "genres", "actors"}


def test_lock_fields_off_leaves_fields_unlocked(plex, server, rk, tmp_path):
    writer(server, tmp_path, lock_fields=False).sync(scene(), rk)
    assert plex.item(rk)["locked"] == set()


def test_preserve_plex_edits_keeps_a_value_edited_in_plex(plex, server, rk, tmp_path):
    w = writer(server, tmp_path, preserve_plex_edits=True)
    w.sync(scene(), rk)
    plex.update_item(rk, title="Edited in Plex", locked={"title", "summary"})
    w.sync(scene(title="Renamed in Stash", details="New details"), rk)
    item = plex.item(rk)
    assert item["title"] == "Edited in Plex"
    assert item["summary"] == "New details"  # still the value PlexSync wrote: not a Plex edit


def test_preserve_plex_edits_fills_only_empty_fields_of_an_edited_item(plex, server, section, tmp_path):
    rk = plex.add_item(
        section,
        file="/media/videos/other.mp4",
        size=1,
        title="Curated title",
        summary="Curated summary",
        genres=["Curated"],
    )
    writer(server, tmp_path, preserve_plex_edits=True).sync(scene(), rk)
    item = plex.item(rk)
    assert item["title"] == "Curated title" and item["summary"] == "Curated summary"
    assert item["genres"] == ["Curated"]
    assert item["studio"] == "Studio One" and item["actors"] == ["Anna", "Bob"]


def test_poster_is_uploaded_once_and_not_again_when_the_cover_is_unchanged(plex, server, rk, tmp_path):
    covers = Covers()
    w = writer(server, tmp_path, covers)
    first = w.sync(scene(), rk)
    assert first.poster_uploaded and plex.item(rk)["poster"] == covers.data
    plex.clear_log()
    second = w.sync(scene(), rk)
    assert not second.poster_uploaded and second.unchanged
    assert plex.count(method="POST") == 0 and covers.downloads == 1


def test_poster_memo_survives_a_new_process(plex, server, rk, tmp_path):
    covers = Covers()
    writer(server, tmp_path, covers).sync(scene(), rk)
    plex.clear_log()
    writer(server, tmp_path, covers).sync(scene(), rk)
    assert plex.count(method="POST") == 0 and covers.downloads == 1


def test_memo_files_hold_no_token_and_no_urls(plex, server, rk, tmp_path):
    writer(server, tmp_path, Covers(), sync_background=True).sync(scene(), rk)
    contents = (tmp_path / "poster_memo.jsonl").read_text(encoding="utf-8")
    assert contents and PLEX_TOKEN not in contents and "screenshot" not in contents


def test_new_cover_url_with_the_same_image_is_not_uploaded_again(plex, server, rk, tmp_path):
    covers = Covers()
    w = writer(server, tmp_path, covers)
    w.sync(scene(), rk)
    plex.clear_log()
    w.sync(scene(paths={"screenshot": COVER.replace("1700000000", "1700000999")}), rk)
    assert covers.downloads == 2 and plex.count(method="POST") == 0


def test_changed_cover_is_uploaded(plex, server, rk, tmp_path):
    covers = Covers()
    w = writer(server, tmp_path, covers)
    w.sync(scene(), rk)
    covers.data = b"\x89PNG cover two"
    result = w.sync(scene(paths={"screenshot": COVER + "1"}), rk)
    assert result.poster_uploaded and plex.item(rk)["poster"] == b"\x89PNG cover two"
    assert plex.item(rk)["poster_uploads"] == 2


def test_background_is_uploaded_only_with_sync_background(plex, server, section, tmp_path):
    rk_off = plex.add_item(section, file="/media/videos/off.mp4", size=1)
    rk_on = plex.add_item(section, file="/media/videos/on.mp4", size=1)
    covers = Covers()
    writer(server, tmp_path, covers).sync(scene(), rk_off)
    result = writer(server, tmp_path, covers, sync_background=True).sync(scene(), rk_on)
    assert plex.item(rk_off)["art_uploads"] == 0
    assert plex.item(rk_on)["art_uploads"] == 1 and plex.item(rk_on)["art"] == covers.data
    assert result.art_uploaded and result.poster_uploaded


def test_images_are_not_downloaded_when_poster_sync_is_off(plex, server, rk, tmp_path):
    covers = Covers()
    writer(server, tmp_path, covers, sync_poster=False).sync(scene(), rk)
    assert covers.downloads == 0 and plex.item(rk)["poster_uploads"] == 0


def test_dry_run_writes_nothing_and_tells_what_would_change(plex, server, rk, tmp_path):
    covers = Covers()
    w = writer(server, tmp_path, covers)
    plex.clear_log()
    result = w.sync(scene(), rk, dry_run=True)
    assert len(plex.requests) == 1 and covers.downloads == 0
    assert result.diff["title"] == "A Title" and result.diff["poster"] == COVER
    assert plex.item(rk)["title"] == "Clip One"


def test_plex_error_propagates_and_is_classified_without_the_token(plex, server, rk, tmp_path):
    plex.fail_next(1, status=503)
    with pytest.raises(Exception) as caught:
        writer(server, tmp_path).sync(scene(), rk)
    failure = classify(caught.value)
    assert failure.error_class == "plex_unavailable" and failure.transient
    assert PLEX_TOKEN not in str(caught.value) and PLEX_TOKEN not in str(failure)


def test_missing_item_is_classified_as_not_in_plex(server, tmp_path):
    with pytest.raises(Exception) as caught:
        writer(server, tmp_path).sync(scene(), 999999)
    assert classify(caught.value).error_class == "not_in_plex"


def test_trigger_scan_asks_plex_to_scan_one_folder(plex, server, section):
    plex.clear_log()
    trigger_scan(server, section, "/media/videos/new folder")
    assert plex.scans == [(section, "/media/videos/new folder")]
    assert len(plex.requests) == 1
