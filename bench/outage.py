"""A backlog after an outage: how long from Plex coming back to an empty queue, and how hard the
recovery ramp lets PlexSync hit the just-restarted Plex.

The plugin is installed in a temp folder and has synced every scene once (index and match cache
warm, as in a running install). Then Plex goes down, every scene changes in Stash and is queued,
and a drain finds Plex down (the breaker opens). Plex comes back; once the breaker's pause is
over, one invocation (View Queue Status, as a user might glance at it) notices, and the drain it
requests sends the backlog at the recovery ramp's rates (the defaults 2, 5, 10 jobs/s, then no
limit). Request rates come from the Plex emulator's request log (1-second sliding windows).
Nothing here asserts on time.
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
RATES = (2.0, 5.0, 10.0)  # the default 'Recovery ramp (jobs/s)'
STEP_SECONDS = 60.0       # the default 'Ramp step (s)'


def peak_rate(times, start: float = float("-inf"), end: float = float("inf")) -> int:
    """The most events of [start, end) in any 1-second window (events outside are not counted)."""
    times = sorted(t for t in times if start <= t < end)
    best, j = 0, 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + 1.0:
            j += 1
        best = max(best, j - i)
    return best


def _breaker(world) -> dict:
    from sync.store import read_json_quiet

    return read_json_quiet(os.path.join(world.plugin_dir, "data", "circuit_breaker.json"))


def _backlog(world, ids, title: str) -> None:
    """Change every scene in Stash and queue it, as the hooks would have."""
    from sync.queue import FileQueue

    data_dir = os.path.join(world.plugin_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    queue = FileQueue(data_dir)
    for sid in ids:
        world.stash.update_scene(sid, title="%s %s" % (title, sid))
        queue.enqueue(sid, ["title"], source="bench")


def measure(jobs: int, step_seconds: float) -> dict:
    """Run the outage and the recovery once; return the raw figures."""
    from sync.queue import FileQueue
    from tests.package import install
    from tests.world import PLEX_PREFIX, STASH_PREFIX, start_world

    fast_emulator_sockets()
    folder = scratch_dir("outage")
    world = start_world(install(os.path.join(folder, "PlexSync")), breaker_threshold=1, breaker_open_seconds=1,
                        recovery_rates=",".join("%g" % r for r in RATES), recovery_step_seconds=step_seconds)
    try:
        ids = world.stash.seed_scenes(jobs, path_prefix=STASH_PREFIX)
        world.plex.bulk_add(world.section, [{"file": "%s/scene_%06d.mp4" % (PLEX_PREFIX, int(i)), "size": 1000}
                                            for i in ids])
        _backlog(world, ids, "Before")
        warm = world.run_task("Process Queue", timeout=3600)

        world.plex.set_fault("down")
        _backlog(world, ids, "After the outage")
        world.run_task("Process Queue", timeout=600)  # finds Plex down: the breaker opens
        opened = _breaker(world).get("state") == "open"

        world.plex.clear_log()
        up_at = time.time()
        world.plex.set_fault(None)
        due = _breaker(world).get("next_probe_at") or up_at
        while time.time() < due:
            time.sleep(0.05)
        first_task = len(world.stash.task_runs)
        world.run_task("View Queue Status", timeout=7200)  # the invocation that notices; waits for the drain
        drains = [t for t in world.stash.task_runs[first_task:] if t.task_name == "Process Queue"]
        empty_at = max((t.ended or 0) for t in drains) if drains else None
        recovered_at = _breaker(world).get("recovered_at")
        log = world.plex.requests
        left = FileQueue(os.path.join(world.plugin_dir, "data")).summary()
        return {
            "jobs": jobs, "step_seconds": step_seconds, "opened": opened, "up_at": up_at,
            "recovered_at": recovered_at, "empty_at": empty_at, "drains": len(drains),
            "drain_errors": sorted({t.error for t in drains + [warm] if t.error}),
            "synced": sum((t.output or {}).get("synced", 0) for t in drains if isinstance(t.output, dict)),
            "left": left.pending + left.waiting + left.inflight, "dead": left.dead,
            "request_times": [r.time for r in log],
            "put_times": [r.time for r in log if r.method == "PUT"],
        }
    finally:
        world.stop()
        shutil.rmtree(folder, ignore_errors=True)


def run(jobs: int | None = None, step_seconds: float | None = None) -> dict:
    """Backlog of `jobs` (1,000) after an outage: time to an empty queue and the ramp's peak rates."""
    jobs = jobs or sized(BACKLOG, 100)
    step = step_seconds or sized(STEP_SECONDS, 5.0)
    m = measure(jobs, step)
    rc = m["recovered_at"] or m["up_at"]
    ramp_end = rc + step * len(RATES)
    rows = [
        row("Plex back -> queue empty, %d jobs" % jobs,
            round(m["empty_at"] - m["up_at"], 1) if m["empty_at"] else None, "s",
            "ramp %s jobs/s, %g s a step, then no limit" % (", ".join("%g" % r for r in RATES), step)),
        row("Plex back -> sync resumed", round(rc - m["up_at"], 1) if m["recovered_at"] else None, "s",
            "waits out the breaker's 1 s pause, then one invocation probes"),
        row("Plex requests before sync resumed", sum(1 for t in m["request_times"] if t < rc), "req",
            "the health probe: /identity and /library/sections"),
        row("peak Plex request rate during the ramp", peak_rate(m["request_times"], rc, ramp_end), "req/s",
            "all requests, busiest 1-second window"),
        row("peak job rate during the ramp", peak_rate(m["put_times"], rc, ramp_end), "jobs/s",
            "PUTs, busiest 1-second window (limit %g at the last step)" % RATES[-1]),
    ]
    for k, rate in enumerate(RATES):
        lo, hi = rc + k * step, rc + (k + 1) * step
        sent = sum(1 for t in m["put_times"] if lo <= t < hi)
        rows.append(row("  step %d: jobs/s (limit %g)" % (k + 1, rate), round(sent / step, 2), "jobs/s",
                        "%d jobs in %g s; peak %d in 1 s" % (sent, step, peak_rate(m["put_times"], lo, hi))))
    after = [t for t in m["put_times"] if t >= ramp_end]
    rows.append(row("peak job rate after the ramp", peak_rate(after) if after else None, "jobs/s",
                    "no limit" if after else "the backlog was gone before the ramp ended"))
    rows.append(row("synced / left in the queue", "%d / %d" % (m["synced"], m["left"]), "jobs",
                    "%d dead-lettered, %d drain(s)" % (m["dead"], m["drains"])))
    notes = ["A 1-second window can hold one job more than the step's rate: jobs are spaced 1/rate apart, so "
             "a window that opens on a job also closes on one."]
    if not m["opened"]:
        notes.append("The breaker did not open during the outage; the figures do not show a recovery.")
    if m["drain_errors"]:
        notes.append("Drain errors seen: %s" % "; ".join(m["drain_errors"]))
    return {"title": "Recovery after an outage", "rows": rows, "notes": notes}


def main() -> None:
    """Run this benchmark alone and print its table (`--step-seconds N` shortens the ramp steps)."""
    step = None
    if "--step-seconds" in sys.argv:
        step = float(sys.argv[sys.argv.index("--step-seconds") + 1])
    started = time.time()
    print_result(run(step_seconds=step))
    sys.stdout.write("(%.0f s)\n" % (time.time() - started))


if __name__ == "__main__":
    main()
