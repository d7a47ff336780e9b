"""PlexSync's Python packages, found or installed before anything third-party is imported.

Stash runs the plugin with whatever `python3` it finds, often one without `plexapi` (the
official Docker image has `requests` but not `plexapi`). `ensure_packages` tries, in order:

1. already importable at a version PlexSync works with (including what step 3 installed
   earlier) -> nothing to do;
2. PythonDepManager, the Community source's installer: found on `sys.path` (Stash puts the
   folder holding the plugin's folder on PYTHONPATH), in `<plugins>/community/` (where Stash
   installs Community plugins), or next to PlexSync -> its `ensure_import`. It refuses to work
   without `git` (the official Docker image has none): that is a warning with its reason;
3. `python -m pip install --target <data folder>/python-packages`: PEP 668's
   "externally-managed-environment" check does not apply to `--target`, so this works on the
   official image too. Logged once, saying what was installed where.

If all three fail, `MissingPackages` carries one sentence with the exact command to run.
Standard library (plus `sync.lock`) only: this runs before those packages exist.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata

from stashplugin import log
from sync.lock import FileLock

# (import name, distribution name, lowest version the whole test suite passes with). The floors
# are the ones in requirements.txt and requirements-floor.txt (a unit test keeps the three in step);
# `make test` runs the integration tier and the end-to-end sync tests on exactly these versions.
REQUIREMENTS = (
    ("plexapi", "plexapi", "4.15.0"),
    ("requests", "requests", "2.28.0"),
)
PACKAGES_FOLDER = "python-packages"
PDM_NAME = "PythonDepManager"
PIP_TIMEOUT = 600  # seconds; a slow mirror on a small NAS takes a while


class MissingPackages(Exception):
    """The packages are not there and could not be installed; the message says what to run."""


def specs() -> list:
    """["plexapi>=4.15.0", ...]: the form pip and PythonDepManager's `ensure_import` accept."""
    return ["%s>=%s" % (dist, floor) for _module, dist, floor in REQUIREMENTS]


def version_tuple(text) -> tuple:
    """ "4.18.3" -> (4, 18, 3); "2.32.0.post1" -> (2, 32, 0); "" -> ()."""
    numbers = []
    for part in str(text or "").split("."):
        match = re.match(r"\d+", part)
        if not match:
            break
        numbers.append(int(match.group(0)))
        if match.group(0) != part:
            break
    return tuple(numbers)


def installed_version(module: str, dist: str):
    """The version of `dist` that `import module` would load, "" when it cannot tell, None when
    the module is not importable at all."""
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):
        return None
    try:
        return metadata.version(dist)
    except Exception:  # noqa: BLE001 - a vendored copy without metadata: importable is enough
        return ""


def missing() -> list:
    """Distributions that are not importable, or older than PlexSync's floor."""
    importlib.invalidate_caches()
    absent = []
    for module, dist, floor in REQUIREMENTS:
        version = installed_version(module, dist)
        if version is None or (version and version_tuple(version) < version_tuple(floor)):
            absent.append(dist)
    return absent


def packages_folder(data_dir: str) -> str:
    return os.path.join(data_dir, PACKAGES_FOLDER)


def use_folder(folder: str) -> None:
    """Put `folder` first on sys.path (its packages win over older ones of the system)."""
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    importlib.invalidate_caches()


# --- PythonDepManager --------------------------------------------------------------------------


def dep_manager_candidates(plugin_dir: str) -> list:
    """Folders that may hold a `PythonDepManager` package folder, most likely first.

    Stash installs a plugin from a source into `<plugins>/<source folder>/<id>` (the Community
    source's folder is `community`) and one installed by hand into `<plugins>/<id>`, and puts only
    the folder above the plugin's own on PYTHONPATH (pkg/plugin/raw.go), so PlexSync looks around.
    """
    parent = os.path.dirname(os.path.abspath(plugin_dir))
    grandparent = os.path.dirname(parent)
    folders = [parent, os.path.join(parent, "community"), grandparent, os.path.join(grandparent, "community")]
    seen, out = set(), []
    for folder in folders:
        key = os.path.normcase(folder)
        if key not in seen:
            seen.add(key)
            out.append(folder)
    return out


def find_dep_manager(plugin_dir: str):
    """Import PythonDepManager's `ensure_import` from `sys.path` or a folder around PlexSync;
    None when it is not installed."""
    try:
        found = importlib.util.find_spec(PDM_NAME) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        for folder in dep_manager_candidates(plugin_dir):
            if os.path.isfile(os.path.join(folder, PDM_NAME, "__init__.py")):
                sys.path.append(folder)
                importlib.invalidate_caches()
                found = True
                break
    if not found:
        return None
    module = importlib.import_module(PDM_NAME)
    return getattr(module, "ensure_import", None)


