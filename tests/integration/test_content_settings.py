"""Collections, content rating, labels, user rating and title templates, written by PlexWriter into
the Plex emulator over real HTTP and read back through the real plexapi."""

from __future__ import annotations

import pytest
from plexapi.server import PlexServer

from emulators.world import PLEX_TOKEN
from stashplugin.settings import Settings
from worker.plex_writer import PlexWriter, PosterMemo

FILE = "/media/videos/Clip One.mp4"
TRICKY = 'Net, "Quoted" — Ünïcödé 東京 👩\u200d👩\u200d👧'


@pytest.fixture
def section(plex):
    return plex.add_section("Movies", locations=["/media/videos"])


@pytest.fixture
def rk(plex, section):
    return plex.add_item(section, file=FILE, size=1234)


@pytest.fixture
def server(plex):
    return PlexServer(plex.url, PLEX_TOKEN)


def scene(**overrides):
    base = {
        "id": "7",
        "title": "A Title",
        "code": "ABC-123",
        "date": "2021-06-05",
        "details": "",
        "studio": {"name": "Site One", "parent_studio": {"name": "Network"}},
        "groups": [{"group": {"name": "Series A"}}],
        "performers": [{"name": "Anna"}, {"name": "Bob"}],
        "tags": [{"name": "Outdoor"}, {"name": "Drama"}],
        "rating100": 85,
        "files": [{"path": FILE, "basename": "Clip One.mp4", "size": 1234}],
    }
    base.update(overrides)
    return base


def writer(server, tmp_path, **raw):
    return PlexWriter(server, Settings.from_raw(raw, strict=True), memo=PosterMemo(str(tmp_path)))


def members(server, name):
    """Titles of the items in the Movies collection `name`, as plexapi lists them."""
    return sorted(i.title for i in server.library.section("Movies").collection(name).items())


def puts(plex):
    return [r for r in plex.requests if r.method == "PUT"]


# -- collections -------------------------------------------------------------------------------
def test_collections_from_studio_network_and_groups(plex, server, rk, tmp_path):
    writer(server, tmp_path, collections_from="studio, parent_studio, groups").sync(scene(), rk)
    assert sorted(plex.item(rk)["collections"]) == ["Network", "Series A", "Site One"]
    for name in ("Network", "Series A", "Site One"):
        assert members(server, name) == ["A Title"]
    assert {"collection"} <= plex.item(rk)["locked"]


def test_collection_membership_follows_group_and_studio_changes(plex, server, rk, tmp_path):
    w = writer(server, tmp_path, collections_from="studio,groups")
    w.sync(scene(), rk)
    w.sync(scene(studio={"name": "Site Two"}, groups=[{"group": {"name": "Series B"}}]), rk)
    assert sorted(plex.item(rk)["collections"]) == ["Series B", "Site Two"]
    assert members(server, "Series A") == [] and members(server, "Site One") == []
    assert members(server, "Series B") == ["A Title"]


def test_removing_a_source_removes_only_plexsyncs_own_memberships(plex, server, rk, tmp_path):
    plex.update_item(rk, collections=["Favourites", "Series A"])  # made in Plex before PlexSync
    writer(server, tmp_path, collections_from="studio,groups").sync(scene(), rk)
    assert sorted(plex.item(rk)["collections"]) == ["Favourites", "Series A", "Site One"]
    writer(server, tmp_path, collections_from="").sync(scene(), rk)  # every source switched off
    assert sorted(plex.item(rk)["collections"]) == ["Favourites", "Series A"]


def test_studio_as_collection_still_means_studio(plex, server, rk, tmp_path):
    writer(server, tmp_path, sync_collection=True).sync(scene(), rk)
    assert plex.item(rk)["collections"] == ["Site One"]


def test_prefixed_tags_become_collections_instead_of_genres(plex, server, rk, tmp_path):
    tags = [{"name": "Drama"}, {"name": "Collection: " + TRICKY}, {"name": "collection: Best of"}]
    w = writer(server, tmp_path, collection_tag_prefix="Collection: ")
    w.sync(scene(tags=tags), rk)
    item = plex.item(rk)
    assert item["genres"] == ["Drama"]
    assert sorted(item["collections"]) == sorted(["Best of", TRICKY])
    assert members(server, TRICKY) == ["A Title"]
    w.sync(scene(tags=[{"name": "Drama"}]), rk)  # tag removed in Stash
    assert plex.item(rk)["collections"] == []


# -- content rating and labels -----------------------------------------------------------------
def test_content_rating_is_written_and_locked_even_without_lock_fields(plex, server, rk, tmp_path):
    writer(server, tmp_path, content_rating="XXX", lock_fields=False).sync(scene(), rk)
    item = plex.item(rk)
    assert item["contentRating"] == "XXX" and item["locked"] == {"contentRating"}
    assert server.fetchItem(rk).contentRating == "XXX"


def test_empty_content_rating_setting_leaves_plex_alone(plex, server, rk, tmp_path):
    plex.update_item(rk, contentRating="R")
    writer(server, tmp_path).sync(scene(), rk)
    assert plex.item(rk)["contentRating"] == "R"


def test_labels_are_added_and_only_plexsyncs_are_removed(plex, server, rk, tmp_path):
    plex.update_item(rk, labels=["Kids"])  # added in Plex
    writer(server, tmp_path, labels='Adults, "%s"' % TRICKY.replace('"', '""')).sync(scene(), rk)
    assert sorted(plex.item(rk)["labels"]) == sorted(["Kids", "Adults", TRICKY])
    assert sorted(lb.tag for lb in server.fetchItem(rk).labels) == sorted(["Kids", "Adults", TRICKY])
    writer(server, tmp_path, labels="Adults").sync(scene(), rk)  # one removed from the setting
    assert sorted(plex.item(rk)["labels"]) == ["Adults", "Kids"]
    writer(server, tmp_path).sync(scene(), rk)  # setting emptied
    assert plex.item(rk)["labels"] == ["Kids"]


