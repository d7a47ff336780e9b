"""`make demo`: the whole PlexSync story on the bundled Stash and Plex emulators, in a minute or two.

Scenes are edited in Stash -> hooks return in milliseconds -> Plex is updated with no button
pressed -> Plex goes down -> edits wait, the breaker opens -> Plex comes back -> the backlog
drains by itself -> a change made behind the plugin's back is found by reconciliation -> the
final status block. Everything runs over real HTTP on 127.0.0.1, exactly as Stash runs the plugin.
"""

from __future__ import annotations

import argparse
import sys

from emulators.world import PLEX_PREFIX, start_world, wait_for

SCENES = [
    ("sunrise.mp4", "Sunrise over the Bay", "Harbor Films", ["Ana Lima"], ["Nature", "Sea"]),
    ("city-lights.mp4", "City Lights", "Night Owl Studio", ["Ben Okafor", "Chloé Marchand"], ["Urban"]),
    ("kyoto.mp4", "京都の秋 — Autumn in Kyoto", "Harbor Films", ["Aiko Tanaka"], ["Travel", "Japan"]),
    ("desert.mp4", "Desert Road", "Night Owl Studio", [], ["Roadtrip"]),
    ("forest.mp4", "Forest “Cathedral”", "Green Lens", ["Ana Lima"], ["Nature"]),
    ("harbor.mp4", "Harbor at Dusk", "Harbor Films", [], ["Sea"]),
]


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def step(n: int, text: str) -> None:
    say()
    say("%d. %s" % (n, text))


def wait_until(predicate, timeout: float) -> bool:
    try:
        return bool(wait_for(predicate, timeout))
    except AssertionError:
        return False


def plex_title(world, rk) -> str:
    return world.plex.item(rk)["title"]


def last_hook_ms(world) -> float:
    return world.stash.hook_runs[-1].blocked_seconds * 1000.0


def interesting_logs(
    world, since: int, words=("Plex is", "pausing", "Synced", "Process Queue:", "gap", "Reconcil")
):
    lines = []
    for task in world.stash.task_runs[since:]:
        for _level, message in task.logs:
            if any(w in message for w in words):
                lines.append("     [%s] %s" % (task.task_name, message.splitlines()[0]))
    return lines


def run(short: bool = False) -> int:
    world = start_world(
        breaker_threshold=2, breaker_open_seconds=1, recovery_rates="5,20", recovery_step_seconds=2
    )
    try:
        return _story(world, short)
    finally:
        world.stop()


def _story(world, short: bool) -> int:
    say("PlexSync demo — a Stash and a Plex emulator on 127.0.0.1, the plugin installed as Stash installs it")
    say(
        "  Stash: %s (files under /data/videos)   Plex: %s (the same files under %s)"
        % (world.stash.url, world.plex.url, PLEX_PREFIX)
    )

    step(1, "Both servers know the same %d files; Plex only has file names as titles." % len(SCENES))
    scenes = []
    for name, title, studio, performers, tags in SCENES:
        sid, rk = world.add_scene(name)
        scenes.append((sid, rk, title, studio, performers, tags))
    say("     Plex now shows: %s" % ", ".join(repr(plex_title(world, s[1])) for s in scenes[:3]) + ", …")

    step(2, "Curating in Stash: each save runs PlexSync's hook, which queues the change and returns at once.")
    for sid, _rk, title, studio, performers, tags in scenes:
        world.edit(
            sid,
            title=title,
            studio_id=world.named("studio", studio),
            performer_ids=[world.named("performer", p) for p in performers],
            tag_ids=[world.named("tag", t) for t in tags],
            details="Edited in Stash.\nSecond line kept.",
        )
        say(
            "     saved scene %-3s %-30s hook returned in %4.0f ms"
            % (sid, repr(title[:28]), last_hook_ms(world))
        )

    step(3, "No button pressed: the hook asked Stash to run 'Process Queue' as a normal Stash job.")
    ok = wait_until(lambda: all(plex_title(world, s[1]) == s[2] for s in scenes), 60)
    world.stash.wait_idle(60)  # the drain lingers a moment for more edits before it ends
    for _sid, rk, _title, *_ in scenes[:4]:
        item = world.plex.item(rk)
        say(
            "     Plex item %-3s title=%r studio=%r genres=%s"
            % (rk, item["title"], item["studio"], item["genres"])
        )
    say("     %s" % ("every scene is in Plex" if ok else "NOT ALL SCENES REACHED PLEX"))
    if not ok:
        return 1

    step(
        4, "Plex goes down (a NAS asleep, an update). Edits keep being saved instantly and wait in the queue."
    )
    world.plex.set_fault("down")
    marker = len(world.stash.task_runs)
    down_edits = scenes[:2] if short else scenes[:4]
    for sid, _rk, title, *_ in down_edits:
        world.edit(sid, title=title + " (director's cut)")
        world.stash.wait_idle(60)
        say(
            "     saved scene %-3s while Plex is down: hook returned in %4.0f ms" % (sid, last_hook_ms(world))
        )
    for line in interesting_logs(world, marker):
        say(line)

    step(5, "Plex comes back. Nobody touches Stash: the watcher the stopped sync left behind notices.")
    marker = len(world.stash.task_runs)
    world.plex.set_fault(None)
    ok = wait_until(lambda: all(plex_title(world, s[1]).endswith("(director's cut)") for s in down_edits), 90)
    world.stash.wait_idle(60)
    for line in interesting_logs(world, marker):
        say(line)
    say("     %s" % ("the backlog drained by itself" if ok else "THE BACKLOG DID NOT DRAIN"))
    if not ok:
        return 1

    step(6, "A change behind PlexSync's back: a scene edited by a bulk import that ran no hook.")
    sid, rk, title, *_ = scenes[2]
    world.stash.update_scene(sid, title="Autumn in Kyoto (imported)")
    say("     Stash says %r, Plex still says %r" % (world.stash.scene(sid)["title"], plex_title(world, rk)))
    marker = len(world.stash.task_runs)
    run = world.run_task("Reconcile Now")
    world.stash.wait_idle(60)
    for line in interesting_logs(world, marker):
        say(line)
    found = wait_until(lambda: plex_title(world, rk) == "Autumn in Kyoto (imported)", 60)
    say(
        "     %s"
        % (
            "reconciliation found the gap and Plex now says %r" % plex_title(world, rk)
            if found
            else "RECONCILIATION DID NOT FIX THE GAP (%s)" % (run.error or run.output)
        )
    )
    if not found:
        return 1

    step(7, "View Queue Status — what a user sees at a glance:")
    status = world.run_task("View Queue Status")
    block = [m for _, m in status.logs]
    start = next((i for i, m in enumerate(block) if m.startswith("PlexSync status")), 0)
    for line in block[start:]:
        say("     " + line)
    say()
    slowest = max(h.blocked_seconds for h in world.stash.hook_runs) * 1000.0
    say(
        "Demo finished: %d saves in Stash (slowest hook %.0f ms), %d Stash jobs, %d requests to Plex."
        % (len(world.stash.hook_runs), slowest, len(world.stash.task_runs), len(world.plex.requests))
    )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="a shorter run (used by the test suite)")
    return run(parser.parse_args(argv).short)


if __name__ == "__main__":
    sys.exit(main())
