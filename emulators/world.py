"""Both emulators and an installed plugin, wired together as in real life: Stash runs the plugin's
hooks and tasks, the plugin talks to Plex over real HTTP. Used by the end-to-end tests and the demo."""

from __future__ import annotations

import os
import sys
import tempfile
import time

from emulators.plex import PlexEmulator
from emulators.stash import StashEmulator
from tools.package import install

PLEX_TOKEN = "plex-secret-token-4f9a"
STASH_PREFIX = "/data/videos"
PLEX_PREFIX = "/media/movies"


class World:
    """A Stash and a Plex that share files under different mount points."""

    def __init__(self, stash, plex, plugin_dir, section):
        self.stash = stash
        self.plex = plex
        self.plugin_dir = plugin_dir
        self.section = section

    def add_scene(self, name: str, in_plex: bool = True, size: int = 1000, **fields) -> tuple:
        """A scene in Stash and (optionally) its file in Plex; returns (scene_id, rating_key)."""
        sid = self.stash.add_scene("%s/%s" % (STASH_PREFIX, name), size=size, **fields)
        rk = (
            self.plex.add_item(self.section, file="%s/%s" % (PLEX_PREFIX, name), size=size)
            if in_plex
            else None
        )
        return sid, rk

    def named(self, kind: str, name: str) -> str:
        """The id of the studio/performer/tag called `name`, created on first use."""
        cache = self.__dict__.setdefault("_named", {})
        if (kind, name) not in cache:
            cache[(kind, name)] = getattr(self.stash, "add_" + kind)(name)
        return cache[(kind, name)]

    def configure(self, **settings):
        current = dict(self.stash.plugin_settings)
        current.update(settings)
        self.stash.plugin_settings = current

    def apply(self, **settings):
        """Change PlexSync's settings in Stash the way a user does, and let the hooks see them:
        hooks read the settings the last task cached, so run one (View Queue Status changes nothing)."""
        self.configure(**settings)
        self.run_task("View Queue Status")

    def run_task(self, name: str, args=None, timeout: float = 120):
        job = self.stash.run_task(name, args)
        assert self.stash.wait_idle(timeout), "Stash's job queue did not finish"
        return self.stash.task_run(job)

    def graphql(self, query: str, variables=None):
        import requests

        conn = self.stash.server_connection()
        cookie = conn["SessionCookie"]
        resp = requests.post(
            self.stash.url + "/graphql",
            json={"query": query, "variables": variables or {}},
            cookies={cookie["Name"]: cookie["Value"]},
            timeout=120,
        )
        body = resp.json()
        assert not body.get("errors"), body
        return body["data"]

    def edit(self, scene_id, **fields):
        """Save a scene the way Stash's UI does (sceneUpdate), which runs the hook synchronously."""
        fields["id"] = str(scene_id)
        return self.graphql(
            "mutation($input: SceneUpdateInput!) { sceneUpdate(input: $input) { id } }", {"input": fields}
        )

    def stop(self):
        self.stash.wait_idle(60)
        self.stash.stop()
        self.plex.stop()
        stop_watcher(data_dir(self))


def stop_watcher(folder: str) -> None:
    """End the watcher a stopped drain left in `folder` (by its pid, only while it holds its lock):
    once the emulators are gone it would otherwise wait up to an hour for Stash to come back."""
    import json
    import signal

    from sync.lock import FileLock
    from worker.watcher import LOCK_NAME, RECORD_NAME

    record = os.path.join(folder, RECORD_NAME)
    deadline = time.monotonic() + 10.0  # one just started may not have taken its lock yet
    while os.path.exists(record) and time.monotonic() < deadline:
        try:
            with open(record) as fh:
                value = json.load(fh)
        except (OSError, ValueError):
            value = {}
        lock = FileLock(os.path.join(folder, LOCK_NAME))
        if lock.acquire(timeout=0):
            lock.release()
            if value.get("state") != "starting":
                return  # none alive
            time.sleep(0.1)  # one is starting: look again once it has taken its lock
            continue
        pid = value.get("pid")
        if isinstance(pid, int) and pid > 0:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
            return
        time.sleep(0.1)


def data_dir(world) -> str:
    """The installed plugin's data folder (its default location)."""
    return os.path.join(world.plugin_dir, "data")


def dead_letter(world, sid, error_class: str = "plex_unreachable", clock=time.time) -> None:
    """Leave a change in the dead-letter queue as a drain does after its last failed attempt."""
    from sync.queue import FileQueue

    queue = FileQueue(data_dir(world), clock=clock)
    queue.enqueue(sid, ["title"])
    leased = queue.lease(100, 300.0, owner="drain-test")
    for other in leased:
        if other.scene_id != str(sid):
            queue.release(other)
    (job,) = [j for j in leased if j.scene_id == str(sid)]
    assert queue.nack(job, error_class, "failed in an earlier run", max_retries=1) == "dead"


def wait_for(predicate, timeout: float = 60.0, what: str = "a condition"):
    """Poll `predicate` until it is truthy and return its value; fail after `timeout` seconds
    (a bound on waiting, not a claim about speed)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting for %s" % what)
        time.sleep(0.05)


def start_world(
    plugin_dir: str = None, python: str = sys.executable, plugin_env: dict = None, **settings
) -> World:
    """Install the plugin (into a temp folder unless given), start both emulators, configure it.

    `python` is the interpreter Stash finds (a bare one to test the dependency bootstrap);
    `plugin_env` changes the plugin processes' environment (PYTHONPATH is removed by default:
    the installed copy must run on its own files, as in Stash)."""
    # A folder of its own: Stash puts the folder above the plugin's on PYTHONPATH.
    plugin_dir = plugin_dir or install(os.path.join(tempfile.mkdtemp(prefix="plexsync-plugin-"), "PlexSync"))
    plex = PlexEmulator(token=PLEX_TOKEN, quiet=True).start()
    section = plex.add_section("Movies", locations=[PLEX_PREFIX], type="movie")
    env = {"PYTHONPATH": None}
    env.update(plugin_env or {})
    stash = StashEmulator(plugin_dir=plugin_dir, python=python, plugin_env=env).start()
    # The daily reconciliation (on by default) would add a drain to the first invocation of every
    # world; tests about reconciliation switch it on, and one checks the default itself.
    base = {
        "plex_url": plex.url,
        "plex_token": PLEX_TOKEN,
        "path_map": "%s=%s" % (STASH_PREFIX, PLEX_PREFIX),
        "reconcile_interval": "never",
    }
    base.update(settings)
    stash.plugin_settings = base
    return World(stash, plex, plugin_dir, section)
