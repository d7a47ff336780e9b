"""View Queue Status: one short block a person can read at a glance, and the same as JSON.

Every fact comes from the module that owns its file (docs/ARCHITECTURE.md, "Data files"); the last
reconciliation's record belongs to reconcile/, a floor above, and is handed in by its task
(reconcile/status.py).
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from stashplugin import log
from sync.breaker_file import CLOSED
from sync.store import quarantined_files
from worker.breaker import CircuitBreaker, FileBreakerStorage
from worker.errors import PLEX_UNAUTHORIZED, PLEX_UNREACHABLE
from worker.filtered import FilteredScenes
from worker.health import ProbeRecord, likely_cause
from worker.metadata import FILTER_WORDS
from worker.outages import OutageHistory, plain_duration
from worker.stats import SyncStats
from worker.watcher import watcher_status

_age = plain_duration  # one way of saying a duration, everywhere


def collect_status(ctx, now: float | None = None, reconcile: dict | None = None) -> dict:
    """The status as JSON; `reconcile` is the last reconciliation's record (reconcile/status.py)."""
    now = now if now is not None else time.time()
    summary = ctx.queue().summary()
    # Read the state files first: reading one that is damaged moves it aside, and the list of
    # quarantined files below must already show it in this same report.
    plex = _plex_status(ctx.data_dir, now)
    sync = _sync_status(ctx.data_dir)
    filtered = _filtered(ctx.data_dir)
    return {
        "queue": {
            "pending": summary.pending,
            "waiting_for_retry": summary.waiting,
            "in_flight": summary.inflight,
            "dead_lettered": summary.dead,
            "dead_by_reason": summary.dead_by_class,
            "oldest_pending_age_seconds": round(now - summary.oldest_pending_at, 1)
            if summary.oldest_pending_at
            else None,
            "next_retry_at": summary.next_due_at or None,
        },
        "quarantined_files": quarantined_files(ctx.data_dir),
        "paused": bool(ctx.settings.pause_sync),
        "plex_address_problem": address_problem(ctx.settings.plex_url),
        "plex": plex,
        "sync": sync,
        "reconcile": reconcile or None,
        "filtered": filtered,
        "watcher": watcher_status(ctx.data_dir, now),
    }


def address_problem(plex_url: str) -> str:
    """One sentence when the host name in 'Plex URL' cannot be resolved ("" otherwise): the status
    must not say all is well while PlexSync cannot even find Plex. A name lookup, no Plex request."""
    if not plex_url:
        return ""
    try:
        parts = urlsplit(plex_url if "://" in plex_url else "http://" + plex_url)
        host = parts.hostname
    except ValueError:
        return ""
    if not host:
        return ""
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror:
        return likely_cause(PLEX_UNREACHABLE, "host name not found", plex_url)
    except (OSError, UnicodeError):
        return ""
    return ""


def _filtered(data_dir: str) -> dict:
    """Scenes the filter settings keep out of Plex, by reason."""
    return FilteredScenes(data_dir, on_corrupt=lambda exc: log.warning(str(exc))).counts()


def _plex_status(data_dir: str, now: float) -> dict:
    breaker = CircuitBreaker(FileBreakerStorage(data_dir))
    history = OutageHistory(data_dir)
    health = ProbeRecord(data_dir).peek()
    return {
        "breaker": breaker.state_at(now),
        "reason": breaker.last_reason,
        "down_since": breaker.down_since if breaker.state_at(now) != CLOSED else None,
        "next_probe_at": breaker.next_probe_at,
        "current_outage": history.current(),
        "last_outage": history.last(),
        "last_probe": health.get("last_result"),
        "last_probe_at": health.get("last_probe_at"),
    }


def _sync_status(data_dir: str) -> dict:
    stats = SyncStats(data_dir).peek()
    return {
        "last_sync_at": stats.get("last_sync_at"),
        "totals": stats.get("totals") or {},
        "last_run": stats.get("last_run"),
    }


def render_status(status: dict) -> str:
    """The status as the block View Queue Status logs: one line per concern, then what to do."""
    now = time.time()
    lines = ["PlexSync status", _plex_line(status, now), _queue_line(status["queue"], now)]
    if status.get("watcher"):
        lines.append(_watcher_line(status["watcher"], now))
    lines.append(_dead_line(status["queue"]))
    lines.append(_last_sync_line(status["sync"], now))
    rec = status.get("reconcile")
    if rec and rec.get("last_run_at"):
        lines.append(_reconcile_line(rec, now))
    if status.get("filtered"):
        lines.append(_filtered_line(status["filtered"]))
    if status["quarantined_files"]:
        lines.append("  DAMAGED FILES moved aside: %s" % ", ".join(status["quarantined_files"]))
    if status["paused"]:
        lines.append("  Sync is paused ('Pause sync' setting): changes are queued, nothing is sent to Plex.")
    action = next_action(status)
    lines.append("  Action: %s" % action if action else "  All good: nothing to do.")
    return "\n".join(lines)


