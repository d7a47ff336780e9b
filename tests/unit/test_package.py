"""`make package`: the zip holds exactly the runtime files and the index entry matches it."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile

import yaml

from tests.conftest import ROOT
from tests.package import build, runtime_files


def test_zip_holds_exactly_the_runtime_files_and_no_tests(tmp_path):
    zip_path, index_path = build(str(tmp_path))
    names = sorted(zipfile.ZipFile(zip_path).namelist())
    assert names == runtime_files()
    assert "plexsync.py" in names and "PlexSync.yml" in names and "sync/queue.py" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "docs/", ".")) or "emulator" in n]


def test_index_entry_matches_the_zip(tmp_path):
    zip_path, index_path = build(str(tmp_path))
    (entry,) = yaml.safe_load(open(index_path, encoding="utf-8"))
    assert entry["id"] == "PlexSync" and entry["path"] == "PlexSync.zip"
    assert entry["sha256"] == hashlib.sha256(open(zip_path, "rb").read()).hexdigest()
    manifest = yaml.safe_load(open(os.path.join(ROOT, "PlexSync.yml"), encoding="utf-8"))
    assert entry["version"] == manifest["version"] and entry["name"] == manifest["name"]
    assert entry["requires"] == ["PythonDepManager"] and entry["date"]


def test_the_same_sources_give_the_same_zip(tmp_path):
    a, _ = build(str(tmp_path / "a"))
    b, _ = build(str(tmp_path / "b"))
    assert open(a, "rb").read() == open(b, "rb").read()


def test_unpacked_zip_runs_as_a_plugin(tmp_path):
    zip_path, _ = build(str(tmp_path / "dist"))
    target = tmp_path / "plugins" / "PlexSync"
    zipfile.ZipFile(zip_path).extractall(target)
    payload = ('{"server_connection": {"PluginDir": "%s"}, "args": {"hookContext": '
               '{"id": 3, "type": "Scene.Update.Post", "input": {"title": "x"}, "inputFields": ["title"]}}}'
               % str(target).replace("\\", "\\\\"))
    proc = subprocess.run([sys.executable, str(target / "plexsync.py")], input=payload.encode(), capture_output=True,
                          timeout=60, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert b'"output": "queued"' in proc.stdout, proc.stderr
