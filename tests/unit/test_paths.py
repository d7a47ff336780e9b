"""Stash path -> Plex path mapping and the keys paths are compared by (pure, no I/O)."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from stashplugin.settings import parse_path_map
from worker.paths import PathMapper, loose_key, name_key, path_key


def test_no_pairs_leave_the_path_unchanged():
    assert PathMapper([]).to_plex("/data/videos/a.mp4") == "/data/videos/a.mp4"
    assert PathMapper(None).to_plex("D:\\Videos\\a.mp4") == "D:\\Videos\\a.mp4"


def test_prefix_is_replaced():
    mapper = PathMapper([("/data", "/media/videos")])
    assert mapper.to_plex("/data/studio/a.mp4") == "/media/videos/studio/a.mp4"


def test_unmatched_path_is_unchanged():
    mapper = PathMapper([("/data", "/media/videos")])
    assert mapper.to_plex("/elsewhere/a.mp4") == "/elsewhere/a.mp4"


def test_prefix_matches_whole_folders_only():
    mapper = PathMapper([("/data", "/media")])
    assert mapper.to_plex("/database/x.mp4") == "/database/x.mp4"
    assert mapper.to_plex("/data2/x.mp4") == "/data2/x.mp4"


def test_longest_prefix_wins_whatever_the_order():
    pairs = [("/data", "/media/all"), ("/data/special", "/mnt/special")]
    for order in (pairs, pairs[::-1]):
        mapper = PathMapper(order)
        assert mapper.to_plex("/data/special/a.mp4") == "/mnt/special/a.mp4"
        assert mapper.to_plex("/data/specialist/a.mp4") == "/media/all/specialist/a.mp4"
        assert mapper.to_plex("/data/other/a.mp4") == "/media/all/other/a.mp4"


def test_several_pairs_from_the_setting_text():
    mapper = PathMapper(parse_path_map("/data=/media/videos; /mnt/b=/srv/b"))
    assert mapper.to_plex("/data/a.mp4") == "/media/videos/a.mp4"
    assert mapper.to_plex("/mnt/b/c/d.mkv") == "/srv/b/c/d.mkv"


def test_posix_stash_to_windows_plex_uses_backslashes():
    mapper = PathMapper([("/data", "D:\\Media")])
    assert mapper.to_plex("/data/studio/clip one.mp4") == "D:\\Media\\studio\\clip one.mp4"


def test_windows_stash_to_posix_plex_uses_slashes():
    mapper = PathMapper([("C:\\Users\\me\\Videos", "/media/videos")])
    assert mapper.to_plex("C:\\Users\\me\\Videos\\sub\\a.mp4") == "/media/videos/sub/a.mp4"


def test_windows_stash_path_with_forward_slashes_still_maps():
    mapper = PathMapper([("C:\\Videos", "/media")])
    assert mapper.to_plex("C:/Videos/a.mp4") == "/media/a.mp4"


def test_windows_prefix_ignores_case():
    mapper = PathMapper([("C:\\Videos", "/media")])
    assert mapper.to_plex("c:\\videos\\Sub\\A.mp4") == "/media/Sub/A.mp4"


def test_windows_plex_side_makes_the_prefix_ignore_case():
    mapper = PathMapper([("/Data", "D:\\Media")])
    assert mapper.to_plex("/data/a.mp4") == "D:\\Media\\a.mp4"


def test_posix_prefix_is_case_sensitive():
    mapper = PathMapper([("/Data", "/media")])
    assert mapper.to_plex("/data/a.mp4") == "/data/a.mp4"


def test_trailing_slashes_on_either_side_do_not_matter():
    for stash, plex in (
        ("/data/", "/media/"),
        ("/data", "/media/"),
        ("/data/", "/media"),
        ("/data//", "/media"),
    ):
        assert PathMapper([(stash, plex)]).to_plex("/data/a.mp4") == "/media/a.mp4"
    assert PathMapper([("C:\\Videos\\", "D:\\Media\\")]).to_plex("C:\\Videos\\a.mp4") == "D:\\Media\\a.mp4"


def test_root_prefixes():
    assert PathMapper([("/", "/mnt/stash")]).to_plex("/a/b.mp4") == "/mnt/stash/a/b.mp4"
    assert PathMapper([("/data", "/")]).to_plex("/data/b.mp4") == "/b.mp4"
    assert PathMapper([("/data", "D:\\")]).to_plex("/data/b.mp4") == "D:\\b.mp4"


def test_unc_share_on_the_plex_side():
    mapper = PathMapper([("/data", "\\\\nas\\videos")])
    assert mapper.to_plex("/data/a/b.mp4") == "\\\\nas\\videos\\a\\b.mp4"


def test_backslash_in_a_linux_file_name_is_kept():
    mapper = PathMapper([("/data", "/media")])
    assert mapper.to_plex("/data/odd\\name.mp4") == "/media/odd\\name.mp4"


def test_to_stash_is_the_inverse():
    mapper = PathMapper([("/data", "D:\\Media")])
    assert mapper.to_stash("D:\\Media\\x\\a.mp4") == "/data/x/a.mp4"


def test_path_key_normalises_separators_duplicates_and_unicode():
    decomposed = unicodedata.normalize("NFD", "/media/Café/é.mp4")
    assert path_key(decomposed) == path_key("/media/Café/é.mp4")
    assert path_key("D:\\Media\\\\sub\\a.mp4") == "D:/Media/sub/a.mp4"
    assert path_key("/media//sub///a.mp4") == "/media/sub/a.mp4"
    assert path_key("/media/sub/") == "/media/sub"
    assert path_key("/") == "/"


def test_path_key_keeps_case_and_loose_key_ignores_it():
    assert path_key("/Media/A.mp4") != path_key("/media/a.mp4")
    assert loose_key("/Media/A.mp4") == loose_key("/media/a.mp4")
    assert loose_key("D:\\MEDIA\\Straße.mp4") == loose_key("d:/media/STRASSE.mp4")


def test_name_key_is_the_casefolded_file_name():
    assert name_key("/a/b/Clip One.MP4") == "clip one.mp4"
    assert name_key("D:\\x\\Clip One.mp4") == name_key("/other/clip one.mp4")


# ----------------------------------------------------------------------------- properties
_component = st.text(
    alphabet=st.characters(blacklist_characters="/\\:\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() == s and s not in (".", ".."))
_components = st.lists(_component, min_size=1, max_size=5)


def _posix(parts):
    return "/" + "/".join(parts)


def _windows(drive, parts):
    return drive + ":\\" + "\\".join(parts)


@given(_components, _components, _components)
def test_posix_mapping_round_trips(stash_prefix, plex_prefix, rest):
    mapper = PathMapper([(_posix(stash_prefix), _posix(plex_prefix))])
    original = _posix(stash_prefix + rest)
    mapped = mapper.to_plex(original)
    assert mapped == _posix(plex_prefix + rest)
    assert mapper.to_stash(mapped) == original


@given(_components, st.sampled_from("CDZ"), _components, _components)
def test_posix_to_windows_round_trips(stash_prefix, drive, plex_prefix, rest):
    mapper = PathMapper([(_posix(stash_prefix), _windows(drive, plex_prefix))])
    original = _posix(stash_prefix + rest)
    mapped = mapper.to_plex(original)
    assert mapped == _windows(drive, plex_prefix + rest)
    assert "/" not in mapped
    assert mapper.to_stash(mapped) == original


@given(_components, _components, _components)
def test_a_longer_sibling_folder_never_matches(stash_prefix, plex_prefix, rest):
    mapper = PathMapper([(_posix(stash_prefix), _posix(plex_prefix))])
    sibling = stash_prefix[:-1] + [stash_prefix[-1] + "x"]
    path = _posix(sibling + rest)
    assert mapper.to_plex(path) == path


@given(st.lists(st.text(alphabet="ab/\\é", max_size=6), max_size=4))
def test_keys_are_idempotent(parts):
    path = "/".join(parts)
    assert path_key(path_key(path)) == path_key(path)
    assert loose_key(loose_key(path)) == loose_key(path)