# -- user rating -------------------------------------------------------------------------------
def test_rating_becomes_plex_user_rating_through_the_rate_endpoint(plex, server, section, rk, tmp_path):
    other = plex.add_item(section, file="/media/videos/other.mp4")
    server.fetchItem(other).rate(8.5)  # what plexapi itself sends
    plexapi_sends = puts(plex)[-1]
    plex.clear_log()
    w = writer(server, tmp_path, sync_rating=True)
    w.sync(scene(rating100=85), rk)
    assert server.fetchItem(rk).userRating == 8.5
    rate = [r for r in puts(plex) if r.path == "/:/rate"]
    assert len(rate) == 1 and rate[0].query == dict(plexapi_sends.query, key=str(rk))
    plex.clear_log()
    result = w.sync(scene(rating100=87), rk)
    assert result.changed == ["userRating"] and [r.path for r in puts(plex)] == ["/:/rate"]
    assert plex.item(rk)["userRating"] == 8.7
    w.sync(scene(rating100=None), rk)  # unrated in Stash
    assert server.fetchItem(rk).userRating is None


def test_rating_is_left_alone_when_sync_rating_is_off(plex, server, rk, tmp_path):
    plex.library.rate(rk, "3")
    writer(server, tmp_path).sync(scene(rating100=85), rk)
    assert plex.item(rk)["userRating"] == 3.0
    assert not [r for r in puts(plex) if r.path == "/:/rate"]


def test_preserve_plex_edits_keeps_a_rating_and_content_rating_set_in_plex(plex, server, rk, tmp_path):
    plex.library.rate(rk, "2")
    plex.update_item(rk, contentRating="R", locked={"contentRating"})
    writer(server, tmp_path, sync_rating=True, content_rating="XXX", preserve_plex_edits=True).sync(
        scene(), rk
    )
    item = plex.item(rk)
    assert item["userRating"] == 2.0 and item["contentRating"] == "R"


def test_preserve_plex_edits_still_updates_plexsyncs_own_rating(plex, server, rk, tmp_path):
    w = writer(server, tmp_path, sync_rating=True, content_rating="XXX", preserve_plex_edits=True)
    w.sync(scene(rating100=60), rk)
    w.sync(scene(rating100=90), rk)
    assert plex.item(rk)["userRating"] == 9.0 and plex.item(rk)["contentRating"] == "XXX"


# -- everything at once ------------------------------------------------------------------------
EVERYTHING = dict(
    collections_from="studio,parent_studio,groups",
    collection_tag_prefix="Collection: ",
    content_rating="XXX",
    labels="Stash",
    sync_rating=True,
    hide_tags="Drama",
    title_template="{studio} - {title}",
)


def test_unchanged_scene_with_every_new_setting_costs_one_get_and_no_write(plex, server, rk, tmp_path):
    w = writer(server, tmp_path, **EVERYTHING)
    w.sync(scene(tags=[{"name": "Drama"}, {"name": "Collection: Best"}]), rk)
    plex.clear_log()
    result = w.sync(scene(tags=[{"name": "Drama"}, {"name": "Collection: Best"}]), rk)
    assert result.unchanged and [r.method for r in plex.requests] == ["GET"]


def test_dry_run_reports_every_new_field(plex, server, rk, tmp_path):
    result = writer(server, tmp_path, **EVERYTHING).sync(scene(), rk, dry_run=True)
    assert {"title", "contentRating", "userRating", "collections", "labels"} <= set(result.diff)
    assert result.diff["userRating"] == "8.5" and result.diff["title"] == "Site One - A Title"
    assert sorted(result.diff["collections"]["add"]) == ["Network", "Series A", "Site One"]
    assert puts(plex) == [] and plex.item(rk)["contentRating"] is None


def test_hidden_tags_are_never_genres(plex, server, rk, tmp_path):
    writer(server, tmp_path, hide_tags='drama, "a, b"').sync(
        scene(tags=[{"name": "Drama"}, {"name": "a, b"}, {"name": "Kept"}]), rk
    )
    assert plex.item(rk)["genres"] == ["Kept"]


# -- title templates ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "template, overrides, title",
    [
        ("{studio} - {title}", {}, "Site One - A Title"),
        ("{studio} - {title}", {"studio": None}, "A Title"),
        ("[{code}] {title} ({year})", {"code": "", "date": None}, "A Title"),
        ("[{code}] {title} ({year})", {}, "[ABC-123] A Title (2021)"),
        ("{parent_studio} / {studio} - {date} - {title}", {"date": ""}, "Network / Site One - A Title"),
        ("{title} with {performers}", {}, "A Title with Anna, Bob"),
        ("{performers}", {"performers": [{"name": n} for n in "ABCDE"]}, "A, B, C"),
        (
            "{studio} - {title}",
            {"studio": {"name": "東京 Studio"}, "title": "“Ünïcödé” — 👩\u200d👩\u200d👧"},
            "東京 Studio - “Ünïcödé” — 👩\u200d👩\u200d👧",
        ),
        ("{studio}", {"studio": None}, "Clip One"),  # empty result: the file name
        ("{file}", {}, "Clip One"),
    ],
)
def test_title_template(plex, server, rk, tmp_path, template, overrides, title):
    writer(server, tmp_path, title_template=template).sync(scene(**overrides), rk)
    assert server.fetchItem(rk).title == title