def install_with_dep_manager(plugin_dir: str) -> bool:
    """Ask PythonDepManager for the packages; True when it was there and did not fail.

    Its log lines (written to stderr in Stash's protocol) are passed on, except the error line
    it writes before raising: PlexSync carries on without it, so that is one warning with the
    reason, not an error in Stash's log."""
    captured = io.StringIO()
    real_stderr = sys.stderr
    failed = None
    try:
        ensure_import = find_dep_manager(plugin_dir)
        if ensure_import is None:
            return False
        sys.stderr = captured
        try:
            ensure_import(*specs())
        finally:
            sys.stderr = real_stderr
    except Exception as exc:  # noqa: BLE001 - its failure (no git, no network) must not end the task
        failed = " ".join(str(exc).split()) or type(exc).__name__
    lines = captured.getvalue().splitlines(True)
    if failed:
        lines = [line for line in lines if not line.startswith("\x01e\x02")]
    try:
        real_stderr.write("".join(lines))
        real_stderr.flush()
    except (OSError, ValueError):
        pass
    if failed:
        log.warning(
            "PythonDepManager could not install PlexSync's packages (%s); PlexSync installs them "
            "itself with pip instead." % failed
        )
        return False
    return True


# --- pip --target into the data folder ---------------------------------------------------------


def pip_command(folder: str, python: str = None) -> list:
    return [
        python or sys.executable,
        "-m",
        "pip",
        "install",
        "--target",
        folder,
        "--no-input",
        "--disable-pip-version-check",
        "--upgrade",
    ] + specs()


def manual_command(folder: str) -> str:
    """The command a person can run by hand (quoted for a shell)."""

    def quote(arg: str) -> str:
        return '"%s"' % arg if re.search(r"[\s<>|&;()]", arg) else arg

    python = os.path.basename(sys.executable) or "python3"
    return " ".join(
        quote(a)
        for a in pip_command(folder, python)
        if a not in ("--no-input", "--disable-pip-version-check")
    )


def _pip_error(output: str) -> str:
    lines = [line.strip() for line in (output or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors[-1] if errors else lines[-1] if lines else "no output")[:300]


def install_with_pip(folder: str) -> None:
    """Install the packages into `folder` (replacing what an older run put there); raises
    MissingPackages with the command to run when pip fails."""
    try:
        os.makedirs(os.path.dirname(folder), mode=0o700, exist_ok=True)
        lock = FileLock(folder + ".lock")
        lock.acquire()
    except OSError as exc:
        raise MissingPackages(
            "PlexSync needs the Python packages %s and cannot write to %s (%s); make it writable "
            "or run: %s" % (_names(), os.path.dirname(folder), exc.strerror or exc, manual_command(folder))
        )
    try:
        _install_locked(folder)
    finally:
        lock.release()
    use_folder(folder)


def _install_locked(folder: str) -> None:
    if os.path.isdir(folder):
        use_folder(folder)
        if not missing():
            return  # another process installed them while this one waited
    partial = folder + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    log.info(
        "PlexSync is installing the Python packages it needs (%s) into %s; this takes a minute "
        "the first time." % (", ".join(specs()), folder)
    )
    try:
        proc = subprocess.run(
            pip_command(partial),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=PIP_TIMEOUT,
        )
        output = proc.stdout.decode("utf-8", "replace")
        problem = None if proc.returncode == 0 else _pip_error(output)
    except (OSError, subprocess.SubprocessError) as exc:
        problem = str(exc) or type(exc).__name__
    if problem and "No module named pip" in problem:
        problem += "; install pip for this Python first, e.g. apt install python3-pip or apk add py3-pip"
    if problem:
        shutil.rmtree(partial, ignore_errors=True)
        raise MissingPackages(
            "PlexSync needs the Python packages %s and could not install them (%s); run: %s"
            % (_names(), problem, manual_command(folder))
        )
    # Swap in whole: a process killed mid-install leaves `.partial`, never a half-filled folder in use.
    old = folder + ".old"
    shutil.rmtree(old, ignore_errors=True)
    try:
        if os.path.isdir(folder):
            os.replace(folder, old)  # Windows refuses while another PlexSync process uses it
        os.replace(partial, folder)
    except OSError as exc:
        raise MissingPackages(
            "PlexSync installed its Python packages but could not put them in place in %s (%s); "
            "run the task again once no other PlexSync task runs, or run: %s"
            % (folder, exc.strerror or exc, manual_command(folder))
        )
    shutil.rmtree(old, ignore_errors=True)


def _names() -> str:
    return " and ".join(dist for _module, dist, _floor in REQUIREMENTS)


def _versions() -> str:
    return ", ".join(
        "%s %s" % (dist, installed_version(module, dist) or "?") for module, dist, _f in REQUIREMENTS
    )


def ensure_packages(plugin_dir: str, data_dir: str) -> None:
    """Make `plexapi` and `requests` importable at PlexSync's floor versions, or raise
    MissingPackages with one sentence that names the command to run."""
    folder = packages_folder(data_dir)
    if os.path.isdir(folder):
        use_folder(folder)
    if not missing():
        return
    if install_with_dep_manager(plugin_dir) and not missing():
        return
    install_with_pip(folder)
    still = missing()
    if still:
        raise MissingPackages(
            "PlexSync installed its Python packages into %s but still cannot import %s; run: %s"
            % (folder, " and ".join(still), manual_command(folder))
        )
    log.info(
        "Installed %s for PlexSync into %s (pip --target); later runs use them from there."
        % (_versions(), folder)
    )
