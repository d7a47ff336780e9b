"""PlexSync installs and runs with whatever Python Stash finds: every route of the dependency
bootstrap (stashplugin/dependencies.py), run through the Stash emulator exactly as Stash runs it.

The "bare" Python is a fresh venv with no third-party package at all, as on the official Stash
Docker image. Two tests install plexapi and requests from the package index, as a new user's
first task does (pip's own cache keeps a second run fast).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

import pytest

from emulators.world import start_world, wait_for
from tools.package import install

# A faithful stand-in for the Community source's PythonDepManager (stashapp/CommunityScripts,
# plugins/PythonDepManager/deps.py): the same `ensure_import(*deps)` API and spec parsing, the
# same refusal without git (check_system_requirements -> log.throw raises a bare Exception after
# logging an error line), the same managed folders put first on sys.path. Only the download is
# replaced: "installing" points at the test venv's site-packages, so no network is needed.
DEP_MANAGER = r'''
import os, re, subprocess, sys

SITE = %(site)r
RECORD = %(record)r


def _log(level, s):
    for line in str(s).splitlines():
        print("\x01%%s\x02" %% level, line, file=sys.stderr, flush=True)


def throw(s):
    _log("e", s)
    raise Exception(s)


def check_system_requirements():
    for cmd, name in [(["git", "--version"], "git"), ([sys.executable, "-m", "pip", "--version"], "pip")]:
        try:
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        except (FileNotFoundError, subprocess.CalledProcessError):
            throw(f"PythonDepManager: \u274c {name} is required but not available")


def parse_package_spec(spec):
    if ">=" in spec:
        match = re.match(r"^([^>=]+)>=(.+)$", spec)
        if not match:
            throw(f"PythonDepManager: \u274c Invalid version constraint: {spec}")
        return match.group(1)
    match = re.match(r"^([^=@]+)(?:==(.+))?$", spec)
    if not match:
        throw(f"PythonDepManager: \u274c Invalid package specification: {spec}")
    return match.group(1)


def ensure_import(*deps):
    with open(RECORD, "a") as out:
        out.write(" ".join(deps) + "\n")
    check_system_requirements()
    for dep in deps:
        name = parse_package_spec(dep)
        _log("i", f"PythonDepManager: \U0001f4e6 Installing {dep} -> {name}_latest")
    if SITE in sys.path:
        sys.path.remove(SITE)
    sys.path.insert(0, SITE)
'''


def write_dep_manager(plugins_root, subfolder: str = "") -> str:
    """Put the PythonDepManager stand-in into `<plugins_root>/<subfolder>/PythonDepManager`;
    returns the file each ensure_import call is recorded in."""
    folder = os.path.join(str(plugins_root), subfolder, "PythonDepManager")
    os.makedirs(folder)
    record = os.path.join(str(plugins_root), "pdm-calls.txt")
    with open(os.path.join(folder, "__init__.py"), "w", encoding="utf-8") as fh:
        fh.write(DEP_MANAGER % {"site": sysconfig.get_paths()["purelib"], "record": record})
    return record


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory):
    """A Python with pip and no third-party package (what Stash's Docker image gives a plugin)."""
    folder = tmp_path_factory.mktemp("bare-venv")
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", str(folder)], check=True, timeout=300)
    python = str(folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    probe = subprocess.run([python, "-c", "import plexapi"], capture_output=True)
    assert probe.returncode != 0, "the bare venv must not see the test venv's packages"
    return python


def plugins_world(tmp_path, python, plugin_env=None, **settings):
    plugins = tmp_path / "plugins"
    plugin_dir = install(str(plugins / "PlexSync"))
    return plugins, start_world(
        plugin_dir, python=python, plugin_env=plugin_env, recovery_rates="", **settings
    )


def warnings_of(run) -> list:
    return [msg for level, msg in run.logs if level == "w"]


@pytest.mark.slow
def test_bare_python_installs_the_packages_itself_and_syncs_a_scene(tmp_path, bare_python):
    _plugins, world = plugins_world(tmp_path, bare_python)
    try:
        sid, rk = world.add_scene("bare.mp4", title="Bare")
        health = world.run_task("Health Check", timeout=900)
        assert health.error is None, health.logs
        folder = os.path.join(world.plugin_dir, "data", "python-packages")
        assert any("Installed plexapi" in msg and folder in msg for _l, msg in health.logs), health.logs
        assert os.path.isdir(os.path.join(folder, "plexapi"))

        run = world.run_task("Process Queue")
        assert run.error is None, run.logs
        world.edit(sid, title="Synced from a bare Python")
        wait_for(lambda: world.plex.item(rk)["title"] == "Synced from a bare Python", 120, "the sync")
        later = [t for t in world.stash.task_runs if t.run is not None and t is not health]
        assert not any("Installed plexapi" in msg for t in later for _l, msg in t.logs)  # said once
    finally:
        world.stop()


def test_python_dep_manager_from_the_community_source_is_used_for_a_plugin_installed_by_hand(
    tmp_path, bare_python
):
    plugins = tmp_path / "plugins"
    record = write_dep_manager(plugins, "community")
    _plugins, world = plugins_world(tmp_path, bare_python)
    try:
        run = world.run_task("Health Check")
        assert run.error is None, run.logs
        assert open(record).read().split() == ["plexapi>=4.15.0", "requests>=2.28.0"]
        assert not os.path.exists(os.path.join(world.plugin_dir, "data", "python-packages"))
        assert not warnings_of(run)
    finally:
        world.stop()


@pytest.mark.slow
def test_python_dep_manager_without_git_falls_back_to_pip_with_a_warning(tmp_path, bare_python):
    plugins = tmp_path / "plugins"
    record = write_dep_manager(plugins)  # next to PlexSync: on Stash's PYTHONPATH
    no_git = tmp_path / "empty-path"
    no_git.mkdir()
    _plugins, world = plugins_world(tmp_path, bare_python, plugin_env={"PATH": str(no_git)})
    try:
        run = world.run_task("Health Check", timeout=900)
        assert run.error is None, run.logs
        assert os.path.exists(record)
        (warning,) = [w for w in warnings_of(run) if "PythonDepManager" in w]
        assert "git is required" in warning and "pip" in warning
        assert not [m for level, m in run.logs if level == "e"]  # handled: a warning, not an error
        assert any("Installed plexapi" in msg for _l, msg in run.logs)
    finally:
        world.stop()


def test_hooks_do_not_load_python_dep_manager(world):
    plugins = os.path.dirname(world.plugin_dir)
    pdm = os.path.join(plugins, "PythonDepManager")
    os.makedirs(pdm)
    with open(os.path.join(pdm, "__init__.py"), "w") as fh:
        fh.write("raise SystemExit('hooks must not import PythonDepManager')\n")
    sid, rk = world.add_scene("deps.mp4")
    os.makedirs(os.path.join(world.plugin_dir, "data"), exist_ok=True)
    with open(os.path.join(world.plugin_dir, "data", "settings_cache.json"), "w") as fh:
        fh.write('{"pause_sync": true}')
    world.edit(sid, title="x")
    assert world.stash.hook_runs[-1].output == "queued"


def test_packages_that_cannot_be_installed_give_the_exact_command(tmp_path, bare_python):
    from emulators.plugin_runner import PluginRunner

    plugin_dir = install(str(tmp_path / "plugins" / "PlexSync"))
    # No package index and no wheels: pip fails the way it does on a machine without network.
    runner = PluginRunner(
        plugin_dir,
        python=bare_python,
        env={
            "PYTHONPATH": None,
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(tmp_path),
            "PIP_CONFIG_FILE": os.devnull,
        },
    )
    run = runner.run(
        {"mode": "status"},
        {"Scheme": "http", "Host": "127.0.0.1", "Port": 9, "PluginDir": plugin_dir},
        timeout=300,
    )
    assert run.returncode != 0
    folder = os.path.join(plugin_dir, "data", "python-packages")
    assert "could not install" in run.error and "plexapi" in run.error
    assert "-m pip install --target %s" % folder in run.error and "plexapi>=4.15.0" in run.error
    assert len([lv for lv, _m in run.logs if lv == "e"]) == 1


def test_a_python_without_pip_is_told_to_get_pip(tmp_path):
    from emulators.plugin_runner import PluginRunner

    folder = tmp_path / "no-pip"
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=300)
    python = str(folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    if subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode == 0:
        pytest.skip("this Python finds a pip of its own")
    plugin_dir = install(str(tmp_path / "plugins" / "PlexSync"))
    run = PluginRunner(plugin_dir, python=python, env={"PYTHONPATH": None}).run(
        {"mode": "status"},
        {"Scheme": "http", "Host": "127.0.0.1", "Port": 9, "PluginDir": plugin_dir},
        timeout=300,
    )
    assert "No module named pip" in run.error and "install pip for this Python first" in run.error
    assert "--target" in run.error
