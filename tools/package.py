"""`make package`: the plugin zip and the `index.yml` of a Stash plugin source (standard library only).

Only runtime files go in (no tests, no emulators, no bench). Stash's plugin sources are an
`index.yml` listing, per package, id, name, version, date, path (the zip, relative to the
index) and sha256 of the zip; Stash downloads the zip, checks the hash and unpacks it into a
folder named after the id. Stash offers an upgrade when the index's `date` is later than the
installed one (pkg/pkg/pkg.go, PackageVersion.Upgradable), so, as the Community source's
build_site.sh does, `date` is the last commit of the runtime files and `version` is the
manifest's version plus that commit's short hash: both change only when the code does. Without
git (a tarball, a machine without it) a hash of the files' contents and their newest
modification time take their place. No `requires`: Stash resolves requirements only within one
source (internal/api/resolver_query_package.go), and PlexSync installs its packages itself.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
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


def _git_revision(root: str, git: str) -> tuple | None:
    """(short hash, commit time) of the last commit that touched the runtime files, or None
    when git is missing, this is no git checkout, or a runtime file has uncommitted changes."""
    paths = list(RUNTIME_FILES) + list(RUNTIME_PACKAGES)
    try:
        dirty = subprocess.run(
            [git, "status", "--porcelain", "--"] + paths, cwd=root, capture_output=True, timeout=60
        )
        last = subprocess.run(
            [git, "log", "-1", "--format=%h %ct", "--"] + paths, cwd=root, capture_output=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return None
    fields = last.stdout.decode("ascii", "replace").split()
    if (
        dirty.returncode
        or last.returncode
        or dirty.stdout.strip()
        or len(fields) != 2
        or not fields[1].isdigit()
    ):
        return None
    return fields[0], int(fields[1])


def _content_revision(root: str) -> tuple:
    """(short hash of the runtime files' names and bytes, their newest modification time)."""
    digest = hashlib.sha256()
    newest = 0
    for rel in runtime_files(root):
        path = os.path.join(root, rel)
        digest.update(rel.encode("utf-8") + b"\0")
        with open(path, "rb") as fh:
            digest.update(hashlib.sha256(fh.read()).digest())
        newest = max(newest, int(os.path.getmtime(path)))
    return digest.hexdigest()[:7], newest


def revision(root: str = ROOT, git: str = "git") -> tuple:
    """(index version, index date "YYYY-MM-DD HH:MM:SS" in UTC) for the code in `root`."""
    short, when = _git_revision(root, git) or _content_revision(root)
    return "%s-%s" % (manifest_version(root), short), time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when))


def build(out_dir: str, root: str = ROOT, git: str = "git") -> tuple:
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
    with open(zip_path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    with open(os.path.join(root, "PlexSync.yml"), encoding="utf-8") as fh:
        name = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("name:")), PLUGIN_ID)
    version, date = revision(root, git)
    index = os.path.join(out_dir, "index.yml")
    with open(index, "w", encoding="utf-8") as fh:
        fh.write(
            "- id: %s\n  name: %s\n  metadata:\n    description: Syncs Stash metadata into Plex automatically and durably.\n"
            "  version: %s\n  date: \"%s\"\n  path: %s.zip\n  sha256: %s\n"
            % (PLUGIN_ID, name, version, date, PLUGIN_ID, digest)
        )
    return zip_path, index


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "dist"
    z, i = build(out)
    print("Built %s and %s (%d files)" % (z, i, len(runtime_files())))
