"""'Ask Plex to scan new files': a scene Stash just added is not in Plex yet, so the drain asks
Plex to scan the file's folder, once per change (a retry does not ask again) and once per folder
in one drain."""

from __future__ import annotations

from stashplugin import log
from worker.errors import classify
from worker.paths import loose_key
from worker.plex_writer import trigger_scan


class NewSceneScans:
    """The folders one drain asked Plex to scan (one request each)."""

    def __init__(self, settings):
        self.settings = settings
        self.folders = set()

    def scan_if_new(self, job, scene, matcher, server) -> None:
        if not (self.settings.trigger_plex_scan and job.source == "Scene.Create.Post" and job.attempts == 0):
            return
        files = [f for f in (scene or {}).get("files") or [] if isinstance(f, dict) and f.get("path")]
        if not files or matcher is None:
            return
        plex_path = matcher.mapper.to_plex(files[0]["path"])
        cut = max(plex_path.rfind("/"), plex_path.rfind("\\"))
        folder = plex_path[:cut] if cut > 0 else plex_path
        if folder in self.folders:
            return  # new scenes in the same folder: one scan finds them all
        section = section_holding(matcher.index, folder)
        if section is None:
            log.info(
                "Scene %s is new, but %s is in none of Plex's library folders, so no scan was asked for; "
                "check 'Path mapping'." % (job.scene_id, folder)
            )
            return
        self._scan(job, server, section, folder)

    def _scan(self, job, server, section, folder) -> None:
        try:
            self.folders.add(folder)
            trigger_scan(server, section, folder)
        except Exception as exc:  # noqa: BLE001 - the job is retried either way
            log.info(
                "Scene %s is new and not in Plex yet; asking Plex to scan %s failed (%s)"
                % (job.scene_id, folder, classify(exc))
            )
            return
        log.info("Scene %s is new and not in Plex yet: asked Plex to scan %s" % (job.scene_id, folder))


def section_holding(index, folder: str):
    """The id of the Plex library whose folders hold `folder`, or None."""
    want = loose_key(folder)
    for section_id in sorted(index.sections()):
        for location in index.locations(section_id):
            root = loose_key(location).rstrip("/")
            if root and (want == root or want.startswith(root + "/")):
                return section_id
    return None
