"""Run the installed `plexsync.py` entry point inside the test process, for fast fuzzing.

A fuzz test needs thousands of invocations; a new Python process each would take minutes. The
installed copy's `main(stdin, stdout)` is what `python3 plexsync.py` runs, with stderr (Stash's
log protocol) captured too. A few subprocess runs in the fuzz tests check that the real process
behaves the same.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys

from stashplugin import log


def load_entrypoint(plugin_dir: str):
    """The installed plugin's plexsync.py as a module (its own folder is the fallback PluginDir)."""
    path = os.path.join(plugin_dir, "plexsync.py")
    spec = importlib.util.spec_from_file_location("plexsync_under_test_%d" % id(plugin_dir), path)
    module = importlib.util.module_from_spec(spec)
    before = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = before  # the repo's packages stay the ones imported
    return module


def run_main(entrypoint, stdin) -> tuple:
    """Call main() with `stdin` (str, or bytes as Stash writes them); returns (rc, stdout, stderr)."""
    if isinstance(stdin, bytes):
        stream = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    else:
        stream = io.StringIO(stdin)
    out = io.StringIO()
    with log.capture() as err:
        rc = entrypoint.main(stream, out)
    return rc, out.getvalue(), err.getvalue()


def answer_problems(rc, stdout: str, stderr: str) -> list:
    """What is wrong with an answer, from Stash's point of view (empty: nothing)."""
    problems = []
    if rc not in (0, 1, 2):
        problems.append("exit code %r" % (rc,))
    lines = stdout.rstrip("\n").split("\n") if stdout else []  # JSON strings may hold U+0085 or U+2028
    if len(lines) != 1:
        problems.append("stdout has %d lines, not one JSON answer: %r" % (len(lines), stdout[:300]))
        return problems
    try:
        body = json.loads(lines[0])
    except ValueError:
        return problems + ["stdout is not JSON: %r" % stdout[:300]]
    if not isinstance(body, dict) or set(body) != {"output", "error"}:
        return problems + ["answer is not {output, error}: %r" % stdout[:300]]
    error = body["error"]
    if rc == 0 and error:
        problems.append("exit code 0 with an error")
    if rc != 0 and not (isinstance(error, str) and error.strip()):
        problems.append("exit code %s without an error message" % rc)
    if isinstance(error, str) and ("\n" in error or "Traceback" in error or len(error) > 1000):
        problems.append("error is not one clear line: %r" % error[:300])
    for line in stderr.split("\n"):
        if line and not line.startswith("\x01"):
            problems.append("stderr line outside Stash's log protocol: %r" % line[:200])
            break
    if "Traceback" in stderr and "\x01e\x02" not in stderr:
        problems.append("a traceback without an error line")
    return problems
