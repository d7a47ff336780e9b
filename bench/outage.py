"""Recovery with nobody at the keyboard: how fast the backlog reaches Plex after an outage, and how
hard PlexSync hits Plex meanwhile.

The plugin is installed in a temp folder and has synced every scene once (index and match cache
warm, as in a running install), with the default settings (breaker after 5 failures, recovery
pace 2 -> 10 jobs/s following Plex's answers, then no limit). After the outage nothing happens in
Stash: no edit, no task. Only the watcher a stopped drain leaves behind brings syncing back.

* A 10-second blip in the middle of a 1,000-change drain (Plex refuses connections): seconds
  from Plex's return to an empty queue, and the peak request rate after the return.
* A long outage (10 minutes; `--outage-seconds N` or BENCH_QUICK=1 shortens it) with 1,000
  changes waiting, Plex answering 503 meanwhile so every request that reaches it is counted:
  what reached Plex while it was down (only the watcher's probes should), and the pace after it
  came back, second by second.

Request rates come from the Plex emulator's request log (1-second sliding windows). Nothing here
asserts on time.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

if __package__ in (None, ""):  # `python bench/outage.py`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import fast_emulator_sockets, print_result, row, scratch_dir, sized  # noqa: E402

BACKLOG = 1000
BLIP_SECONDS = 10.0
LONG_OUTAGE_SECONDS = 600.0


def peak_rate(times, start: float = float("-inf"), end: float = float("inf")) -> int:
    """The most events of [start, end) in any 1-second window (events outside are not counted)."""
    times = sorted(t for t in times if start <= t < end)
    best, j = 0, 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + 1.0:
            j += 1
        best = max(best, j - i)
    return best


def _data_dir(world) -> str:
    return os.path.join(world.plugin_dir, "data")


def _backlog(world, ids, title: str) -> None:
    """Change every scene in Stash and queue it, as the hooks would have."""
    from sync.queue import FileQueue

    os.makedirs(_data_dir(world), exist_ok=True)
    for sid in ids:
        world.stash.update_scene(sid, title="%s %s" % (title, sid))
    FileQueue(_data_dir(world)).enqueue_many(ids, ["title"], source="bench")


def _left(world) -> int:
    from sync.queue import FileQueue

    s = FileQueue(_data_dir(world)).summary()
    return s.pending + s.waiting + s.inflight


def _wait(predicate, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _world(folder: str, jobs: int):
    from emulators.world import PLEX_PREFIX, STASH_PREFIX, start_world
    from tools.package import install

    world = start_world(install(os.path.join(folder, "PlexSync")))
    ids = world.stash.seed_scenes(jobs, path_prefix=STASH_PREFIX)
    world.plex.bulk_add(
        world.section, [{"file": "%s/scene_%06d.mp4" % (PLEX_PREFIX, int(i)), "size": 1000} for i in ids]
    )
    _backlog(world, ids, "Before")
    world.run_task("Process Queue", timeout=3600)  # the warm-up sync
    return world, ids


def _puts_per_item(requests) -> dict:
    import re

    counts = {}
    for r in requests:
        if r.method == "PUT":
            m = re.match(r"^/library/metadata/(\d+)", r.path)
            key = m.group(1) if m else r.query.get("id")
            counts[key] = counts.get(key, 0) + 1
    return counts


def measure_blip(jobs: int, blip: float) -> dict:
    fast_emulator_sockets()
    folder = scratch_dir("outage-blip")
    world, ids = _world(folder, jobs)
    try:
        world.plex.clear_log()
        _backlog(world, ids, "After the blip")
        tasks = len(world.stash.task_runs)
        world.stash.run_task("Process Queue")
        _wait(lambda: world.plex.count(method="PUT") >= jobs // 5, 600)
        sent_before = world.plex.count(method="PUT")
        world.plex.set_fault("down")
        time.sleep(blip)
        up_at = time.time()
        world.plex.set_fault(None)
        emptied = _wait(lambda: _left(world) == 0, 1800)
        empty_at = time.time() if emptied else None
        world.stash.wait_idle(600)
        log = world.plex.requests
        after = [r for r in log if r.time >= up_at]
        puts = _puts_per_item(log)
        drains = [t for t in world.stash.task_runs[tasks:] if t.task_name == "Process Queue"]
        return {
            "jobs": jobs,
            "blip": blip,
            "sent_before": sent_before,
            "up_at": up_at,
            "empty_at": empty_at,
            "first_put_after": min((r.time for r in after if r.method == "PUT"), default=None),
            "request_times": [r.time for r in after],
            "put_times": [r.time for r in after if r.method == "PUT"],
            "written": len(puts),
            "twice": sum(1 for v in puts.values() if v > 1),
            "drains": len(drains),
            "other_tasks": len(world.stash.task_runs[tasks:]) - len(drains),
            "errors": sorted({t.error for t in drains if t.error}),
        }
    finally:
        world.stop()
        shutil.rmtree(folder, ignore_errors=True)


def measure_long(jobs: int, outage: float) -> dict:
    fast_emulator_sockets()
    folder = scratch_dir("outage-long")
    world, ids = _world(folder, jobs)
    try:
        world.plex.clear_log()
        world.plex.set_fault("503")
        _backlog(world, ids, "After the long outage")
        tasks = len(world.stash.task_runs)
        down_at = time.time()
        world.stash.run_task("Process Queue")  # finds Plex failing: the breaker opens, a watcher waits
        time.sleep(outage)
        during = world.plex.requests
        world.plex.clear_log()
        up_at = time.time()
        world.plex.set_fault(None)
        emptied = _wait(lambda: _left(world) == 0, 3600)
        empty_at = time.time() if emptied else None
        world.stash.wait_idle(600)
        log = world.plex.requests
        drains = [t for t in world.stash.task_runs[tasks:] if t.task_name == "Process Queue"]
        breaker_failures = [r for r in during if r.path != "/identity"]
        return {
            "jobs": jobs,
            "outage": outage,
            "down_at": down_at,
            "up_at": up_at,
            "empty_at": empty_at,
            "during": during,
            "tripping": len(breaker_failures),
            "probes": sum(1 for r in during if r.path == "/identity"),
            "after_first": [r for r in during if r.path != "/identity" and r.time > down_at + 60],
            "put_times": [r.time for r in log if r.method == "PUT"],
            "request_times": [r.time for r in log],
            "drains": len(drains),
            "errors": sorted({t.error for t in drains if t.error}),
            "written": len(_puts_per_item(log)),
        }
    finally:
        world.stop()
        shutil.rmtree(folder, ignore_errors=True)


def run(jobs: int | None = None, outage: float | None = None) -> dict:
    jobs = jobs or sized(BACKLOG, 200)
    outage = outage or sized(LONG_OUTAGE_SECONDS, 30.0)
    b = measure_blip(jobs, BLIP_SECONDS)
    rows = [
        row(
            "%g-s blip in a %d-change drain: Plex back -> queue empty" % (b["blip"], jobs),
            round(b["empty_at"] - b["up_at"], 1) if b["empty_at"] else None,
            "s",
            "no Stash activity; %d changes were in Plex before the blip" % b["sent_before"],
        ),
        row(
            "  Plex back -> first change written",
            round(b["first_put_after"] - b["up_at"], 1) if b["first_put_after"] else None,
            "s",
            "the watcher's next probe, then the drain it asks for",
        ),
        row(
            "  peak request rate after the return",
            peak_rate(b["request_times"]),
            "req/s",
            "all requests, busiest 1-second window",
        ),
        row("  peak job rate after the return", peak_rate(b["put_times"]), "jobs/s", "PUTs"),
        row(
            "  written / written twice",
            "%d / %d" % (b["written"], b["twice"]),
            "items",
            "%d drain(s), %d other task(s)" % (b["drains"], b["other_tasks"]),
        ),
    ]
    m = measure_long(jobs, outage)
    up = m["up_at"]
    resumed = min(m["put_times"]) if m["put_times"] else up
    profile = [sum(1 for t in m["put_times"] if resumed + k <= t < resumed + k + 1) for k in range(8)]
    rows += [
        row(
            "%s outage, %d changes waiting: requests while down" % (_minutes(outage), jobs),
            len(m["during"]),
            "req",
            "%d probes of /identity, %d failed requests before the breaker opened"
            % (m["probes"], m["tripping"]),
        ),
        row(
            "  requests other than probes after the first minute", len(m["after_first"]), "req", "should be 0"
        ),
        row(
            "  Plex back -> first change written",
            round(resumed - up, 1) if m["put_times"] else None,
            "s",
            "the watcher probes at the breaker's pauses (60 s by then); then the drain it asks for",
        ),
        row("  Plex back -> queue empty", round(m["empty_at"] - up, 1) if m["empty_at"] else None, "s", ""),
        row(
            "  ramp: changes written in each second",
            " ".join(str(n) for n in profile),
            "jobs",
            "seconds 1-8 after the first write",
        ),
        row(
            "  peak job rate after the return",
            peak_rate(m["put_times"]),
            "jobs/s",
            "the pace climbs from 2 while Plex answers well; no limit once it kept up at 10",
        ),
        row("  peak request rate after the return", peak_rate(m["request_times"]), "req/s", ""),
    ]
    notes = [
        "The pace after an outage starts at the first 'Recovery ramp' value and follows Plex "
        "(worker/ratelimit.py); the emulator answers in milliseconds, so it is lifted within seconds."
    ]
    if outage != LONG_OUTAGE_SECONDS:
        notes.append("The long outage was shortened to %g s (BENCH_QUICK or --outage-seconds)." % outage)
    for errors in (b["errors"], m["errors"]):
        if errors:
            notes.append("Drain errors seen: %s" % "; ".join(errors))
    return {"title": "Recovery after an outage", "rows": rows, "notes": notes}


def _minutes(seconds: float) -> str:
    return "%g-min" % (seconds / 60.0) if seconds >= 60 else "%g-s" % seconds


def main() -> None:
    """Run this benchmark alone and print its table (`--outage-seconds N` shortens the long outage)."""
    outage = None
    if "--outage-seconds" in sys.argv:
        outage = float(sys.argv[sys.argv.index("--outage-seconds") + 1])
    started = time.time()
    print_result(run(outage=outage))
    sys.stdout.write("(%.0f s)\n" % (time.time() - started))


if __name__ == "__main__":
    main()
