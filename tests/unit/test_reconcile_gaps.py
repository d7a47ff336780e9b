"""Gap detection rules: which scenes are gaps, of which one type, and which are queued."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from reconcile import gaps
from stashplugin.settings import Settings
from worker.metadata import FIELDS, build_metadata, fingerprint, metadata_hash

FILE = "/media/movies/harbor.mp4"


def settings(**raw):
    return Settings.from_raw(raw, strict=True)


def scene(**over):
    base = {
        "id": "7",
        "title": "Harbor at dawn",
        "details": "Line one\nLine two",
        "date": "2021-06-01",
        "studio": {"name": "Blue Harbor"},
        "performers": [{"name": "Ana Lima"}],
        "tags": [{"name": "Boats"}, {"name": "Sea"}],
        "files": [{"path": "/data/harbor.mp4", "basename": "harbor.mp4", "size": 10}],
        "updated_at": "2024-05-01T10:00:00Z",
    }
    base.update(over)
    return base


def listed_like(desired, **over):
    """What a listing shows for an item PlexSync synced (tags cut to three, as Plex does)."""
    item = {
        "title": desired.get("title", ""),
        "titleSort": "",
        "summary": desired.get("summary", ""),
        "tagline": "",
        "studio": desired.get("studio", ""),
        "originallyAvailableAt": desired.get("originallyAvailableAt", ""),
        "actors": desired.get("actors", [])[:3],
        "genres": desired.get("genres", [])[:3],
        "collections": [],
        "file_stem": "harbor",
        "files": [FILE],
    }
    item.update(over)
    return item


def written_for(desired):
    return {
        f: fingerprint(f, desired[f])
        for f in ("title", "summary", "studio", "originallyAvailableAt", "actors", "genres")
        if f in desired
    }


def synced_state(desired):
    return {"hash": metadata_hash(desired), "updated_at": "2024-05-01T10:00:00Z", "synced_at": 1714557600.0}


def detect(desired, state, listed, written, s=None):
    return gaps.detect(
        "7",
        desired,
        metadata_hash(desired),
        "2024-05-01T10:00:00Z",
        state,
        listed,
        written,
        s or settings(),
        rating_key=3,
    )


def test_a_synced_scene_plex_still_shows_is_no_gap():
    desired = build_metadata(scene(), settings())
    assert detect(desired, synced_state(desired), listed_like(desired), written_for(desired)) is None


def test_a_scene_changed_in_stash_since_its_sync_is_stale():
    old = build_metadata(scene(), settings())
    new = build_metadata(scene(title="Renamed"), settings())
    gap = detect(new, synced_state(old), listed_like(old), written_for(old))
    assert (gap.kind, gap.enqueue, gap.reason) == (gaps.STALE, True, "changed in Stash since the last sync")


def test_a_scene_never_synced_is_stale():
    desired = build_metadata(scene(), settings())
    gap = detect(desired, None, listed_like(desired), None)
    assert gap.kind == gaps.STALE and gap.reason == "never synced by PlexSync"


def test_a_settings_change_makes_synced_scenes_stale_without_any_edit():
    before = build_metadata(scene(), settings())
    after = build_metadata(scene(), settings(sync_collection=True))
    gap = detect(after, synced_state(before), listed_like(before), written_for(before))
    assert gap.kind == gaps.STALE


def test_an_item_plexsync_never_wrote_to_is_stale_even_with_an_equal_hash():
    desired = build_metadata(scene(), settings())
    gap = detect(desired, synced_state(desired), listed_like(desired), None)
    assert gap.kind == gaps.STALE and "replaced" in gap.reason


def test_an_entry_without_hash_falls_back_to_updated_at():
    desired = build_metadata(scene(), settings())
    old_entry = {"updated_at": "2024-05-01T09:00:00+00:00", "synced_at": 1}
    assert gaps.stale_reason("h", "2024-05-01T10:00:00Z", old_entry, {}) != ""
    same = {"updated_at": "2024-05-01T12:00:00+02:00", "synced_at": 1}
    assert gaps.stale_reason("h", "2024-05-01T10:00:00Z", same, written_for(desired)) == ""


def test_file_name_as_title_and_missing_summary_are_empty_in_plex():
    desired = build_metadata(scene(), settings())
    listed = listed_like(desired, title="harbor", summary="", studio="", actors=[], genres=[])
    gap = detect(desired, synced_state(desired), listed, written_for(desired))
    assert gap.kind == gaps.EMPTY
    assert gap.fields == ["title", "summary", "studio", "actors", "genres"]
    assert gap.reason == "Plex shows the file name as title and no summary, studio, actors, genres"


def test_empty_in_plex_wins_over_stale():
    old = build_metadata(scene(), settings())
    new = build_metadata(scene(title="Renamed"), settings())
    gap = detect(new, synced_state(old), listed_like(old, summary=""), written_for(old))
    assert gap.kind == gaps.EMPTY


def test_a_scene_without_title_whose_item_shows_the_file_name_is_not_empty():
    desired = build_metadata(
        scene(title="", details="", studio=None, performers=[], tags=[], date=None), settings()
    )
    listed = listed_like(desired, title="harbor", summary="", studio="", actors=[], genres=[])
    assert gaps.empty_fields(desired, listed) == []


def test_fields_switched_off_are_never_empty_in_plex():
    s = settings(sync_summary=False, sync_tags=False)
    desired = build_metadata(scene(), s)
    assert gaps.empty_fields(desired, listed_like(desired, summary="", genres=[])) == []


def test_a_tag_list_cut_short_by_the_listing_is_not_a_gap():
    tags = [{"name": "Tag %d" % n} for n in range(8)]
    desired = build_metadata(scene(tags=tags), settings())
    assert len(listed_like(desired)["genres"]) == 3
    assert detect(desired, synced_state(desired), listed_like(desired), written_for(desired)) is None


def test_a_value_edited_in_plex_is_drift_and_queued():
    desired = build_metadata(scene(), settings())
    gap = detect(
        desired, synced_state(desired), listed_like(desired, title="My own title"), written_for(desired)
    )
    assert (gap.kind, gap.fields, gap.enqueue) == (gaps.DRIFT, ["title"], True)


def test_drift_is_reported_not_queued_when_plex_edits_are_preserved():
    desired = build_metadata(scene(), settings())
    gap = detect(
        desired,
        synced_state(desired),
        listed_like(desired, studio="Another"),
        written_for(desired),
        settings(preserve_plex_edits=True),
    )
    assert gap.kind == gaps.DRIFT and gap.enqueue is False and "Preserve Plex edits" in gap.reason


def test_a_plex_value_equal_to_stash_is_not_drift_even_without_a_fingerprint_match():
    desired = build_metadata(scene(), settings())
    written = dict(written_for(desired), title="0000")
    assert gaps.drift_fields(desired, listed_like(desired), written) == []


def test_missing_scene_is_queued_unless_not_found_scenes_are_skipped():
    assert gaps.missing("7", "no item", settings()).enqueue is True
    skipped = gaps.missing("7", "no item", settings(skip_not_found=True))
    assert skipped.kind == gaps.MISSING and skipped.enqueue is False


def test_ambiguous_scene_is_never_queued():
    gap = gaps.ambiguous("7", "2 Plex items match")
    assert gap.kind == gaps.AMBIGUOUS and gap.enqueue is False and gap.kind not in gaps.GAP_TYPES


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-01T10:00:00Z", 1714557600.0),
        ("2024-05-01T12:00:00+02:00", 1714557600.0),
        ("2024-05-01T10:00:00.5Z", 1714557600.5),
        ("2024-05-01T10:00:00.123456789+00:00", 1714557600.123457),
        ("2024-05-01 10:00:00", 1714557600.0),
        ("not a time", None),
        ("", None),
    ],
)
def test_stash_times_are_read_in_every_form_stash_writes(text, expected):
    got = gaps.parse_time(text)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_listed_item_reads_what_a_listing_shows():
    video = ET.fromstring(
        '<Video ratingKey="3" title="harbor" summary="Line one&#10;Line two" studio="Blue Harbor" '
        'originallyAvailableAt="2021-06-01"><Media><Part file="/media/movies/harbor.mp4"/></Media>'
        '<Genre tag="Boats"/><Genre tag="Sea"/><Role tag="Ana Lima"/></Video>'
    )
    item = gaps.listed_item(video)
    assert item["summary"] == "Line one\nLine two" and item["file_stem"] == "harbor"
    assert list(item["genres"]) == ["Boats", "Sea"] and list(item.get("actors")) == ["Ana Lima"]
    assert item["tagline"] == "" and item.get("collections") == () and item.get("poster") is None
    assert list(item["files"]) == ["/media/movies/harbor.mp4"]
    # Every field the metadata compares can be read from a listing (a field added there is here).
    assert all(item[field] is not None for field in FIELDS)
