"""What a gap's sync would change in Plex, field by field, for the report and the preview.

Only a preview (dry run) asks Plex for the full item, and only for a sample of gaps (each one
GET, as the drain would make): section listings cut tag lists short, so an exact diff needs it.
"""

from __future__ import annotations

from reconcile import gaps
from stashplugin import log
from worker.metadata import LIST_FIELDS, SCALAR_FIELDS

MAX_VALUE = 500  # characters of a value kept in the JSON output
SHORT_VALUE = 60  # characters of a value shown in a log line


def scene_title(scene: dict) -> str:
    """The title a person recognises: the scene title, else its file name, else its id."""
    files = scene.get("files") or [{}]
    return scene.get("title") or (files[0] or {}).get("basename") or "scene %s" % scene.get("id")


def _cut(value, limit: int):
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


def changes_from_diff(diff: dict, listed: dict | None) -> list:
    """[{"field", "plex", "stash"} or {"field", "add", "remove"}] from a writer's dry-run diff.

    The "plex" values come from the listing (complete for single values).
    """
    out = []
    for field in SCALAR_FIELDS + LIST_FIELDS + ("poster", "art"):
        if field not in diff:
            continue
        change = diff[field]
        if field in LIST_FIELDS:
            out.append({"field": field, "add": list(change["add"]), "remove": list(change["remove"])})
        elif field in ("poster", "art"):
            out.append({"field": field, "stash": "new cover"})
        else:
            out.append(
                {
                    "field": field,
                    "plex": _cut((listed or {}).get(field, ""), MAX_VALUE),
                    "stash": _cut(change, MAX_VALUE),
                }
            )
    return out


def changes_for_new_item(desired: dict) -> list:
    """What would be written to a scene's item once Plex has its file (every non-empty value)."""
    out = []
    for field in SCALAR_FIELDS + LIST_FIELDS:
        value = desired.get(field)
        if value:
            out.append(
                {"field": field, "stash": _cut(value, MAX_VALUE) if isinstance(value, str) else list(value)}
            )
    return out


def preview(scan, writer, scene: dict, gap) -> dict:
    """One sample entry: the gap and, when it would be queued, what its sync would change."""
    from worker.metadata import build_metadata

    entry = {
        "scene_id": gap.scene_id,
        "title": scene_title(scene),
        "gap": gap.kind,
        "reason": gap.reason,
        "queued": gap.enqueue,
    }
    if not gap.enqueue:
        return entry
    if gap.kind == gaps.MISSING:
        entry["changes"] = changes_for_new_item(build_metadata(scene, scan.settings))
        return entry
    try:
        result = writer.sync(scene, gap.rating_key, dry_run=True)
    except Exception as exc:  # noqa: BLE001 - a preview line must not end the preview
        entry["error"] = log.redact(str(exc))[:300]
        return entry
    entry["changes"] = changes_from_diff(result.diff, scan.listed.get(gap.rating_key))
    return entry


def _show(value) -> str:
    if isinstance(value, list):
        return ", ".join(value) or "(none)"
    text = str(value).replace("\n", " ")
    return '"%s"' % _cut(text, SHORT_VALUE)


def describe(entry: dict) -> str:
    """One log line for a sample entry."""
    head = 'Scene %s "%s" (%s: %s)' % (
        entry["scene_id"],
        _cut(entry["title"], SHORT_VALUE),
        gaps.WORDS.get(entry["gap"], entry["gap"]),
        entry["reason"],
    )
    if entry.get("error"):
        return head + ": could not read the Plex item (%s)" % entry["error"]
    changes = entry.get("changes")
    if changes is None:
        return head + (" — would be queued" if entry["queued"] else " — not queued")
    if not changes:
        return head + ": Plex already shows these values; the sync would only record that"
    parts = []
    for c in changes:
        name = gaps.FIELD_WORDS.get(c["field"], c["field"])
        if "add" in c:
            moves = ["+" + n for n in c["add"]] + ["-" + n for n in c["remove"]]
            parts.append("%s %s" % (name, " ".join(moves)))
        elif "plex" in c:
            parts.append("%s %s -> %s" % (name, _show(c["plex"]), _show(c["stash"])))
        elif c["field"] in ("poster", "art"):
            parts.append("%s: new cover" % name)
        else:
            parts.append("%s %s" % (name, _show(c["stash"])))
    return head + ": " + "; ".join(parts)
