"""Scene -> Plex values, sanitizing, and the field diff (pure functions, no I/O)."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from stashplugin.settings import Settings
from worker.metadata import (
    CAPS,
    SUMMARY_ENCODED_MAX,
    build_metadata,
    clean_summary,
    diff_metadata,
    fingerprint,
    metadata_hash,
    normalize_date,
    sanitize_text,
    written_after,
)


def make_settings(**raw) -> Settings:
    return Settings.from_raw(raw, strict=True)


def scene(**overrides) -> dict:
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
        "files": [{"path": "/videos/clip one.mp4", "basename": "clip one.mp4", "size": 1}],
        "paths": {"screenshot": "http://stash:9999/scene/7/screenshot?t=1700000000"},
    }
    base.update(overrides)
    return base


def plex_values(**overrides) -> dict:
    """A Plex item as read_item returns it: a freshly scanned file, nothing set."""
    base = {
        "title": "clip one",
        "titleSort": "clip one",
        "summary": "",
        "tagline": "",
        "studio": "",
        "originallyAvailableAt": "",
        "actors": [],
        "genres": [],
        "collections": [],
        "locked": set(),
        "file_stem": "clip one",
    }
    base.update(overrides)
    return base


def synced(desired: dict, **overrides) -> dict:
    """The Plex item after a sync of `desired`."""
    values = plex_values(**{k: v for k, v in desired.items() if k in plex_values()})
    values.update(overrides)
    return values


# ----------------------------------------------------------------------------- sanitize
def test_control_characters_are_removed():
    assert sanitize_text("A\x00B\x01C\x08D\x0bE\x0cF\x1fG\x7fH", 255) == "ABCDEFGH"


def test_lone_surrogates_are_removed():
    assert sanitize_text("ok\ud800done", 255) == "okdone"


def test_summary_keeps_newlines_and_tabs_and_normalizes_crlf():
    text = "Para one\r\n\tindented\rnext\n\nlast"
    assert sanitize_text(text, 10000, keep_newlines=True) == "Para one\n\tindented\nnext\n\nlast"


def test_title_turns_line_breaks_into_one_space():
    assert sanitize_text("Part one\r\n\tPart two", 255) == "Part one Part two"


def test_text_is_nfc_normalized():
    decomposed = "Cafe\u0301"
    assert sanitize_text(decomposed, 255) == "Caf\u00e9"


def test_fidelity_of_typographic_emoji_cjk_and_rtl_text():
    samples = [
        "\u201cQuoted\u201d \u2018single\u2019 \u2014 dash \u2013 range\u2026",
        "Family \U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 and flag \U0001f1ef\U0001f1f5",
        "\u6771\u4eac\u306e\u591c \u2014 \ud55c\uad6d\uc5b4",
        "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
        "Skin tone \U0001f44d\U0001f3fd",
    ]
    for text in samples:
        assert sanitize_text(text, 255) == text
        assert sanitize_text(text, 10000, keep_newlines=True) == text


def test_surrounding_whitespace_is_trimmed():
    assert sanitize_text("  \n padded \t ", 255) == "padded"


def test_caps_limit_length():
    assert len(sanitize_text("x" * 300, CAPS["title"])) == 255
    assert len(sanitize_text("y" * 20000, CAPS["summary"], keep_newlines=True)) == 10000


def test_cap_does_not_split_a_zwj_emoji_or_a_flag():
    family = "\U0001f469\u200d\U0001f469\u200d\U0001f467"
    text = "ab" + family
    for cap in range(3, len(text)):
        assert sanitize_text(text, cap) == "ab"
    flags = "\U0001f1ef\U0001f1f5\U0001f1eb\U0001f1f7"
    assert sanitize_text(flags, 3) == "\U0001f1ef\U0001f1f5"


def test_cap_does_not_split_a_combining_accent():
    text = "abe\u0301\u0302"  # NFC: "ab", "\u00e9", then a circumflex that has no precomposed form
    assert sanitize_text(text, 4) == "ab\u00e9\u0302"
    assert sanitize_text(text, 3) == "ab"


def test_long_cjk_summary_is_cut_to_fit_in_one_request():
    text = "\u6771\u4eac" * 5000
    out = clean_summary(text)
    assert len(quote(out, safe="")) <= SUMMARY_ENCODED_MAX
    assert text.startswith(out) and len(out) > 3000
    assert clean_summary(out) == out


def test_plain_summary_keeps_its_full_character_cap():
    assert clean_summary("abcdefghij" * 1500) == "abcdefghij" * 1000


def test_none_becomes_empty():
    assert sanitize_text(None, 255) == ""


@hsettings(max_examples=300)
@given(st.text(), st.integers(min_value=0, max_value=40), st.booleans())
def test_sanitize_is_idempotent_and_respects_the_cap(text, cap, keep_newlines):
    once = sanitize_text(text, cap, keep_newlines=keep_newlines)
    assert len(once) <= cap
    assert sanitize_text(once, cap, keep_newlines=keep_newlines) == once
    assert unicodedata.is_normalized("NFC", once)


@given(st.text(min_size=0, max_size=200).map(lambda t: t * 60))
def test_clean_summary_is_idempotent_and_fits(text):
    once = clean_summary(text)
    assert len(quote(once, safe="")) <= SUMMARY_ENCODED_MAX and len(once) <= CAPS["summary"]
    assert clean_summary(once) == once


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=60))
def test_printable_text_never_grows_and_keeps_its_content(text):
    # Already-NFC text without controls comes back exactly, only trimmed.
    text = unicodedata.normalize("NFC", text)
    out = sanitize_text(text, 10000, keep_newlines=True)
    assert len(out) <= len(text)
    if "\ufffe" not in text and "\uffff" not in text:
        assert out == text.strip()


# ----------------------------------------------------------------------------- build
def test_build_maps_every_field_with_defaults():
    desired = build_metadata(scene(), make_settings())
    assert desired["title"] == "A Title"
    assert desired["summary"] == "Line one\nLine two"
    assert desired["studio"] == "Studio One"
    assert desired["originallyAvailableAt"] == "2021-06-05"
    assert desired["actors"] == ["Anna", "Bob"]
    assert desired["genres"] == ["Outdoor", "Drama"]
    assert desired["poster_url"].endswith("?t=1700000000")
    for absent in ("titleSort", "tagline", "collections", "art_url", "skipped"):
        assert absent not in desired


def test_each_sync_toggle_leaves_its_field_out():
    toggles = {
        "sync_title": "title",
        "sync_summary": "summary",
        "sync_studio": "studio",
        "sync_date": "originallyAvailableAt",
        "sync_performers": "actors",
        "sync_tags": "genres",
        "sync_poster": "poster_url",
    }
    for setting, field in toggles.items():
        desired = build_metadata(scene(), make_settings(**{setting: False}))
        assert field not in desired, setting
        assert len(desired) == 6  # of the 7 keys the defaults produce


def test_optional_fields_appear_when_switched_on():
    desired = build_metadata(
        scene(),
        make_settings(
            sync_sort_title=True, sync_collection=True, sync_background=True, tagline_source="director"
        ),
    )
    assert desired["titleSort"] == "A Title"
    assert desired["collections"] == ["Studio One"]
    assert desired["art_url"] == desired["poster_url"]
    assert desired["tagline"] == "Dee Rector"
    assert build_metadata(scene(), make_settings(tagline_source="code"))["tagline"] == "ABC-123"


def test_collection_is_empty_without_a_studio():
    desired = build_metadata(scene(studio=None), make_settings(sync_collection=True))
    assert desired["collections"] == []
    assert desired["studio"] == ""


def test_empty_title_falls_back_to_the_file_name():
    assert build_metadata(scene(title=""), make_settings())["title"] == "clip one"
    assert build_metadata(scene(title=None), make_settings())["title"] == "clip one"


def test_empty_title_without_a_file_is_skipped_with_a_reason():
    desired = build_metadata(scene(title="", files=[]), make_settings())
    assert "title" not in desired
    assert "title" in desired["skipped"]


def test_empty_stash_values_are_empty_not_absent():
    desired = build_metadata(
        scene(details=None, studio=None, date="", performers=[], tags=[], code=""),
        make_settings(tagline_source="code"),
    )
    assert desired["summary"] == "" and desired["studio"] == "" and desired["tagline"] == ""
    assert desired["originallyAvailableAt"] == "" and desired["actors"] == [] and desired["genres"] == []


def test_invalid_date_is_absent_and_explained():
    desired = build_metadata(scene(date="2021-02-30"), make_settings())
    assert "originallyAvailableAt" not in desired
    assert "2021-02-30" in desired["skipped"]["originallyAvailableAt"]


def test_partial_dates_become_full_dates():
    assert normalize_date("2019") == ("2019-01-01", None)
    assert normalize_date("2019-07") == ("2019-07-01", None)
    assert normalize_date("2019-07-04T10:00:00Z") == ("2019-07-04", None)
    assert normalize_date("not a date")[0] is None


def test_tags_are_deduplicated_case_insensitively_keeping_the_first_spelling():
    tags = [{"name": "Outdoor"}, {"name": "outdoor"}, {"name": " OUTDOOR "}, {"name": "Beach"}, {"name": ""}]
    assert build_metadata(scene(tags=tags), make_settings())["genres"] == ["Outdoor", "Beach"]


def test_tags_are_capped_at_max_tags_in_stash_order():
    tags = [{"name": "tag%02d" % i} for i in range(30)]
    assert build_metadata(scene(tags=tags), make_settings(max_tags=5))["genres"] == [
        "tag00",
        "tag01",
        "tag02",
        "tag03",
        "tag04",
    ]


def test_long_tag_names_are_capped():
    desired = build_metadata(scene(tags=[{"name": "t" * 500}]), make_settings())
    assert desired["genres"] == ["t" * CAPS["tag"]]


def test_hash_is_stable_and_follows_content():
    a = build_metadata(scene(), make_settings())
    b = build_metadata(scene(), make_settings())
    assert metadata_hash(a) == metadata_hash(b)
    assert metadata_hash(a) != metadata_hash(build_metadata(scene(title="Other"), make_settings()))
    assert metadata_hash(build_metadata(scene(date="bad"), make_settings())) == metadata_hash(
        build_metadata(scene(date="worse"), make_settings())
    )


# ----------------------------------------------------------------------------- diff
def test_fresh_item_gets_every_field():
    s = make_settings()
    desired = build_metadata(scene(), s)
    changes = diff_metadata(desired, plex_values(), s)
    assert changes == {
        "title": "A Title",
        "summary": "Line one\nLine two",
        "studio": "Studio One",
        "originallyAvailableAt": "2021-06-05",
        "actors": {"add": ["Anna", "Bob"], "remove": []},
        "genres": {"add": ["Outdoor", "Drama"], "remove": []},
    }


def test_unchanged_scene_needs_no_write():
    s = make_settings(sync_collection=True, sync_sort_title=True, tagline_source="code")
    desired = build_metadata(scene(), s)
    assert diff_metadata(desired, synced(desired), s) == {}


def test_tag_order_and_case_do_not_count_as_changes():
    s = make_settings()
    desired = build_metadata(scene(), s)
    current = synced(desired, genres=["drama", "OUTDOOR"], actors=["Bob", "Anna"])
    assert diff_metadata(desired, current, s) == {}


def test_only_the_changed_title_is_sent():
    s = make_settings()
    desired = build_metadata(scene(title="New Title"), s)
    current = synced(build_metadata(scene(), s))
    assert diff_metadata(desired, current, s) == {"title": "New Title"}


def test_removed_performer_and_tag_are_removed():
    s = make_settings()
    current = synced(build_metadata(scene(), s))
    desired = build_metadata(
        scene(performers=[{"name": "Anna"}], tags=[{"name": "Drama"}, {"name": "New"}]), s
    )
    changes = diff_metadata(desired, current, s)
    assert changes == {
        "actors": {"add": [], "remove": ["Bob"]},
        "genres": {"add": ["New"], "remove": ["Outdoor"]},
    }


def test_emptied_stash_fields_clear_plex():
    s = make_settings(tagline_source="code")
    current = synced(build_metadata(scene(), s))
    desired = build_metadata(scene(details="", studio=None, date=None, code="", performers=[], tags=[]), s)
    changes = diff_metadata(desired, current, s)
    assert changes == {
        "summary": "",
        "tagline": "",
        "studio": "",
        "originallyAvailableAt": "",
        "actors": {"add": [], "remove": ["Anna", "Bob"]},
        "genres": {"add": [], "remove": ["Outdoor", "Drama"]},
    }


def test_keep_plex_when_empty_never_clears():
    s = make_settings(keep_plex_when_empty=True, tagline_source="code")
    current = synced(build_metadata(scene(), make_settings(tagline_source="code")))
    desired = build_metadata(scene(details="", studio=None, date=None, code="", performers=[], tags=[]), s)
    assert diff_metadata(desired, current, s) == {}


def test_keep_plex_when_empty_still_writes_new_values():
    s = make_settings(keep_plex_when_empty=True)
    current = synced(build_metadata(scene(), s))
    desired = build_metadata(scene(details="", title="Renamed"), s)
    assert diff_metadata(desired, current, s) == {"title": "Renamed"}


def test_empty_title_is_never_sent_as_a_clear():
    s = make_settings()
    desired = {"title": ""}
    assert diff_metadata(desired, plex_values(title="Something"), s) == {}


def test_invalid_date_leaves_plex_date_alone():
    s = make_settings()
    desired = build_metadata(scene(date="31/12/2020"), s)
    current = synced(build_metadata(scene(), s))
    assert diff_metadata(desired, current, s) == {}


def test_long_plex_summary_equal_after_capping_is_not_rewritten():
    s = make_settings()
    long_text = "word " * 3000
    desired = build_metadata(scene(details=long_text), s)
    current = synced(desired, summary=long_text)
    assert diff_metadata(desired, current, s) == {}


def test_preserve_plex_edits_keeps_values_set_in_plex():
    s = make_settings(preserve_plex_edits=True)
    desired = build_metadata(scene(), s)
    current = plex_values(
        title="My Plex Title", summary="Written in Plex", studio="", genres=["Plex Genre"], locked={"title"}
    )
    changes = diff_metadata(desired, current, s)
    assert "title" not in changes and "summary" not in changes and "genres" not in changes
    assert changes["studio"] == "Studio One"  # empty in Plex: filled
    assert changes["actors"] == {"add": ["Anna", "Bob"], "remove": []}


def test_preserve_plex_edits_keeps_a_locked_empty_field():
    s = make_settings(preserve_plex_edits=True)
    desired = build_metadata(scene(), s)
    changes = diff_metadata(desired, plex_values(locked={"studio", "actors"}), s)
    assert "studio" not in changes and "actors" not in changes


def test_preserve_plex_edits_replaces_the_default_file_name_title():
    s = make_settings(preserve_plex_edits=True)
    changes = diff_metadata(build_metadata(scene(), s), plex_values(), s)
    assert changes["title"] == "A Title"


def test_preserve_plex_edits_still_updates_values_plexsync_wrote():
    s = make_settings(preserve_plex_edits=True)
    first = build_metadata(scene(), s)
    after_first = synced(
        first, locked={"title", "summary", "studio", "actors", "genres", "originallyAvailableAt"}
    )
    written = written_after(first, plex_values(), diff_metadata(first, plex_values(), s))
    second = build_metadata(scene(title="Renamed in Stash", tags=[{"name": "Drama"}]), s)
    changes = diff_metadata(second, after_first, s, written=written)
    assert changes == {"title": "Renamed in Stash", "genres": {"add": [], "remove": ["Outdoor"]}}


def test_preserve_plex_edits_keeps_a_value_changed_in_plex_after_a_sync():
    s = make_settings(preserve_plex_edits=True)
    first = build_metadata(scene(), s)
    written = written_after(first, plex_values(), diff_metadata(first, plex_values(), s))
    edited_in_plex = synced(first, title="Edited in Plex", locked={"title"})
    second = build_metadata(scene(title="Renamed in Stash"), s)
    assert diff_metadata(second, edited_in_plex, s, written=written) == {}


def test_collection_changes_only_touch_collections_plexsync_added():
    s = make_settings(sync_collection=True)
    first = build_metadata(scene(), s)
    written = written_after(first, plex_values(), diff_metadata(first, plex_values(), s))
    current = synced(first, collections=["Studio One", "Favourites"])
    moved = build_metadata(scene(studio={"name": "Studio Two"}), s)
    changes = diff_metadata(moved, current, s, written=written)
    assert changes["collections"] == {"add": ["Studio Two"], "remove": ["Studio One"]}
    # Without memory of what PlexSync added, nothing is removed.
    assert diff_metadata(moved, current, s)["collections"] == {"add": ["Studio Two"], "remove": []}


def test_fields_switched_off_are_never_diffed():
    s = make_settings(sync_summary=False, sync_tags=False)
    desired = build_metadata(scene(), s)
    current = synced(build_metadata(scene(), make_settings()), summary="Other", genres=["X"])
    assert diff_metadata(desired, current, s) == {}


def test_fingerprint_compares_like_plex():
    assert fingerprint("genres", ["A", "b"]) == fingerprint("genres", ["B", "a"])
    assert fingerprint("summary", "x\r\ny") == fingerprint("summary", "x\ny")
    assert fingerprint("title", "x") != fingerprint("title", "X")
