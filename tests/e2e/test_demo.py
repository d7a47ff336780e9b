"""`make demo` tells the whole story and exits 0 (a shorter run of the same script)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, child_env


def test_demo_story_runs_end_to_end():
    proc = subprocess.run(
        [sys.executable, "-m", "tools.demo", "--short"],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for expected in (
        "every scene is in Plex",
        "pausing sync",
        "Plex is back after",
        "the backlog drained by itself",
        "reconciliation found the gap",
        "PlexSync status",
        "All good: nothing to do.",
    ):
        assert expected in out, expected
    assert "Traceback" not in out + proc.stderr
