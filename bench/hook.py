"""What a hook costs Stash: wall time of `plexsync.py` per saved scene vs a bare `python3 -c pass`.

Stash waits for every hook process before the save returns, so this is the delay PlexSync adds
to each save. Three cases, interleaved in one run with the baseline (targets from the issues):

* ignored edit (only a play count changed)                      target <= 3x `python -c pass`
* enqueue while a drain is already requested (fresh marker)      target <= 3x  (no network)
* enqueue that sends `runPluginTask` to a running Stash          target <= 5x

The plugin is installed into a temp folder and run exactly as Stash runs it (stdin JSON, no
PYTHONPATH). The Stash emulator holds a fake library scan in its job queue, as a real Stash
often does, so the drain tasks the hooks request stay queued and do not compete for the CPU.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

from bench import fast_emulator_sockets, median, ms, print_result, ratio, row, scratch_dir, sized
from emulators.stash.data import SCENE_UPDATE_INPUT_FIELDS

WARMUP = 3  # first runs compile the plugin's .pyc files and warm the page cache


def hook_payload(server_connection: dict, scene_id: int, sent: dict) -> bytes:
    """The stdin Stash writes for a Scene.Update.Post hook: every input field, null unless sent."""
    full = {name: None for name in SCENE_UPDATE_INPUT_FIELDS}
    full.update(sent)
    full["id"] = str(scene_id)
    context = {
        "id": scene_id,
        "type": "Scene.Update.Post",
        "input": full,
        "inputFields": ["id"] + sorted(sent),
    }
    return json.dumps({"server_connection": server_connection, "args": {"hookContext": context}}).encode(
        "utf-8"
    )


def _env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the installed plugin runs on its own files, as in Stash
    # Stash does not set this; a user's Python keeps the plugin's bytecode after its first run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _timed(cmd, stdin: bytes, env: dict) -> tuple:
    started = time.perf_counter()
    done = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - started, done


def run(rounds: int | None = None) -> dict:
    """Median hook wall times and their ratios to `python -c pass`, measured in one run."""
    from emulators.stash import StashEmulator
    from tools.package import install

    rounds = rounds or sized(25, 5)
    fast_emulator_sockets()
    plugin_dir = install(os.path.join(scratch_dir("hook"), "PlexSync"))
    data_dir = os.path.join(plugin_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    marker = os.path.join(data_dir, "drain_request.json")
    stash = StashEmulator(
        plugin_dir=plugin_dir, python=sys.executable, plugin_env={"PYTHONPATH": None}
    ).start()
    try:
        stash.set_running_scan(True)
        conn = stash.server_connection()
        env = _env()
        script = [sys.executable, os.path.join(plugin_dir, "plexsync.py")]
        baseline = [sys.executable, "-c", "pass"]

        def prepare_fresh_marker():
            with open(marker, "w") as fh:
                json.dump(
                    {"state": "requested", "at": time.time(), "pid": 0}, fh
                )  # a "running" one needs a live drainer

        def prepare_no_marker():
            try:
                os.remove(marker)
            except FileNotFoundError:
                pass

        cases = {
            "baseline": (baseline, lambda n: b"", None),
            "ignored": (script, lambda n: hook_payload(conn, n, {"play_count": 3}), None),
            "queued": (
                script,
                lambda n: hook_payload(conn, n, {"title": "Bench %d" % n}),
                prepare_fresh_marker,
            ),
            "requested": (
                script,
                lambda n: hook_payload(conn, n, {"title": "Bench %d" % n}),
                prepare_no_marker,
            ),
        }
        samples = {name: [] for name in cases}
        answers = {name: set() for name in cases}
        rnd = random.Random(8)
        for n in range(WARMUP + rounds):
            order = list(cases)
            rnd.shuffle(order)  # no case always runs right after another
            for name in order:
                cmd, payload, prepare = cases[name]
                if prepare:
                    prepare()
                seconds, done = _timed(cmd, payload(1000 + n), env)
                if n >= WARMUP:
                    samples[name].append(seconds)
                    if name != "baseline":
                        answers[name].add(_answer(done.stdout))
        requests_seen = sum(1 for t in stash.task_runs if t.task_name == "Process Queue")
    finally:
        stash.stop()

    base = median(samples["baseline"])
    figures = {name: median(values) for name, values in samples.items()}
    rows = [
        row("python -c pass (baseline)", ms(base), "ms", "median of %d" % rounds),
        row("hook: ignored edit", ms(figures["ignored"]), "ms", "answer: %s" % _one(answers["ignored"])),
        row(
            "hook: enqueue, drain already requested",
            ms(figures["queued"]),
            "ms",
            "no network; answer: %s" % _one(answers["queued"]),
        ),
        row(
            "hook: enqueue + runPluginTask to Stash",
            ms(figures["requested"]),
            "ms",
            "%d of %d runs queued a drain task in Stash" % (requests_seen, rounds + WARMUP),
        ),
        row("hook ratio: ignored / baseline", ratio(figures["ignored"], base), "x", "target <= 3"),
        row("hook ratio: enqueue / baseline", ratio(figures["queued"], base), "x", "target <= 3"),
        row(
            "hook ratio: enqueue + request / baseline", ratio(figures["requested"], base), "x", "target <= 5"
        ),
    ]
    notes = [
        "Hook processes run the installed plugin with the stdin Stash sends; %d rounds after %d warm-up "
        "rounds, cases shuffled within each round." % (rounds, WARMUP)
    ]
    return {
        "title": "Hook cost per saved scene",
        "rows": rows,
        "notes": notes,
        "raw": {name: [round(s, 5) for s in values] for name, values in samples.items()},
    }


def _answer(stdout: bytes) -> str:
    try:
        body = json.loads(stdout.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return "not JSON"
    if body.get("error"):
        return "error: %s" % body["error"]
    return str(body.get("output"))[:40]


def _one(answers: set) -> str:
    return " / ".join(sorted(answers)) if answers else "-"


def main() -> None:
    """Run this benchmark alone and print its table."""
    print_result(run())


if __name__ == "__main__":
    main()
