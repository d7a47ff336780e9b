"""`make package`: the zip holds exactly the runtime files and the index entry matches it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import zipfile

import pytest
import yaml

from tests.conftest import ROOT
from tools.package import RUNTIME_FILES, RUNTIME_PACKAGES, build, revision, runtime_files


def test_zip_holds_exactly_the_runtime_files_and_no_tests(tmp_path):
    zip_path, index_path = build(str(tmp_path))
    names = sorted(zipfile.ZipFile(zip_path).namelist())
    assert names == runtime_files()
    assert "plexsync.py" in names and "PlexSync.yml" in names and "sync/queue.py" in names
    assert not [
        n for n in names if n.startswith(("tests/", "bench/", "docs/", "tools/", ".")) or "emulator" in n
    ]


def test_index_entry_matches_the_zip(tmp_path):
    zip_path, index_path = build(str(tmp_path))
    (entry,) = yaml.safe_load(open(index_path, encoding="utf-8"))
    assert entry["id"] == "PlexSync" and entry["path"] == "PlexSync.zip"
    assert entry["sha256"] == hashlib.sha256(open(zip_path, "rb").read()).hexdigest()
    manifest = yaml.safe_load(open(os.path.join(ROOT, "PlexSync.yml"), encoding="utf-8"))
    assert entry["version"].startswith(manifest["version"] + "-") and entry["name"] == manifest["name"]
    assert "requires" not in entry  # Stash resolves it only within one source: PlexSync installs its packages
    time.strptime(entry["date"], "%Y-%m-%d %H:%M:%S")  # pkg.TimeFormat, read as UTC


def test_the_same_sources_give_the_same_zip(tmp_path):
    a, _ = build(str(tmp_path / "a"))
    b, _ = build(str(tmp_path / "b"))
    assert open(a, "rb").read() == open(b, "rb").read()


def test_unpacked_zip_runs_as_a_plugin(tmp_path):
    zip_path, _ = build(str(tmp_path / "dist"))
    target = tmp_path / "plugins" / "PlexSync"
    zipfile.ZipFile(zip_path).extractall(target)
    payload = (
        '{"server_connection": {"PluginDir": "%s"}, "args": {"hookContext": '
        '{"id": 3, "type": "Scene.Update.Post", "input": {"title": "x"}, "inputFields": ["title"]}}}'
        % str(target).replace("\\", "\\\\")
    )
    proc = subprocess.run(
        [sys.executable, str(target / "plexsync.py")],
        input=payload.encode(),
        capture_output=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert b'"output": "queued"' in proc.stdout, proc.stderr


def index_entry(index_path) -> dict:
    (entry,) = yaml.safe_load(open(index_path, encoding="utf-8"))
    return entry


def git(*args, cwd=ROOT):
    return subprocess.run(["git"] + list(args), cwd=cwd, capture_output=True, text=True)


def test_the_zip_holds_no_plugin_manifest_but_plexsyncs(tmp_path):
    zip_path, _ = build(str(tmp_path))
    assert [n for n in zipfile.ZipFile(zip_path).namelist() if n.endswith((".yml", ".yaml"))] == [
        "PlexSync.yml"
    ]
    assert "LICENSE" in zipfile.ZipFile(zip_path).namelist()


def _clone_files() -> list:
    """The files a `git clone` of this repository holds (the working tree without ignored files
    when git is not there)."""
    listed = git("ls-files") if shutil.which("git") else None
    if listed is not None and listed.returncode == 0 and listed.stdout.strip():
        return [p for p in listed.stdout.splitlines() if os.path.exists(os.path.join(ROOT, p))]
    skip = {
        ".git",
        ".venv",
        ".venv-floor",
        ".cache",
        "dist",
        "__pycache__",
        ".pytest_cache",
        ".hypothesis",
        "data",
    }
    out = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip]
        out += [os.path.relpath(os.path.join(folder, f), ROOT).replace(os.sep, "/") for f in files]
    return out


def test_a_clone_in_stashs_plugins_folder_is_exactly_one_plugin():
    # Stash loads every *.yml below its plugins folder as a plugin manifest
    # (pkg/plugin/plugins.go, Cache.ReloadPlugins); test manifests are written at test time.
    assert [p for p in _clone_files() if p.endswith(".yml")] == ["PlexSync.yml"]


def test_the_index_date_is_the_last_commit_of_the_code_and_the_version_follows_it(tmp_path):
    if not shutil.which("git") or git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout")
    paths = list(RUNTIME_FILES) + list(RUNTIME_PACKAGES)
    if git("status", "--porcelain", "--", *paths).stdout.strip():
        pytest.skip("runtime files have uncommitted changes (the content fallback is tested below)")
    short, stamp = git("log", "-1", "--format=%h %ct", "--", *paths).stdout.split()
    entry = index_entry(build(str(tmp_path / "a"))[1])
    assert entry["date"] == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(stamp)))
    assert entry["version"].endswith("-" + short)
    assert index_entry(build(str(tmp_path / "b"))[1]) == entry  # a rebuild is no upgrade


def test_without_git_the_version_changes_only_when_the_code_does(tmp_path):
    tree = tmp_path / "tree"
    for rel in runtime_files():
        os.makedirs(os.path.dirname(str(tree / rel)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), str(tree / rel))
    no_git = str(tmp_path / "no-such-git")
    first, first_date = revision(str(tree), git=no_git)
    assert revision(str(tree), git=no_git) == (first, first_date)
    os.utime(str(tree / "README.md"))  # touched, unchanged: same version
    assert revision(str(tree), git=no_git)[0] == first
    with open(str(tree / "sync" / "queue.py"), "a") as fh:
        fh.write("\n# changed\n")
    os.utime(str(tree / "sync" / "queue.py"), (2000000000, 2000000000))
    changed, changed_date = revision(str(tree), git=no_git)
    assert changed != first and changed_date == "2033-05-18 03:33:20"
    entry = index_entry(build(str(tmp_path / "dist"), root=str(tree), git=no_git)[1])
    assert entry["version"] == changed and entry["date"] == changed_date


def test_make_package_needs_nothing_but_python3():
    makefile = open(os.path.join(ROOT, "Makefile"), encoding="utf-8").read()
    target = makefile.split("\npackage:", 1)[1].split("\n\n", 1)[0]
    assert target.splitlines()[0].strip() == ""  # no prerequisites (no venv)
    assert "$(PYTHON) -m tools.package" in target
    source = open(os.path.join(ROOT, "tools", "package.py"), encoding="utf-8").read()
    imports = {
        line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))
    }
    assert imports <= {"__future__", "hashlib", "os", "shutil", "subprocess", "sys", "time", "zipfile"}
