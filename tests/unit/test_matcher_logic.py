"""Matching rules over a saved path index: ranking, ambiguity, strict mode, the match cache.

No HTTP here: the index is written to disk as a previous drain would have left it, and the
server stand-in refuses every request, which proves that a hit costs no Plex request.
"""

from __future__ import annotations

import os
import time

import pytest

from stashplugin.settings import Settings
from sync.journal_map import JournalMap
from worker import plex_index
from worker.errors import AmbiguousMatch, NotInPlex, SyncFailure
from worker.matcher import MatchCache, Matcher, settings_signature
from worker.paths import PathMapper
from worker.plex_index import PlexIndex


class OfflineServer:
    """Stands in for a connected PlexServer; any request fails the test."""

    machineIdentifier = "machine-1"

    def query(self, key, *args, **kwargs):
        raise AssertionError("unexpected Plex request: %s" % key)


def write_index(data_dir, sections, built_at=None, libraries=()):
    """The path index as a full build leaves it (`plex_index.jsonl`, replacing any there).
    sections: {id: (title, [locations], {rating_key: (file, size)})}."""
    path = os.path.join(data_dir, plex_index.FILE_NAME)
    if os.path.exists(path):
        os.remove(path)
    meta = {
        "v": plex_index.FORMAT,
        "server": "machine-1",
        "libraries": sorted(n.casefold() for n in libraries),
        "built_at": time.time() if built_at is None else built_at,
        "sections": {},
    }
    entries = {plex_index.META: meta}
    for sid, (title, locations, items) in sections.items():
        meta["sections"][str(sid)] = {"title": title, "locations": locations, "refreshed_at": 1700000000}
        for rk, (f, size) in items.items():
            entries[str(rk)] = [sid, [f], [size], 1700000000 + int(rk)]
    JournalMap(path).put_many(entries)


def settings(**raw):
    return Settings.from_raw(raw, strict=True)


def scene(path, size=None, scene_id="1", more=()):
    files = [{"path": path, "basename": path.rsplit("/", 1)[-1], "size": size}]
    files += [{"path": p, "basename": p.rsplit("/", 1)[-1], "size": s} for p, s in more]
    return {"id": scene_id, "files": files}


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path)


def test_exact_mapped_path_matches_without_requests(data_dir):
    write_index(
        data_dir, {1: ("Movies", ["/media"], {10: ("/media/a/clip.mp4", 5), 11: ("/media/b/clip.mp4", 5)})}
    )
    matcher = Matcher(OfflineServer(), settings(path_map="/data=/media"), data_dir)
    match = matcher.match(scene("/data/a/clip.mp4", 5))
    assert (match.rating_key, match.how, match.confidence) == (10, "exact", 1.0)
    assert match.plex_file == "/media/a/clip.mp4"
    assert matcher.requests == 0


def test_case_difference_matches_loosely(data_dir):
    write_index(data_dir, {1: ("Movies", ["D:\\Media"], {10: ("D:\\Media\\Clip.MP4", 5)})})
    matcher = Matcher(OfflineServer(), settings(path_map="/data=D:\\Media"), data_dir)
    match = matcher.match(scene("/data/clip.mp4", 5))
    assert (match.rating_key, match.how) == (10, "loose")
    assert 0 < match.confidence < 1


def test_filename_fallback_uses_size_to_pick_one(data_dir):
    write_index(
        data_dir, {1: ("Movies", ["/plex"], {10: ("/plex/x/clip.mp4", 100), 11: ("/plex/y/clip.mp4", 200)})}
    )
    matcher = Matcher(OfflineServer(), settings(), data_dir)
    match = matcher.match(scene("/stash/clip.mp4", 200))
    assert (match.rating_key, match.how) == (11, "name_size")


def test_same_name_without_size_is_ambiguous_under_strict(data_dir):
    write_index(
        data_dir, {1: ("Movies", ["/plex"], {10: ("/plex/x/clip.mp4", 100), 11: ("/plex/y/clip.mp4", 200)})}
    )
    matcher = Matcher(OfflineServer(), settings(strict_matching=True), data_dir)
    with pytest.raises(AmbiguousMatch) as err:
        matcher.match(scene("/stash/clip.mp4", None))
    text = str(err.value)
    assert "2 Plex items" in text and "file name" in text and "Strict matching" in text
    assert err.value.error_class == "ambiguous_match" and not err.value.transient


