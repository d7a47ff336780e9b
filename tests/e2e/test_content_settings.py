"""Rating edits and filters as a user meets them: saved in Stash, seen (or not) in Plex, counted in
View Queue Status, with no button pressed."""

from __future__ import annotations


def _rate_puts(world):
    return [r for r in world.plex.requests if r.method == "PUT" and r.path == "/:/rate"]


def test_rating_edit_reaches_plex_user_rating_without_a_task_when_sync_rating_is_on(world):
    world.apply(sync_rating=True)
    sid, rk = world.add_scene("rated.mp4", title="Rated")
    tasks_before = len(world.stash.task_runs)
    world.edit(sid, rating100=85)
    assert world.stash.hook_runs[-1].output == "queued"
    assert world.stash.wait_idle(120)
    assert world.plex.item(rk)["userRating"] == 8.5
    assert [t.task_name for t in world.stash.task_runs[tasks_before:]] == [
        "Process Queue"
    ]  # asked by the hook
    world.edit(sid, rating100=None)  # rating removed in Stash
    assert world.stash.wait_idle(120)
    assert world.plex.item(rk)["userRating"] is None


def test_rating_edit_is_ignored_when_sync_rating_is_off(world):
    sid, rk = world.add_scene("unrated.mp4", title="Unrated")
    world.edit(sid, title="Unrated")
    assert world.stash.wait_idle(120)
    world.plex.clear_log()
    world.edit(sid, rating100=40)
    assert world.stash.wait_idle(120)
    # Whether the hook drops it or a drain acknowledges it: nothing reaches Plex, nothing is left.
    assert world.plex.count(method="PUT") == 0 and world.plex.count(method="POST") == 0
    assert world.plex.item(rk)["userRating"] is None
    status = world.run_task("View Queue Status").output
    assert status["queue"]["pending"] == status["queue"]["in_flight"] == status["queue"]["dead_lettered"] == 0
    assert not status["filtered"]


def test_filters_skip_scenes_and_view_queue_status_counts_them(world):
    world.apply(only_organized=True, require_stash_id=False, exclude_tags='Private, "Work, in progress"')
    good, good_rk = world.add_scene("good.mp4", organized=True)
    loose, loose_rk = world.add_scene("loose.mp4")
    private, private_rk = world.add_scene("private.mp4", organized=True)
    world.edit(good, title="Good")
    world.edit(loose, title="Loose")
    world.edit(private, title="Private scene", tag_ids=[world.named("tag", "Work, in progress")])
    assert world.stash.wait_idle(120)
    assert world.plex.item(good_rk)["title"] == "Good"
    assert world.plex.item(loose_rk)["title"] == "loose" and world.plex.item(private_rk)["title"] == "private"

    run = world.run_task("View Queue Status")
    assert run.output["filtered"] == {"not_organized": 1, "excluded_tag": 1}
    assert any("Skipped by filter settings: 2 scene(s)" in msg for _, msg in run.logs)

    world.edit(loose, organized=True)  # passes now: synced
    world.edit(good, tag_ids=[world.named("tag", "Private")], title="Good, then private")
    assert world.stash.wait_idle(120)
    assert world.plex.item(loose_rk)["title"] == "Loose"
    assert world.plex.item(good_rk)["title"] == "Good"  # stopped passing: left as it was
    assert world.run_task("View Queue Status").output["filtered"] == {"excluded_tag": 2}
    assert not _rate_puts(world)
