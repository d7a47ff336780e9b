"""A Stash and a Plex emulator sharing a library, and PlexSync's task context over them: for
integration tests that run the real drain and reconciliation in this process."""

from __future__ import annotations

from emulators.world import PLEX_TOKEN
from reconcile.tasks import process_queue, run_reconciliation, sync_all
from stashplugin.settings import Settings
from stashplugin.stash import StashClient
from stashplugin.task import TaskContext
from sync.jobs import PENDING

STASH = "/data/videos"
PLEX = "/media/movies"


class Library:
    """A Stash and a Plex sharing files under different mounts, and PlexSync's task context."""

    def __init__(self, stash, plex, data_dir):
        self.stash = stash
        self.plex = plex
        self.data_dir = data_dir
        self.section = plex.add_section("Movies", [PLEX])
        self.raw = {
            "plex_url": plex.url,
            "plex_token": PLEX_TOKEN,
            "path_map": "%s=%s" % (STASH, PLEX),
            "data_dir": data_dir,
            "recovery_rates": "",
            "reconcile_interval": "never",
        }

    def ctx(self, args=None, **settings):
        values = Settings.from_raw(dict(self.raw, **settings), strict=True, need_plex=True)
        conn = self.stash.server_connection()
        return TaskContext(conn, dict(args or {}), values, StashClient(conn))

    def add(self, name, in_plex=True, **fields):
        """A scene (title, details, studio, tags, performers, ...) and, unless told, its Plex item."""
        sid = self.stash.add_scene("%s/%s" % (STASH, name), size=1000, **fields)
        rk = self.plex.add_item(self.section, file="%s/%s" % (PLEX, name), size=1000) if in_plex else None
        return sid, rk

    def reconcile(self, scope="all", **kw):
        settings = kw.pop("settings", {})
        return run_reconciliation(self.ctx(**settings), scope, **kw)

    def drain(self, **settings):
        return process_queue(self.ctx(**settings))

    def sync_everything(self):
        """Sync All and the drain after it: every scene synced (no reconciliation recorded)."""
        sync_all(self.ctx({"scope": "all"}))
        report = self.drain()
        assert report["failed"] == 0 and report["dead_lettered"] == 0, report

    def queued(self) -> dict:
        """scene id -> pending job."""
        jobs = self.ctx().queue().jobs()
        return {j.scene_id: j for j in jobs if j.state == PENDING}