def test_same_path_in_two_libraries_is_ambiguous_under_strict(data_dir):
    write_index(
        data_dir, {1: ("Movies", ["/m"], {10: ("/m/a.mp4", 1)}), 2: ("More", ["/m"], {20: ("/m/a.mp4", 1)})}
    )
    with pytest.raises(AmbiguousMatch, match="exact path"):
        Matcher(OfflineServer(), settings(strict_matching=True), data_dir).match(scene("/m/a.mp4", 1))


def test_without_strict_the_newest_item_in_a_covering_library_wins(data_dir):
    write_index(
        data_dir,
        {
            1: ("Movies", ["/elsewhere"], {30: ("/m/a.mp4", 1)}),
            2: ("More", ["/m"], {10: ("/m/a.mp4", 1), 20: ("/x/a.mp4", 1)}),
        },
    )
    match = Matcher(OfflineServer(), settings(strict_matching=False), data_dir).match(scene("/m/a.mp4", 1))
    assert match.rating_key == 10 and match.how == "exact"
    assert {c.rating_key for c in match.candidates} == {10, 30}
    assert match.confidence < 1.0


def test_better_rule_beats_more_candidates(data_dir):
    write_index(
        data_dir, {1: ("Movies", ["/m"], {10: ("/m/A.mp4", 1), 11: ("/other/a.mp4", 1), 12: ("/m/a.mp4", 1)})}
    )
    match = Matcher(OfflineServer(), settings(strict_matching=True), data_dir).match(scene("/m/a.mp4", 1))
    assert (match.rating_key, match.how) == (12, "exact")


def test_primary_file_wins_a_tie_between_scene_files(data_dir):
    write_index(data_dir, {1: ("Movies", ["/m"], {10: ("/m/second.mp4", 1), 11: ("/m/first.mp4", 1)})})
    s = scene("/m/first.mp4", 1, more=[("/m/second.mp4", 1)])
    assert Matcher(OfflineServer(), settings(), data_dir).match(s).rating_key == 11


def test_second_file_is_used_when_the_first_is_not_in_plex(data_dir):
    write_index(data_dir, {1: ("Movies", ["/m"], {10: ("/m/second.mp4", 1)})})
    s = scene("/m/first.mp4", 1, more=[("/m/second.mp4", 1)])
    match = Matcher(OfflineServer(), settings(), data_dir).match(s)
    assert match.rating_key == 10 and match.file == "/m/second.mp4"


def test_same_name_but_other_size_is_not_trusted_under_strict(data_dir):
    write_index(data_dir, {1: ("Movies", ["/m"], {10: ("/m/clip.mp4", 999)})})
    matcher = Matcher(OfflineServer(), settings(strict_matching=True), data_dir)
    with pytest.raises(NotInPlex, match="size differs"):
        matcher.match(scene("/stash/clip.mp4", 5))
    loose = Matcher(OfflineServer(), settings(strict_matching=False), data_dir).match(
        scene("/stash/clip.mp4", 5)
    )
    assert loose.rating_key == 10 and loose.confidence <= 0.25


def test_scene_without_files_is_a_permanent_no_file_failure(data_dir):
    with pytest.raises(SyncFailure) as err:
        Matcher(OfflineServer(), settings(), data_dir).match({"id": "3", "files": []})
    assert err.value.error_class == "no_file" and not err.value.transient


def test_cached_match_is_used_by_a_new_process(data_dir):
    write_index(data_dir, {1: ("Movies", ["/m"], {10: ("/m/a.mp4", 1)})})
    first = Matcher(OfflineServer(), settings(), data_dir)
    first.match(scene("/m/a.mp4", 1, scene_id="5"))
    first.flush()
    os.remove(os.path.join(data_dir, plex_index.FILE_NAME))  # a cache hit does not need the index
    match = Matcher(OfflineServer(), settings(), data_dir).match(scene("/m/a.mp4", 1, scene_id="5"))
    assert (match.rating_key, match.how) == (10, "cache")


def test_cached_match_is_ignored_when_the_scene_file_changed(data_dir):
    write_index(data_dir, {1: ("Movies", ["/m"], {10: ("/m/a.mp4", 1), 11: ("/m/b.mp4", 1)})})
    matcher = Matcher(OfflineServer(), settings(), data_dir)
    matcher.match(scene("/m/a.mp4", 1, scene_id="5"))
    match = matcher.match(scene("/m/b.mp4", 1, scene_id="5"))
    assert (match.rating_key, match.how) == (11, "exact")


