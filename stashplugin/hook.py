"""Which scene edits are kept (pure functions over the hook's context and the drain's settings).

Stash's hook `input` carries every field of the mutation input, null when it was not part of the
edit; `inputFields` lists what was actually sent. Decisions are made from `inputFields` only. The
drain always writes from the scene as fetched from Stash, never from this input.

The hook decides without settings. Stash passes none to a hook, and a copy cached by the last
task may be stale: a switch turned on since must not lose an edit. So the hook keeps every edit
that touches a field some setting could send to Plex (`SYNCABLE_INPUT_FIELDS`), and the drain,
which reads the settings fresh, skips the jobs none of whose fields is synced now
(`synced_fields`). See docs/ARCHITECTURE.md, "The hook's settings".
"""

from __future__ import annotations

from sync.jobs import WHOLE_SCENE

# Every Stash input field some setting could send to Plex -> the settings that send it (None:
# always sent). The single table of what a hook keeps: a setting that starts syncing another
# field (a rating, say) adds the field here with its setting, and both the hook and the drain
# follow. "file" is not an input field: it stands for a new scene Plex may be asked to scan.
SYNCABLE_INPUT_FIELDS = {
    "title": ("sync_title", "sync_sort_title"),
    "details": ("sync_summary",),
    "date": ("sync_date", "title_template"),
    "code": None,
    "director": None,
    "studio_id": ("sync_studio", "sync_collection", "collection_sources", "title_template"),
    "performer_ids": ("sync_performers", "title_template"),
    "tag_ids": ("sync_tags", "collection_tag_prefix", "exclude_tag_names"),
    "cover_image": ("sync_poster", "sync_background"),
    "url": None,
    "urls": None,
    "groups": None,
    "group_ids": None,
    "movies": None,
    "movie_ids": None,
    "organized": None,
    "file": ("trigger_plex_scan",),
    "rating100": ("sync_rating",),
    "stash_ids": ("require_stash_id",),
}
NEW_FILE = "file"

# Input fields that never reach Plex: play counts, o-counter, resume time, galleries...
IGNORED_INPUT_FIELDS = frozenset(
    (
        "id",
        "ids",
        "client_mutation_id",
        "rating",
        "o_counter",
        "resume_time",
        "play_duration",
        "play_count",
        "play_history",
        "o_history",
        "gallery_ids",
        "primary_file_id",
        "interactive",
        "interactive_speed",
    )
)

HOOK_TYPES = ("Scene.Update.Post", "Scene.Create.Post")

# Renames, deletions and merges of what scenes refer to fire only the entity's own hook, never a
# scene hook (internal/api/resolver_mutation_{tag,performer,studio,group}.go). The hook queues
# one job keyed "<kind>:<id>" (coalesced like a scene's); the drain expands it into the scenes
# concerned (worker/entities.py). Stash has no merge hook but Tag.Merge.Post (PerformerMerge
# fires none). Groups matter since 'Collections from' can name them: a renamed group renames the
# collection of its scenes.
ENTITY_KINDS = {"Tag": "tag", "Performer": "performer", "Studio": "studio", "Group": "group"}
ENTITY_EVENTS = ("Update", "Destroy", "Merge")
ENTITY_FIELDS = {"tag": ("name",), "performer": ("name",), "studio": ("name",), "group": ("name",)}
# The scene input field an entity stands for: its scenes are synced when that field is.
ENTITY_SCENE_FIELDS = {
    "tag": "tag_ids",
    "performer": "performer_ids",
    "studio": "studio_id",
    "group": "groups",
}
DESTROYED = "destroyed"


def entity_event(hook_type):
    """("tag", "Update") for "Tag.Update.Post"; None for any other hook."""
    parts = hook_type.split(".") if isinstance(hook_type, str) else ()
    if len(parts) == 3 and parts[0] in ENTITY_KINDS and parts[1] in ENTITY_EVENTS and parts[2] == "Post":
        return ENTITY_KINDS[parts[0]], parts[1]
    return None


def entity_change_fields(kind: str, event: str, input_fields) -> list:
    """What the job records about an entity event (empty: nothing PlexSync writes changed). Like
    a scene's, it is kept whatever the cached settings say; the drain decides with fresh ones."""
    if not ENTITY_FIELDS[kind]:
        return []
    if event == "Destroy":
        return [DESTROYED]
    if event == "Merge":
        return ["merged"]
    fields = list(input_fields or ())
    if not fields or FULL_SYNC in fields:
        return list(ENTITY_FIELDS[kind])  # a bulk or unreadable update: assume the name changed
    return sorted(set(fields) & set(ENTITY_FIELDS[kind]))


