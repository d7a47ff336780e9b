"""Shared fixtures: an installed copy of the plugin, and torture-run sizing."""

from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORTURE = os.environ.get("PLEXSYNC_TORTURE") == "1"


def scaled(bounded: int, torture: int) -> int:
    """How many trials a reliability test runs: bounded in `make test`, long in `make torture`."""
    return torture if TORTURE else bounded


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def python():
    return sys.executable


@pytest.fixture(autouse=True)
def _no_watcher_left_behind(request):
    """A drain that stops with work left starts a detached watcher (worker/watcher.py); end the
    ones a test left in its tmp_path, by their pid, once the test is over."""
    root = str(request.getfixturevalue("tmp_path")) if "tmp_path" in request.fixturenames else None
    yield
    if root is None:
        return
    from emulators.world import stop_watcher

    for folder, _dirs, files in os.walk(root):
        if "watcher.lock" in files:
            stop_watcher(folder)


@pytest.fixture
def plugin_dir(tmp_path):
    """The plugin installed into a fresh folder, as Stash unpacks it (data goes to <dir>/data)."""
    from tools.package import install

    return install(str(tmp_path / "plugins" / "PlexSync"))


@pytest.fixture
def runner(plugin_dir):
    from emulators.plugin_runner import PluginRunner

    # No PYTHONPATH: the installed copy must run on its own files, as in Stash.
    return PluginRunner(plugin_dir, python=sys.executable, env={"PYTHONPATH": None})


# --- the secret scan -------------------------------------------------------------------------
# Every plugin process any test runs is recorded; at the end of the session every stdout, stderr
# and every file in every installed plugin's data folder is scanned for the Plex tokens and
# Stash session cookies the tests used. A single hit fails the whole run.
_SECRETS = set()
_RUNS = []


def register_secret(value) -> None:
    if isinstance(value, str) and len(value) >= 6:
        _SECRETS.add(value)


def _install_recorders() -> None:
    from emulators import plugin_runner
    from emulators.plex import server as plex_server

    original_wait = plugin_runner.PluginHandle.wait

    def wait(self, timeout=None):
        run = original_wait(self, timeout)
        if run not in _RUNS:
            _RUNS.append(run)
            cookie = ((run.input or {}).get("server_connection") or {}).get("SessionCookie") or {}
            register_secret(cookie.get("Value") if isinstance(cookie, dict) else None)
        return run

    plugin_runner.PluginHandle.wait = wait
    original_init = plex_server.PlexEmulator.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        register_secret(self.token)

    plex_server.PlexEmulator.__init__ = init


def pytest_configure(config):
    _install_recorders()
    from emulators.world import PLEX_TOKEN

    register_secret(PLEX_TOKEN)


def _data_files(root: str):
    for dirpath, _dirnames, filenames in os.walk(root):
        parts = dirpath.replace("\\", "/").split("/")
        if "data" in parts and ("PlexSync" in parts or any(p.startswith("plexsync-plugin-") for p in parts)):
            for name in filenames:
                yield os.path.join(dirpath, name)


def find_leaks(runs, roots) -> list:
    """Where a registered secret appears: plugin output, logs, or data files."""
    leaks = []
    secrets = sorted(_SECRETS)
    for run in runs:
        for label, text in (("stdout", run.stdout or ""), ("stderr", run.stderr or "")):
            for secret in secrets:
                if secret in text:
                    leaks.append("%s of %s" % (label, " ".join(run.command[-1:])))
    for root in roots:
        for path in _data_files(root):
            try:
                blob = open(path, "rb").read()
            except OSError:
                continue
            for secret in secrets:
                if secret.encode("utf-8") in blob:
                    leaks.append(path)
    return leaks


def _worker_output(config):
    """The dict a pytest-xdist worker sends to the controller at its end (None without xdist)."""
    return getattr(config, "workeroutput", None)


def pytest_sessionfinish(session, exitstatus):
    """Scan what this process ran. Under pytest-xdist every worker scans its own plugin runs and
    its own tmp folder (the secrets are known only there) and hands the result to the controller,
    which fails the run (pytest_testnodedown below); the controller itself ran no plugin."""
    config = session.config
    if hasattr(config, "_plexsync_worker_leaks"):  # the xdist controller
        leaks = config._plexsync_worker_leaks
        if leaks:
            config._plexsync_leaks = leaks
            session.exitstatus = 1
        return
    roots = []
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        try:
            roots.append(str(factory.getbasetemp()))
        except Exception:
            pass
    import glob
    import tempfile

    roots.extend(glob.glob(os.path.join(tempfile.gettempdir(), "plexsync-plugin-*")))
    leaks = sorted(set(find_leaks(_RUNS, roots)))
    output = _worker_output(config)
    if output is not None:
        output["plexsync_runs"] = len(_RUNS)
        output["plexsync_leaks"] = leaks
    if leaks:
        config._plexsync_leaks = leaks
        session.exitstatus = 1


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config, specs):
    """Under pytest-xdist (the controller): collect what the workers' secret scans found."""
    config._plexsync_worker_runs = 0
    config._plexsync_worker_leaks = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    config = node.config
    output = getattr(node, "workeroutput", None) or {}
    config._plexsync_worker_runs += output.get("plexsync_runs", 0)
    config._plexsync_worker_leaks = sorted(
        set(config._plexsync_worker_leaks) | set(output.get("plexsync_leaks", ()))
    )


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    leaks = getattr(config, "_plexsync_leaks", None)
    runs = getattr(config, "_plexsync_worker_runs", None)
    if runs is None:
        runs = len(_RUNS)
    if leaks:
        terminalreporter.write_line(
            "SECRET LEAK: a Plex token or Stash session appeared in %d place(s):" % len(leaks), red=True
        )
        for leak in leaks[:20]:
            terminalreporter.write_line("  " + leak, red=True)
    else:
        terminalreporter.write_line(
            "secret scan: %d plugin runs and every data folder checked, no token or session found" % runs
        )