def test_cached_matches_are_dropped_when_path_mapping_changes(data_dir):
    write_index(data_dir, {1: ("Movies", ["/m"], {10: ("/m/a.mp4", 1)})})
    first = Matcher(OfflineServer(), settings(), data_dir)
    first.match(scene("/m/a.mp4", 1, scene_id="5"))
    first.flush()
    other = settings(path_map="/x=/y")
    assert MatchCache(data_dir, settings_signature(OfflineServer(), other)).get("5") is None
    assert MatchCache(data_dir, settings_signature(OfflineServer(), settings())).get("5")["rating_key"] == 10


def test_invalidate_forgets_the_cached_item_in_the_index_too(data_dir):
    write_index(data_dir, {1: ("Movies", ["/m"], {10: ("/m/a.mp4", 1)})})
    matcher = Matcher(OfflineServer(), settings(), data_dir)
    matcher.match(scene("/m/a.mp4", 1, scene_id="5"))
    matcher.invalidate("5")
    assert matcher.cache.get("5") is None
    assert matcher.index.lookup("/m/a.mp4", matcher.mapper).rule is None


def test_still_matches_compares_the_items_current_files(data_dir):
    write_index(data_dir, {1: ("Movies", ["D:\\M"], {10: ("D:\\M\\a.mp4", 1)})})
    matcher = Matcher(OfflineServer(), settings(path_map="/m=D:\\M"), data_dir)
    match = matcher.match(scene("/m/a.mp4", 1))
    assert matcher.still_matches(match, ["d:\\m\\A.mp4"])
    assert not matcher.still_matches(match, ["D:\\M\\moved\\a.mp4"])


def test_match_cache_batches_writes_and_merges_other_processes(data_dir):
    one, two = MatchCache(data_dir, flush_every=1000), MatchCache(data_dir, flush_every=1000)
    one.put("1", {"rating_key": 1})
    assert not os.path.exists(os.path.join(data_dir, "match_cache.jsonl"))
    two.put("2", {"rating_key": 2})
    one.flush()
    two.flush()
    fresh = MatchCache(data_dir)
    assert fresh.get("1")["rating_key"] == 1 and fresh.get("2")["rating_key"] == 2
    assert fresh.clear() == 2 and MatchCache(data_dir).get("1") is None


def test_corrupt_match_cache_is_moved_aside_and_matching_goes_on(data_dir, capsys):
    write_index(data_dir, {1: ("Movies", ["/m"], {10: ("/m/a.mp4", 1)})})
    with open(os.path.join(data_dir, "match_cache.json"), "w") as fh:
        fh.write("{not json")
    match = Matcher(OfflineServer(), settings(), data_dir).match(scene("/m/a.mp4", 1))
    assert match.rating_key == 10
    assert any(".corrupt-" in n for n in os.listdir(data_dir))
    assert "Match cache" in capsys.readouterr().err


def test_index_older_than_a_day_needs_a_full_rebuild(data_dir):
    write_index(data_dir, {1: ("Movies", ["/m"], {10: ("/m/a.mp4", 1)})}, built_at=time.time() - 2 * 86400)
    assert "older" in PlexIndex(data_dir).full_rebuild_needed(OfflineServer(), [])
    write_index(data_dir, {1: ("Movies", ["/m"], {10: ("/m/a.mp4", 1)})})
    index = PlexIndex(data_dir)
    assert index.full_rebuild_needed(OfflineServer(), []) == ""
    assert "Plex libraries" in index.full_rebuild_needed(OfflineServer(), ["Other"])
    assert PlexIndex(str(os.path.join(data_dir, "empty"))).full_rebuild_needed(OfflineServer(), [])


def test_lookup_reports_the_rule_and_forget_removes_an_item(data_dir):
    write_index(data_dir, {1: ("Movies", ["/m"], {10: ("/m/a.mp4", 1)})})
    index = PlexIndex(data_dir)
    found = index.lookup("/s/a.mp4", PathMapper([("/s", "/m")]))
    assert found.rule == "exact" and [c.rating_key for c in found.candidates] == [10]
    assert index.forget(10) and not index.forget(10)
    index.flush()
    assert PlexIndex(data_dir).lookup("/s/a.mp4", PathMapper([("/s", "/m")])).rule is None
