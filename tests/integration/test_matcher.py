"""Matching Stash scenes to Plex items against the Plex emulator over real HTTP, driven by plexapi."""

from __future__ import annotations

import os
import time

import pytest
from plexapi.server import PlexServer

from emulators.world import PLEX_TOKEN
from stashplugin.settings import Settings
from worker.errors import AmbiguousMatch, NotInPlex, SyncFailure
from worker.matcher import Matcher
from worker.paths import PathMapper
from worker.plex_index import PlexIndex

LONG_AGO = int(time.time()) - 30 * 86400


@pytest.fixture
def server(plex):
    return PlexServer(plex.url, PLEX_TOKEN)


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "data")


def settings(plex, **raw):
    return Settings.from_raw(dict(raw, plex_url=plex.url, plex_token=PLEX_TOKEN), strict=True, need_plex=True)


def scene(path, size=None, scene_id="1"):
    return {
        "id": scene_id,
        "files": [{"path": path, "basename": path.replace("\\", "/").rsplit("/", 1)[-1], "size": size}],
    }


def listings(plex):
    """Library listing requests (`/library/sections/N/all`) Plex has answered so far."""
    return sum(
        1 for r in plex.requests if r.path.startswith("/library/sections/") and r.path.endswith("/all")
    )


def add_old(plex, section_id, file, size=0, n=0):
    """An item scanned long ago (distinct addedAt values, as a real library has)."""
    return plex.add_item(section_id, file, size=size, addedAt=LONG_AGO + n)