def relevant_update_fields(input_fields) -> list:
    """The syncable fields an update touched (empty: no setting could send this edit to Plex)."""
    if FULL_SYNC in (input_fields or ()):
        return [FULL_SYNC]
    return sorted({f for f in (input_fields or ()) if f in SYNCABLE_INPUT_FIELDS and f != NEW_FILE})


def _has_value(value) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return False
    if isinstance(value, dict) and "ids" in value:
        return bool(value.get("ids"))
    return True


def relevant_create_fields(hook_input) -> list:
    """Syncable fields a newly created scene already carries, or ["file"] for a bare one.

    A bare scene created by a scan has no metadata; it is kept as "file" in case 'Ask Plex to
    scan new files' is on. The drain drops it when that setting is off (the scene is then left
    to reconciliation, once Plex has the file).
    """
    fields = []
    if isinstance(hook_input, dict):
        fields = sorted(
            f for f, v in hook_input.items() if f in SYNCABLE_INPUT_FIELDS and f != NEW_FILE and _has_value(v)
        )
    return fields or [NEW_FILE]


def synced_fields(fields, settings) -> list:
    """Which of a job's fields the settings send to Plex now (the drain's decision).

    A job without fields (reconciliation, Sync All) means the whole scene and is always synced:
    the answer is then `["*"]`. An empty answer means nothing in this job is synced any more.
    """
    if not fields:
        return ["*"]
    out = []
    for field in fields:
        toggles = SYNCABLE_INPUT_FIELDS.get(field, None)
        if toggles is None or any(getattr(settings, name) for name in toggles):
            out.append(field)
    return out


class BadHookContext(ValueError):
    """The hook context does not look like what Stash sends."""


# Queued for a hook input PlexSync cannot read: the drain syncs the whole scene (it always writes
# every synced field from the scene as fetched), so an unknown shape never loses a change.
FULL_SYNC = WHOLE_SCENE


def _input_id(entry):
    value = entry.get("id") if isinstance(entry, dict) else None
    return str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def this_scenes_input(hook_input, scene_id: str):
    """The part of `hook_input` that belongs to `scene_id`; returns (input, readable).

    Real Stash (internal/api/resolver_mutation_scene.go) passes the mutation's input as it came:
    an object for sceneUpdate, the whole BulkSceneUpdateInput (with `ids`) for bulkSceneUpdate,
    the whole list for scenesUpdate (Scene Filename Parser; `inputFields` are this scene's), and
    null for scan-driven creates and updates. Anything else is not readable.
    """
    if hook_input is None or isinstance(hook_input, dict):
        return hook_input, True
    if isinstance(hook_input, list):
        for entry in hook_input:
            if _input_id(entry) == scene_id:
                return entry, True
    return None, False


def parse_hook_context(ctx) -> tuple:
    """Validate Stash's hookContext; returns (object_id, hook_type, input, input_fields).

    Only what makes a job impossible (no id, no hook type) raises. An input or inputFields of a
    shape PlexSync does not know gives input_fields == [FULL_SYNC]: the scene is synced whole.
    """
    if not isinstance(ctx, dict):
        raise BadHookContext("args.hookContext must be an object with id, type, input and inputFields")
    scene_id = ctx.get("id")
    if isinstance(scene_id, bool) or scene_id in (None, ""):
        raise BadHookContext("args.hookContext has no scene id")
    if isinstance(scene_id, float) and scene_id.is_integer():
        scene_id = int(scene_id)
    if not isinstance(scene_id, (int, str)) or not str(scene_id).strip().isdigit():
        raise BadHookContext("args.hookContext.id must be a scene id (a number), got %r" % (scene_id,))
    scene_id = str(scene_id).strip()
    hook_type = ctx.get("type")
    if not isinstance(hook_type, str):
        raise BadHookContext("args.hookContext.type must be a hook name such as Scene.Update.Post")
    hook_input, readable = this_scenes_input(ctx.get("input"), scene_id)
    fields = ctx.get("inputFields")
    if fields is None:
        fields = []
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        readable = False
    if not readable:
        return scene_id, hook_type, None, [FULL_SYNC]
    return scene_id, hook_type, hook_input, fields