def _in(when, now: float) -> str:
    """ "now" for a time that has come (or none), else "in <duration>"."""
    return "now" if not when or when <= now else "in %s" % _age(when - now)


def _plex_line(status: dict, now: float) -> str:
    plex = status["plex"]
    if status.get("plex_address_problem"):
        return "  Plex: cannot be found at the address in 'Plex URL'"
    if plex["breaker"] == CLOSED:
        last = plex.get("last_outage")
        if not last:
            return "  Plex: reachable (sync running)"
        return "  Plex: reachable (sync running); last outage %s ago, lasted %s" % (
            _age(now - last["end"]),
            _age(last["end"] - last["start"]),
        )
    since = plex.get("down_since")
    since_text = (
        " since %s (%s)" % (time.strftime("%H:%M", time.localtime(since)), _age(now - since)) if since else ""
    )
    return "  Plex: DOWN%s — %s; sync paused, next check %s" % (
        since_text,
        plex.get("reason") or "no answer",
        _in(plex.get("next_probe_at"), now),
    )


def _queue_line(q: dict, now: float) -> str:
    line = "  Queue: %d pending, %d in flight, %d waiting for retry" % (
        q["pending"],
        q["in_flight"],
        q["waiting_for_retry"],
    )
    waiting = q["pending"] + q["waiting_for_retry"] + q["in_flight"]
    if q["oldest_pending_age_seconds"] is not None and waiting:
        line += " (oldest %s)" % _age(q["oldest_pending_age_seconds"])
    if q["waiting_for_retry"] and q.get("next_retry_at"):
        # Said so the user does not press anything: the first edit or task after it starts the retry.
        line += "; next retry %s" % _in(q["next_retry_at"], now)
    return line


def _watcher_line(watcher: dict, now: float) -> str:
    until = watcher.get("until")
    return "  Watcher: waiting%s to resume syncing by itself (no need to press anything)" % (
        " until %s" % time.strftime("%H:%M:%S", time.localtime(until)) if until and until > now else ""
    )


def _dead_line(q: dict) -> str:
    if not q["dead_lettered"]:
        return "  Dead-lettered: none"
    reasons = ", ".join("%s %d" % (k or "unknown", v) for k, v in sorted(q["dead_by_reason"].items()))
    return "  Dead-lettered: %d (%s)" % (q["dead_lettered"], reasons)


def _last_sync_line(sync: dict, now: float) -> str:
    if not sync.get("last_sync_at"):
        return "  Last sync: never"
    totals = sync.get("totals") or {}
    return "  Last sync: %s ago (%d synced, %d already up to date in all)" % (
        _age(now - sync["last_sync_at"]),
        totals.get("synced", 0),
        totals.get("unchanged", 0),
    )


def _reconcile_line(rec: dict, now: float) -> str:
    gaps = rec.get("gaps") or {}
    found = ", ".join("%s %d" % (k, v) for k, v in sorted(gaps.items()) if v)
    return "  Last reconciliation: %s ago, %d gap(s) found%s, %d queued" % (
        _age(now - rec["last_run_at"]),
        sum(gaps.values()),
        " (%s)" % found if found else "",
        rec.get("enqueued", 0),
    )


def _filtered_line(filtered: dict) -> str:
    reasons = ", ".join("%s %d" % (FILTER_WORDS.get(k, k), v) for k, v in sorted(filtered.items()))
    return "  Skipped by filter settings: %d scene(s) (%s), left as they are in Plex" % (
        sum(filtered.values()),
        reasons,
    )


def next_action(status: dict) -> str:
    """The one thing the user should do, or "" when all is well."""
    if status["quarantined_files"]:
        return (
            "a damaged state file was moved aside (readable jobs were kept); look at it in the data folder, "
            "then delete it to clear this warning"
        )
    if status["paused"]:
        return "switch off 'Pause sync' to send queued changes to Plex"
    if status.get("plex_address_problem"):
        return status["plex_address_problem"]
    last_probe = status["plex"].get("last_probe") or {}
    if last_probe.get("error_class") == PLEX_UNAUTHORIZED:
        return "set a valid 'Plex token' in PlexSync's settings"
    if status["plex"]["breaker"] != CLOSED:
        return "nothing to do unless Plex stays down: check that Plex is running; queued changes go out by themselves"
    if status["queue"]["dead_lettered"]:
        return "read the dead-letter reasons above, fix the cause, then run 'Recover Outage Jobs' or 'Clear Dead Letter Queue'"
    return ""


def view_queue_status(ctx, reconcile: dict | None = None) -> dict:
    """View Queue Status: log the block and return the same facts as JSON."""
    status = collect_status(ctx, reconcile=reconcile)
    log.info(render_status(status))
    return status
