"""Which scene edits matter to Plex (pure functions over the hook's context).

Stash's hook `input` carries every field of the mutation input, null when it was not part of the
edit; `inputFields` lists what was actually sent. Decisions are made from `inputFields` only. The
drain always writes from the scene as fetched from Stash, never from this input.
"""
from __future__ import annotations

# Stash input field -> the setting that switches its sync on (None: always relevant).
SYNCED_INPUT_FIELDS = {
    "title": "sync_title",
    "details": "sync_summary",
    "date": "sync_date",
    "code": None,
    "director": None,
    "studio_id": "sync_studio",
    "performer_ids": "sync_performers",
    "tag_ids": "sync_tags",
    "cover_image": "sync_poster",
    "url": None,
    "urls": None,
    "groups": None,
    "group_ids": None,
    "movies": None,
    "movie_ids": None,
    "organized": None,
}

# Input fields that never reach Plex: play counts, o-counter, resume time, ratings, galleries...
IGNORED_INPUT_FIELDS = frozenset((
    "id", "ids", "client_mutation_id", "rating", "rating100", "o_counter", "resume_time",
    "play_duration", "play_count", "play_history", "o_history", "gallery_ids", "stash_ids",
    "primary_file_id", "interactive", "interactive_speed",
))

HOOK_TYPES = ("Scene.Update.Post", "Scene.Create.Post")


def _enabled(field: str, settings) -> bool:
    toggle = SYNCED_INPUT_FIELDS.get(field)
    if toggle is None:
        return True
    if toggle == "sync_studio":
        return bool(settings.sync_studio or settings.sync_collection)
    if toggle == "sync_poster":
        return bool(settings.sync_poster or settings.sync_background)
    if toggle == "sync_title":
        return bool(settings.sync_title or settings.sync_sort_title)
    return bool(getattr(settings, toggle, True))


def relevant_update_fields(input_fields, settings) -> list:
    """The synced fields an update touched (empty: ignore this update)."""
    return sorted({f for f in (input_fields or ()) if f in SYNCED_INPUT_FIELDS and _enabled(f, settings)})


def _has_value(value) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return False
    if isinstance(value, dict) and "ids" in value:
        return bool(value.get("ids"))
    return True


def relevant_create_fields(hook_input, settings) -> list:
    """Synced fields a newly created scene already carries.

    A bare scene created by a scan carries none: it is left to reconciliation, so a scan of
    10,000 new files does not fill the queue with scenes Plex has not seen yet.
    """
    if not isinstance(hook_input, dict):
        return []
    return sorted(f for f, v in hook_input.items()
                  if f in SYNCED_INPUT_FIELDS and _enabled(f, settings) and _has_value(v))


class BadHookContext(ValueError):
    """The hook context does not look like what Stash sends."""


def parse_hook_context(ctx) -> tuple:
    """Validate Stash's hookContext; returns (scene_id, hook_type, input, input_fields)."""
    if not isinstance(ctx, dict):
        raise BadHookContext("args.hookContext must be an object with id, type, input and inputFields")
    scene_id = ctx.get("id")
    if isinstance(scene_id, bool) or scene_id in (None, ""):
        raise BadHookContext("args.hookContext has no scene id")
    if isinstance(scene_id, float) and scene_id.is_integer():
        scene_id = int(scene_id)
    if not isinstance(scene_id, (int, str)) or not str(scene_id).strip().isdigit():
        raise BadHookContext("args.hookContext.id must be a scene id (a number), got %r" % (scene_id,))
    hook_type = ctx.get("type")
    if not isinstance(hook_type, str):
        raise BadHookContext("args.hookContext.type must be a hook name such as Scene.Update.Post")
    fields = ctx.get("inputFields")
    if fields is None:
        fields = []
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise BadHookContext("args.hookContext.inputFields must be a list of field names")
    hook_input = ctx.get("input")
    if hook_input is not None and not isinstance(hook_input, dict):
        raise BadHookContext("args.hookContext.input must be an object or null")
    return str(scene_id).strip(), hook_type, hook_input, fields
