"""View Queue Status: one short block a person can read at a glance, and the same as JSON."""

from __future__ import annotations

import os
import time

from stashplugin import log
from sync.breaker_file import CLOSED
from sync.store import quarantined_files, read_json_quiet
from worker.errors import PLEX_UNAUTHORIZED


def _age(seconds: float) -> str:
    from worker.outages import plain_duration  # one way of saying a duration, everywhere

    return plain_duration(seconds)


def collect_status(ctx, now: float | None = None) -> dict:
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
        "reconcile": read_json_quiet(os.path.join(ctx.data_dir, "reconcile.json")) or None,
        "filtered": filtered,
        "watcher": _watcher_status(ctx.data_dir, now),
    }


def address_problem(plex_url: str) -> str:
    """One sentence when the host name in 'Plex URL' cannot be resolved ("" otherwise): the status
    must not say all is well while PlexSync cannot even find Plex. A name lookup, no Plex request."""
    import socket
    from urllib.parse import urlsplit

    from worker.health import likely_cause

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
        return likely_cause("plex_unreachable", "host name not found", plex_url)
    except (OSError, UnicodeError):
        return ""
    return ""


def _filtered(data_dir: str) -> dict:
    """Scenes the filter settings keep out of Plex, by reason."""
    from worker.filtered import FilteredScenes

    return FilteredScenes(data_dir, on_corrupt=lambda exc: log.warning(str(exc))).counts()


def _watcher_status(data_dir: str, now: float):
    from worker.watcher import watcher_status

    return watcher_status(data_dir, now)


def _plex_status(data_dir: str, now: float) -> dict:
    from worker.breaker import CircuitBreaker, FileBreakerStorage
    from worker.outages import OutageHistory

    breaker = CircuitBreaker(FileBreakerStorage(data_dir))
    history = OutageHistory(data_dir)
    health = read_json_quiet(os.path.join(data_dir, "health.json"))
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
    stats = read_json_quiet(os.path.join(data_dir, "stats.json"))
    return {
        "last_sync_at": stats.get("last_sync_at"),
        "totals": stats.get("totals") or {},
        "last_run": stats.get("last_run"),
    }


def render_status(status: dict) -> str:
    q = status["queue"]
    now = time.time()
    lines = ["PlexSync status"]
    plex = status["plex"]
    if status.get("plex_address_problem"):
        lines.append("  Plex: cannot be found at the address in 'Plex URL'")
    elif plex["breaker"] == CLOSED:
        last = plex.get("last_outage")
        lines.append(
            "  Plex: reachable (sync running)"
            + (
                "; last outage %s ago, lasted %s"
                % (_age(now - last["end"]), _age(last["end"] - last["start"]))
                if last
                else ""
            )
        )
    else:
        since = plex.get("down_since")
        lines.append(
            "  Plex: DOWN%s — %s; sync paused, next check %s"
            % (
                " since %s (%s)" % (time.strftime("%H:%M", time.localtime(since)), _age(now - since))
                if since
                else "",
                plex.get("reason") or "no answer",
                "now"
                if not plex.get("next_probe_at") or plex["next_probe_at"] <= now
                else "in %s" % _age(plex["next_probe_at"] - now),
            )
        )
    waiting = q["pending"] + q["waiting_for_retry"] + q["in_flight"]
    line = "  Queue: %d pending, %d in flight, %d waiting for retry" % (
        q["pending"],
        q["in_flight"],
        q["waiting_for_retry"],
    )
    if q["oldest_pending_age_seconds"] is not None and waiting:
        line += " (oldest %s)" % _age(q["oldest_pending_age_seconds"])
    if q["waiting_for_retry"] and q.get("next_retry_at"):
        # Said so the user does not press anything: the first edit or task after it starts the retry.
        line += "; next retry %s" % (
            "now" if q["next_retry_at"] <= now else "in %s" % _age(q["next_retry_at"] - now)
        )
    lines.append(line)
    watcher = status.get("watcher")
    if watcher:
        until = watcher.get("until")
        lines.append(
            "  Watcher: waiting%s to resume syncing by itself (no need to press anything)"
            % (
                " until %s" % time.strftime("%H:%M:%S", time.localtime(until))
                if until and until > now
                else ""
            )
        )
    if q["dead_lettered"]:
        reasons = ", ".join("%s %d" % (k or "unknown", v) for k, v in sorted(q["dead_by_reason"].items()))
        lines.append("  Dead-lettered: %d (%s)" % (q["dead_lettered"], reasons))
    else:
        lines.append("  Dead-lettered: none")
    sync = status["sync"]
    if sync.get("last_sync_at"):
        totals = sync.get("totals") or {}
        lines.append(
            "  Last sync: %s ago (%d synced, %d already up to date in all)"
            % (_age(now - sync["last_sync_at"]), totals.get("synced", 0), totals.get("unchanged", 0))
        )
    else:
        lines.append("  Last sync: never")
    rec = status.get("reconcile")
    if rec and rec.get("last_run_at"):
        gaps = rec.get("gaps") or {}
        lines.append(
            "  Last reconciliation: %s ago, %d gap(s) found%s, %d queued"
            % (
                _age(now - rec["last_run_at"]),
                sum(gaps.values()),
                " (%s)" % ", ".join("%s %d" % (k, v) for k, v in sorted(gaps.items()) if v)
                if any(gaps.values())
                else "",
                rec.get("enqueued", 0),
            )
        )
    filtered = status.get("filtered") or {}
    if filtered:
        from worker.metadata import FILTER_WORDS

        lines.append(
            "  Skipped by filter settings: %d scene(s) (%s), left as they are in Plex"
            % (
                sum(filtered.values()),
                ", ".join("%s %d" % (FILTER_WORDS.get(k, k), v) for k, v in sorted(filtered.items())),
            )
        )
    if status["quarantined_files"]:
        lines.append("  DAMAGED FILES moved aside: %s" % ", ".join(status["quarantined_files"]))
    if status["paused"]:
        lines.append("  Sync is paused ('Pause sync' setting): changes are queued, nothing is sent to Plex.")
    action = next_action(status)
    lines.append("  Action: %s" % action if action else "  All good: nothing to do.")
    return "\n".join(lines)


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


def view_queue_status(ctx) -> dict:
    """View Queue Status: log the block and return the same facts as JSON."""
    status = collect_status(ctx)
    log.info(render_status(status))
    return status
