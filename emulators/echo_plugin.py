"""The Echo test plugin (`fixtures/echo_plugin/echo.py`) with its manifest written at test time.

A committed `*.yml` would be loaded by Stash as a second plugin when this repository is cloned
into Stash's plugins folder: Stash walks every `*.yml` below that folder (pkg/plugin/plugins.go,
Cache.ReloadPlugins). So the manifest lives here as text and `echo_plugin_dir()` writes it, with
a copy of echo.py, into a temporary folder once per test process.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

ECHO_SCRIPT = Path(__file__).resolve().parent / "fixtures" / "echo_plugin" / "echo.py"

ECHO_MANIFEST = """\
# Throw-away test plugin for the Stash emulator and the plugin runner.
# Plugin id = file stem = "Echo".
name: Echo
description: Records its stdin and echoes its args (emulator self-tests only)
version: "0.1"
url: https://example.invalid/echo
exec:
  - python3
  - "{pluginDir}/echo.py"
interface: raw
settings:
  greeting:
    displayName: Greeting
    description: a string setting
    type: STRING
  enabled:
    displayName: Enabled
    type: BOOLEAN
hooks:
  - name: Echo scene hook
    description: Records the hook input, sleeps ECHO_SLEEP seconds
    triggeredBy:
      - Scene.Update.Post
      - Scene.Create.Post
      - Scene.Destroy.Post
    defaultArgs:
      mode: hook
tasks:
  - name: Echo Task
    description: Echoes its args with logs and progress
    defaultArgs:
      mode: echo
  - name: Slow Task
    description: Echoes after sleeping
    defaultArgs:
      mode: echo
      sleep: 0.6
  - name: Hang Task
    description: Sleeps for a long time (for Cancel)
    defaultArgs:
      mode: hang
  - name: Fail Task
    description: Answers with an error
    defaultArgs:
      mode: fail
"""

_made = []


def write_echo_plugin(folder, name: str = "Echo") -> Path:
    """Write `<folder>/<name>.yml` and echo.py; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / (name + ".yml")).write_text(ECHO_MANIFEST, encoding="utf-8")
    shutil.copyfile(ECHO_SCRIPT, folder / "echo.py")
    return folder


def echo_plugin_dir() -> Path:
    """A folder holding the Echo plugin (Echo.yml + echo.py), made once per process."""
    if not _made:
        root = Path(tempfile.mkdtemp(prefix="echo-plugin-"))
        atexit.register(shutil.rmtree, str(root), True)
        _made.append(write_echo_plugin(root / "Echo").resolve())
    return _made[0]
