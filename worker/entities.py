"""Entity jobs: "tag 17 changed" becomes a sync of every scene it concerns.

Stash reports a rename, deletion or merge of a tag, performer or studio with that entity's own
hook only (see stashplugin/hook.py). The hook queues one job keyed "<kind>:<id>", coalesced like
a scene's; the drain hands it here before anything goes to Plex:

* Renamed (or merged into it: Tag.Merge.Post names the destination, which the merged scenes now
  carry): one paged Stash query, `findScenes` with `<kind>s INCLUDES id` (depth 0), asking only
  for ids, 1,000 per page.
* Deleted: Stash has already removed it from its scenes, so no query can name them. They are
  the scenes whose metadata, as PlexSync would write it now, differs from what PlexSync last
  wrote (`sync_state.jsonl` keeps a hash per synced scene): one paged pass over Stash's scenes
  with only the synced fields, no Plex request, once for all the deletions leased together.
  A scene never synced is not in Plex with the deleted name, so it needs nothing.

The scenes found are queued as ordinary jobs (`enqueue_many`: one fsync per 500, coalesced with
what is already queued) and synced like any edit; the entity job is then acknowledged.
"""

from __future__ import annotations

from stashplugin import log
from stashplugin.hook import DESTROYED, ENTITY_SCENE_FIELDS, synced_fields
from stashplugin.stash import StashError
from sync.sync_state import SyncState
from worker.errors import STASH_UNREACHABLE
from worker.metadata import build_metadata, metadata_hash

FILTER_KEYS = {"tag": "tags", "performer": "performers", "studio": "studios", "group": "groups"}
HIERARCHICAL = ("tags", "studios", "groups")  # HierarchicalMultiCriterionInput: depth 0 = only this one
PAGE_SIZE = 1000
CHUNK = 500
_QUERY = (
    "query PlexSyncEntityScenes($filter: FindFilterType, $scene_filter: SceneFilterType) {"
    " findScenes(filter: $filter, scene_filter: $scene_filter) { count scenes { id } } }"
)


def is_entity_job(job) -> bool:
    return ":" in job.scene_id


def scenes_with(stash, kind: str, entity_id: str) -> list:
    """Ids of the scenes that carry the entity now (one paged query)."""
    key = FILTER_KEYS[kind]
    criterion = {"value": [str(entity_id)], "modifier": "INCLUDES"}
    if key in HIERARCHICAL:
        criterion["depth"] = 0
    ids, page = [], 1
    while True:
        data = stash.query(
            _QUERY,
            {
                "filter": {"page": page, "per_page": PAGE_SIZE, "sort": "id", "direction": "ASC"},
                "scene_filter": {key: criterion},
            },
        )
        result = data.get("findScenes") if isinstance(data.get("findScenes"), dict) else {}
        batch = [
            str(s["id"])
            for s in result.get("scenes") or ()
            if isinstance(s, dict) and s.get("id") is not None
        ]
        ids.extend(batch)
        if len(batch) < PAGE_SIZE or len(ids) >= (result.get("count") or 0):
            return ids
        page += 1


def scenes_changed_since_sync(stash, settings, recorded: dict) -> list:
    """Ids of synced scenes whose metadata as PlexSync would write it differs from the last write."""
    changed, page = [], 1
    while True:
        count, scenes = stash.scenes_page(page, PAGE_SIZE)
        for scene in scenes:
            sid = str(scene.get("id"))
            entry = recorded.get(sid)
            if (
                isinstance(entry, dict)
                and entry.get("hash")
                and entry["hash"] != metadata_hash(build_metadata(scene, settings))
            ):
                changed.append(sid)
        if len(scenes) < PAGE_SIZE or page * PAGE_SIZE >= count:
            return changed
        page += 1


class EntityExpander:
    """Turns leased entity jobs into queued scene jobs, for one drain."""

    def __init__(self, drain):
        self.drain = drain
        self._changed = None  # the deletion pass, done at most once per leased batch

    def expand(self, jobs: list) -> list:
        """Handle the entity jobs among `jobs`; returns the scene jobs, to be synced as usual."""
        scene_jobs = [j for j in jobs if not is_entity_job(j)]
        drain = self.drain
        self._changed = None
        for job in jobs:
            if not is_entity_job(job):
                continue
            kind, entity_id = job.scene_id.split(":", 1)
            field = ENTITY_SCENE_FIELDS.get(kind)
            if field is None or not synced_fields([field], drain.settings):
                drain.queue.ack(job)  # nothing of it is synced by the current settings
                drain.report.skipped += 1
                continue
            stash = drain.ctx.stash
            before = stash.requests
            try:
                if kind not in FILTER_KEYS:
                    ids = []
                elif DESTROYED in job.fields:
                    ids = self._changed_since_sync()
                else:
                    ids = scenes_with(stash, kind, entity_id)
            except StashError as exc:
                drain.report.stash_requests += stash.requests - before
                drain.queue.nack(
                    job,
                    STASH_UNREACHABLE,
                    log.redact(str(exc))[:300],
                    max_retries=drain.settings.max_retries,
                )
                drain.report.failed += 1
                log.warning("%s The change of %s %s is retried." % (exc, kind, entity_id))
                continue
            drain.report.stash_requests += stash.requests - before
            for start in range(0, len(ids), CHUNK):
                drain.queue.enqueue_many(ids[start : start + CHUNK], fields=[field], source=job.source)
            drain.queue.ack(job)
            log.info(
                "%s %s was %s in Stash: %d scene(s) queued for Plex"
                % (kind.capitalize(), entity_id, _event_word(job), len(ids))
            )
        return scene_jobs

    def _changed_since_sync(self) -> list:
        if self._changed is None:
            drain = self.drain
            drain._flush_state()  # what this drain synced so far counts as written
            self._changed = scenes_changed_since_sync(
                drain.ctx.stash, drain.settings, SyncState(drain.data_dir).read()
            )
        return self._changed


def _event_word(job) -> str:
    source = job.source or ""
    if ".Destroy." in source:
        return "deleted"
    if ".Merge." in source:
        return "merged"
    return "changed"
