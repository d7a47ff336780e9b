"""`make package`: the plugin zip and the `index.yml` of a Stash plugin source.

Only runtime files go in (no tests, no emulators, no bench). Stash's plugin sources are an
`index.yml` listing, per package, id, name, version, date, path (the zip, relative to the
index), sha256 of the zip and requires; Stash downloads the zip, checks the hash and unpacks it
into a folder named after the id.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN_ID = "PlexSync"
RUNTIME_FILES = ("PlexSync.yml", "plexsync.py", "requirements.txt", "README.md", "LICENSE")
RUNTIME_PACKAGES = ("sync", "worker", "reconcile", "stashplugin")


def runtime_files(root: str = ROOT) -> list:
    """Paths (relative to `root`) of every file the installed plugin needs, sorted."""
    files = [f for f in RUNTIME_FILES if os.path.exists(os.path.join(root, f))]
    for package in RUNTIME_PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, package)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    files.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return sorted(files)


def install(dest: str, root: str = ROOT) -> str:
    """Copy the runtime files into `dest` as Stash would unpack them; returns `dest`."""
    for rel in runtime_files(root):
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(root, rel), target)
    return dest


def manifest_version(root: str = ROOT) -> str:
    for line in open(os.path.join(root, "PlexSync.yml"), encoding="utf-8"):
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip().strip("\"'")
    raise SystemExit("PlexSync.yml has no version")


def build(out_dir: str, root: str = ROOT) -> tuple:
    """Write <out_dir>/PlexSync.zip and <out_dir>/index.yml; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    zip_path = os.path.join(out_dir, PLUGIN_ID + ".zip")
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in runtime_files(root):
            info = zipfile.ZipInfo(rel, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(os.path.join(root, rel), "rb") as fh:
                zf.writestr(info, fh.read())
    digest = hashlib.sha256(open(zip_path, "rb").read()).hexdigest()
    with open(os.path.join(root, "PlexSync.yml"), encoding="utf-8") as fh:
        name = next((l.split(":", 1)[1].strip() for l in fh if l.startswith("name:")), PLUGIN_ID)
    index = os.path.join(out_dir, "index.yml")
    with open(index, "w", encoding="utf-8") as fh:
        fh.write("- id: %s\n  name: %s\n  metadata:\n    description: Syncs Stash metadata into Plex automatically and durably.\n"
                 "  version: %s\n  date: \"%s\"\n  path: %s.zip\n  sha256: %s\n  requires:\n    - PythonDepManager\n"
                 % (PLUGIN_ID, name, manifest_version(root), time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                    PLUGIN_ID, digest))
    return zip_path, index


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "dist"
    z, i = build(out)
    print("Built %s and %s (%d files)" % (z, i, len(runtime_files())))
