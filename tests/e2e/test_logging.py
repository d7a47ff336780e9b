"""What a Stash user reads in the log: levels, debug detail on request, paths hidden on request."""

from __future__ import annotations


def _all_logs(world):
    return [(lvl, msg) for t in world.stash.task_runs for lvl, msg in t.logs] + [
        (lvl, msg) for h in world.stash.hook_runs for lvl, msg in h.logs
    ]


def test_a_file_missing_from_plex_names_its_path_unless_paths_are_hidden(world):
    sid, _ = world.add_scene("Summer Trip/missing file.mp4", in_plex=False)
    world.apply(max_retries=1)
    world.edit(sid, title="Not in Plex")
    assert world.stash.wait_idle(120)
    text = "\n".join(m for _, m in _all_logs(world))
    assert "Summer Trip/missing file.mp4" in text  # visible by default: the user needs it to fix mapping

    sid2, _ = world.add_scene("Summer Trip/also missing.mp4", in_plex=False)
    world.apply(obfuscate_paths=True, debug_logging=True)
    before = len(world.stash.task_runs)
    world.edit(sid2, title="Hidden path")
    assert world.stash.wait_idle(120)
    later = [m for t in world.stash.task_runs[before:] for _, m in t.logs]
    text = "\n".join(later)
    assert "also missing" not in text and "/data/videos" not in text and "/media/movies" not in text
    assert "<path:" in text
    assert any(m.startswith("[debug]") for m in later)


def test_dead_lettered_change_is_a_warning_and_retry_is_info(world):
    sid, _ = world.add_scene("nowhere.mp4", in_plex=False)
    world.apply(max_retries=2)
    world.edit(sid, title="t")
    assert world.stash.wait_idle(120)  # the drain waits out the short backoff and tries again
    logs = _all_logs(world)
    retried = [i for i, (lvl, m) in enumerate(logs) if lvl == "i" and "will be retried" in m]
    dead = [i for i, (lvl, m) in enumerate(logs) if lvl == "w" and "moved to the dead-letter queue" in m]
    assert len(retried) == 1 and len(dead) == 1 and retried[0] < dead[0], logs
    assert not any(lvl == "e" for lvl, m in logs if "nowhere.mp4" in m), (
        "a dead-lettered change is not an error"
    )
    assert world.run_task("View Queue Status").output["queue"]["dead_lettered"] == 1