def test_exact_path_matches_across_different_mounts(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/media/videos"])
    add_old(plex, movies, "/media/videos/studio/other.mp4", 10, 1)
    wanted = add_old(plex, movies, "/media/videos/studio/clip one.mp4", 20, 2)
    matcher = Matcher(server, settings(plex, path_map="/data=/media/videos"), data_dir)
    match = matcher.match(scene("/data/studio/clip one.mp4", 20))
    assert (match.rating_key, match.how, match.confidence) == (wanted, "exact", 1.0)


def test_windows_plex_paths_match_a_linux_stash(plex, server, data_dir):
    movies = plex.add_section("Movies", ["D:\\Media"])
    wanted = add_old(plex, movies, "D:\\Media\\Studio\\Clip.mp4", 20)
    matcher = Matcher(server, settings(plex, path_map="/data=D:\\Media"), data_dir)
    assert matcher.match(scene("/data/Studio/Clip.mp4", 20)).rating_key == wanted
    assert matcher.match(scene("/data/studio/clip.mp4", 20, scene_id="2")).how == "loose"


def test_filename_fallback_finds_a_file_without_path_mapping(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/plex/movies"])
    wanted = add_old(plex, movies, "/plex/movies/deep/folder/unique-name.mkv", 777)
    match = Matcher(server, settings(plex), data_dir).match(scene("/stash/unique-name.mkv", 777))
    assert (match.rating_key, match.how) == (wanted, "name_size")


def test_filename_fallback_uses_size_to_tell_same_named_files_apart(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/plex"])
    add_old(plex, movies, "/plex/a/video.mp4", 1000, 1)
    wanted = add_old(plex, movies, "/plex/b/video.mp4", 2000, 2)
    match = Matcher(server, settings(plex, strict_matching=True), data_dir).match(
        scene("/stash/video.mp4", 2000)
    )
    assert (match.rating_key, match.how) == (wanted, "name_size")


def test_same_named_files_are_ambiguous_under_strict_matching(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/plex"])
    add_old(plex, movies, "/plex/a/video.mp4", 1000, 1)
    add_old(plex, movies, "/plex/b/video.mp4", 1000, 2)
    with pytest.raises(AmbiguousMatch) as err:
        Matcher(server, settings(plex, strict_matching=True), data_dir).match(scene("/stash/video.mp4", 1000))
    assert "2 Plex items" in str(err.value) and "file name and size" in str(err.value)


def test_without_strict_matching_the_best_candidate_is_chosen(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/plex"])
    add_old(plex, movies, "/plex/a/video.mp4", 1000, 1)
    newest = add_old(plex, movies, "/plex/b/video.mp4", 1000, 2)
    match = Matcher(server, settings(plex, strict_matching=False), data_dir).match(
        scene("/stash/video.mp4", 1000)
    )
    assert match.rating_key == newest and len(match.candidates) == 2 and match.confidence < 0.75


def test_library_setting_restricts_which_libraries_are_searched(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/plex/movies"])
    other = plex.add_section("Home Videos", ["/plex/home"])
    add_old(plex, movies, "/plex/movies/clip.mp4", 5, 1)
    wanted = add_old(plex, other, "/plex/home/clip.mp4", 5, 2)
    s = settings(plex, plex_libraries="Home Videos", strict_matching=True)
    matcher = Matcher(server, s, data_dir)
    assert matcher.match(scene("/stash/clip.mp4", 5)).rating_key == wanted
    assert matcher.index.sections() == {other: "Home Videos"}


def test_unknown_library_name_gives_a_clear_error(plex, server, data_dir):
    plex.add_section("Movies", ["/plex/movies"])
    plex.add_section("Clips", ["/plex/clips"])
    with pytest.raises(SyncFailure) as err:
        Matcher(server, settings(plex, plex_libraries="Movies, Moovies"), data_dir).match(scene("/x/a.mp4"))
    text = str(err.value)
    assert err.value.error_class == "invalid_settings"
    assert "'Plex libraries'" in text and "'Moovies'" in text and "'Movies', 'Clips'" in text


def test_index_is_built_with_a_few_pages_and_matches_then_cost_nothing(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/media"])
    plex.bulk_add(
        movies,
        [{"file": "/media/s%05d.mp4" % i, "size": 1000 + i, "addedAt": LONG_AGO + i} for i in range(5000)],
    )
    plex.clear_log()
    progress = []
    index = PlexIndex(data_dir)
    index.refresh(server, [], progress=progress.append)
    assert index.size == 5000
    assert plex.count(path_prefix="/library/sections") == 6  # the library list + 5 pages of 1,000
    assert progress and progress[-1] == 1.0

    matcher = Matcher(server, settings(plex, path_map="/stash=/media"), data_dir)
    plex.clear_log()
    for i in range(0, 5000, 50):
        match = matcher.match(scene("/stash/s%05d.mp4" % i, 1000 + i, scene_id=str(i)))
        assert match.how == "exact"
    assert plex.count(path_prefix="/library/sections") == 0
    assert matcher.requests == 0


def test_unchanged_library_refresh_costs_one_request_per_library(plex, server, data_dir):
    for title in ("Movies", "Clips"):
        sid = plex.add_section(title, ["/" + title])
        plex.bulk_add(
            sid, [{"file": "/%s/%d.mp4" % (title, i), "addedAt": LONG_AGO + i} for i in range(1500)]
        )
    PlexIndex(data_dir).refresh(server, [])
    plex.clear_log()
    before = os.stat(os.path.join(data_dir, "plex_index.jsonl"))
    result = PlexIndex(data_dir).refresh(server, [])
    assert result["mode"] == "incremental" and result["added"] == 0
    assert result["requests"] == 2 and plex.count(path_prefix="/library/sections") == 2
    after = os.stat(os.path.join(data_dir, "plex_index.jsonl"))
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)  # nothing written


def test_a_full_listing_writes_only_what_changed_in_plex(plex, server, data_dir):
    """The path index is a journal: paging a library of 3,000 items again (the daily rebuild,
    reconciliation's listing) appends the items Plex changed, not the whole index."""
    movies = plex.add_section("Movies", ["/media"])
    rks = plex.bulk_add(
        movies, [{"file": "/media/%d.mp4" % i, "size": i, "addedAt": LONG_AGO + i} for i in range(3000)]
    )
    PlexIndex(data_dir).refresh(server, [])
    path = os.path.join(data_dir, "plex_index.jsonl")
    whole = os.path.getsize(path)

    plex.update_item(rks[5], file="/media/moved/5.mp4")
    plex.remove_item(rks[6])
    added = plex.add_item(movies, "/media/new.mp4", size=1)
    result = PlexIndex(data_dir).refresh(server, [], full=True)
    assert result["mode"] == "full" and result["added"] == 3000
    grown = os.path.getsize(path) - whole
    assert 0 < grown < 1000 < whole / 100  # three items and the header record

    index = PlexIndex(data_dir)
    mapper = PathMapper([])
    assert index.lookup("/media/moved/5.mp4", mapper).candidates[0].rating_key == rks[5]
    assert index.lookup("/media/5.mp4", mapper).rule == "name"  # only the moved file's name is left
    assert index.lookup("/media/6.mp4", mapper).rule is None
    assert index.lookup("/media/new.mp4", mapper).candidates[0].rating_key == added
    assert index.size == 3000

    PlexIndex(data_dir).refresh(server, [], full=True)  # nothing changed in Plex: the header only
    assert os.path.getsize(path) - whole - grown < 300


def test_file_added_after_the_index_was_built_is_found_with_one_request(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/media"])
    plex.bulk_add(movies, [{"file": "/media/%d.mp4" % i, "addedAt": LONG_AGO + i} for i in range(3000)])
    Matcher(server, settings(plex), data_dir).match(scene("/media/7.mp4"))
    new = plex.add_item(movies, "/media/just scanned.mp4", size=9)

    matcher = Matcher(server, settings(plex), data_dir)  # a later drain
    plex.clear_log()
    match = matcher.match(scene("/media/just scanned.mp4", 9, scene_id="2"))
    assert match.rating_key == new
    assert plex.count(path_prefix="/library/sections") == 1
    assert matcher.requests == 1


def test_file_scanned_during_a_drain_is_found(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/media"])
    add_old(plex, movies, "/media/a.mp4")
    matcher = Matcher(server, settings(plex), data_dir)
    matcher.match(scene("/media/a.mp4"))  # builds the index
    new = plex.add_item(movies, "/media/b.mp4")
    assert matcher.match(scene("/media/b.mp4", scene_id="2")).rating_key == new


def test_missing_file_is_not_in_plex_and_refreshes_only_once_per_process(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/media"])
    add_old(plex, movies, "/media/a.mp4")
    matcher = Matcher(server, settings(plex), data_dir)
    matcher.match(scene("/media/a.mp4"))
    plex.clear_log()
    for n in range(5):
        with pytest.raises(NotInPlex) as err:
            matcher.match(scene("/media/never.mp4", scene_id=str(n + 10)))
        assert err.value.transient and "/media/never.mp4" in str(err.value)
    assert plex.count(path_prefix="/library/sections") == 1


def test_not_in_plex_suggests_path_mapping_when_the_path_is_outside_every_library(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/media/videos"])
    add_old(plex, movies, "/media/videos/a.mp4")
    with pytest.raises(NotInPlex) as err:
        Matcher(server, settings(plex), data_dir).match(scene("/data/b.mp4"))
    assert "'Path mapping'" in str(err.value) and "/media/videos" in str(err.value)


def test_match_cache_survives_a_new_process_and_invalidate_works(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/media"])
    first = add_old(plex, movies, "/media/a.mp4", 5)
    matcher = Matcher(server, settings(plex), data_dir)
    assert matcher.match(scene("/media/a.mp4", 5, scene_id="42")).how == "exact"
    matcher.flush()

    later = Matcher(server, settings(plex), data_dir)
    plex.clear_log()
    cached = later.match(scene("/media/a.mp4", 5, scene_id="42"))
    assert (cached.rating_key, cached.how) == (first, "cache")
    assert len(plex.requests) == 0

    # Plex re-created the item (deleted and rescanned): the writer's GET of the old key 404s.
    plex.remove_item(first)
    second = plex.add_item(movies, "/media/a.mp4", size=5)
    later.invalidate("42")
    again = later.match(scene("/media/a.mp4", 5, scene_id="42"))
    assert (again.rating_key, again.how) == (second, "exact")


def test_item_removed_from_plex_is_not_in_plex_after_invalidate(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/media"])
    gone = add_old(plex, movies, "/media/a.mp4", 5)
    matcher = Matcher(server, settings(plex), data_dir)
    matcher.match(scene("/media/a.mp4", 5, scene_id="42"))
    matcher.flush()
    plex.remove_item(gone)

    later = Matcher(server, settings(plex), data_dir)
    assert later.match(scene("/media/a.mp4", 5, scene_id="42")).how == "cache"
    later.invalidate("42")
    with pytest.raises(NotInPlex):
        later.match(scene("/media/a.mp4", 5, scene_id="42"))
    later.flush()
    with pytest.raises(NotInPlex):
        Matcher(server, settings(plex), data_dir).match(scene("/media/a.mp4", 5, scene_id="42"))


def test_deleted_library_triggers_a_rebuild(plex, server, data_dir):
    first = plex.add_section("Old", ["/old"])
    add_old(plex, first, "/old/a.mp4")
    PlexIndex(data_dir).refresh(server, [])
    with plex.library.lock:  # the user removed the library in Plex
        for rk in list(plex.library.sections[first].items):
            plex.remove_item(rk)
        del plex.library.sections[first]
    second = plex.add_section("New", ["/new"])
    wanted = add_old(plex, second, "/new/b.mp4")
    match = Matcher(server, settings(plex), data_dir).match(scene("/new/b.mp4"))
    assert match.rating_key == wanted


def test_state_files_never_contain_the_token(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/media"])
    add_old(plex, movies, "/media/a.mp4")
    matcher = Matcher(server, settings(plex), data_dir)
    matcher.match(scene("/media/a.mp4"))
    matcher.flush()
    for name in os.listdir(data_dir):
        with open(os.path.join(data_dir, name), "rb") as fh:
            assert PLEX_TOKEN.encode() not in fh.read()


def test_corrupt_index_is_moved_aside_and_rebuilt(plex, server, data_dir, capsys):
    movies = plex.add_section("Movies", ["/media"])
    wanted = add_old(plex, movies, "/media/a.mp4")
    os.makedirs(data_dir)
    with open(os.path.join(data_dir, "plex_index.json"), "w") as fh:
        fh.write('{"v": 1, "sections": {"1": ')
    assert Matcher(server, settings(plex), data_dir).match(scene("/media/a.mp4")).rating_key == wanted
    assert any(n.startswith("plex_index.json.corrupt-") for n in os.listdir(data_dir))
    assert "Plex path index" in capsys.readouterr().err


def test_a_file_moved_inside_plex_is_found_again_by_paging_an_older_index(plex, server, data_dir):
    movies = plex.add_section("Movies", ["/media/videos"])
    rk = add_old(plex, movies, "/media/videos/old folder/clip.mp4", 20, 1)
    add_old(plex, movies, "/media/videos/newer.mp4", 30, 2)  # scanned later: the incremental refresh's start
    s = settings(plex, path_map="/data=/media/videos")
    Matcher(server, s, data_dir).match(scene("/data/old folder/clip.mp4", 20))  # builds the index
    # The user moves and renames the file; Plex keeps the item (same key, same addedAt), Stash follows.
    plex.update_item(rk, file="/media/videos/new folder/clip, renamed.mp4")
    moved = scene("/data/new folder/clip, renamed.mp4", 20)
    before = listings(plex)
    with pytest.raises(NotInPlex):  # an index built moments ago is not paged again for a miss
        Matcher(server, s, data_dir).match(moved)
    assert listings(plex) == before + 1  # the incremental refresh only

    later = time.time() + 16 * 60
    match = Matcher(server, s, data_dir, index=PlexIndex(data_dir, clock=lambda: later)).match(moved)
    assert (match.rating_key, match.how) == (rk, "exact")
    assert PlexIndex(data_dir, clock=lambda: later).age() == 0  # rebuilt: the next misses cost no pass
