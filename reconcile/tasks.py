"""The reconcile tasks (Reconcile Now and its variants, the preview, Sync All / Sync Recent) and
the automatic reconciliation a drain runs when it is due.

Every gap becomes an ordinary queue job (`source="reconcile"`), coalesced with whatever is
already queued for that scene; the drain then syncs it like any edit. Nothing here writes to Plex.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from reconcile import gaps, schedule
from reconcile.preview import describe, preview, scene_title
from reconcile.scan import Scan, since_for, stash_pages
from stashplugin import log
from stashplugin.task import TaskError
from worker.attach import Attachment

SAMPLE_SIZE = 20
ENQUEUE_CHUNK = 500  # gaps written to the queue per fsync'd append
SCOPE_WORDS = {
    "all": "all scenes",
    "24h": "scenes changed in the last 24 h",
    "7d": "scenes changed in the last 7 days",
    "7d+": "scenes changed in the last 7 days, and every scene for an empty or missing Plex item",
}


# ---------------------------------------------------------------------- arguments
def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _scope(ctx, default: str) -> str:
    scope = ctx.args.get("scope") or default
    scope = str(scope).strip().lower()
    if scope not in schedule.SCOPES:
        raise TaskError("Unknown reconcile scope %r: use all, 24h, 7d or 7d+." % scope)
    return scope


def _only(ctx) -> tuple:
    raw = ctx.args.get("only") or ()
    kinds = tuple(k.strip() for k in (raw.split(",") if isinstance(raw, str) else raw) if k and k.strip())
    unknown = [k for k in kinds if k not in gaps.GAP_TYPES]
    if unknown:
        raise TaskError(
            "Unknown gap type(s) %s in 'only': use %s." % (", ".join(unknown), ", ".join(gaps.GAP_TYPES))
        )
    return kinds


def _sample_size(ctx) -> int:
    try:
        return max(0, min(200, int(ctx.args.get("sample", SAMPLE_SIZE))))
    except (TypeError, ValueError):
        raise TaskError("The 'sample' argument must be a whole number (how many gaps to show).")


def _connector(settings):
    def connect():
        from worker.errors import classify
        from worker.plex import connect as plex_connect

        try:
            return plex_connect(settings)
        except Exception as exc:  # noqa: BLE001 - classified into one sentence
            failure = classify(exc)
            raise TaskError("Reconciliation could not reach Plex: %s" % failure)

    return connect


# ---------------------------------------------------------------------- the run
@dataclass
class _Tally:
    """Counts by gap type, what was queued, and the sample."""

    kinds: tuple
    sample_size: int
    gaps: dict = field(init=False)  # gap type -> count, for each of `kinds`
    ambiguous: int = 0
    enqueued: int = 0
    already_queued: int = 0
    not_queued: int = 0
    sample: list = field(default_factory=list)

    def __post_init__(self):
        self.gaps = {k: 0 for k in self.kinds}

    def counts(self, gap, only: tuple) -> bool:
        """Count `gap`; False when it is of a kind this run does not report."""
        if gap.kind == gaps.AMBIGUOUS:
            if only:
                return False
            self.ambiguous += 1
        elif gap.kind not in self.kinds:
            return False
        else:
            self.gaps[gap.kind] += 1
        return True


class _Enqueuer:
    """Queues the gaps' scenes in chunks (one fsync'd append each); remembers what is queued."""

    def __init__(self, queue):
        from sync.jobs import INFLIGHT, PENDING

        self.queue = queue
        self.queued = {j.scene_id for j in queue.jobs() if j.state in (PENDING, INFLIGHT)}
        self.waiting = []

    def add(self, scene_id: str) -> None:
        # No field list: like Sync All, the drain writes the whole scene from Stash.
        self.waiting.append(scene_id)
        self.queued.add(scene_id)
        if len(self.waiting) >= ENQUEUE_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.waiting:
            self.queue.enqueue_many(self.waiting, source="reconcile")
            self.waiting = []


def run_reconciliation(
    ctx,
    scope: str = "all",
    only: tuple = (),
    dry_run: bool = False,
    sample_size: int = SAMPLE_SIZE,
    trigger: str = "task",
    heartbeat=None,
) -> dict:
    """Find the gaps of `scope` ("all", "24h", "7d") and queue them; returns the report dict.

    `only` limits the gap types looked for (e.g. ("empty_in_plex",)); `dry_run` queues nothing
    and returns (and logs) what would change, field by field, for the first `sample_size` gaps.
    A complete run (not `only`, not `dry_run`) is recorded in `reconcile.json`.
    """
    started = time.time()
    tally = _Tally(tuple(only) or gaps.GAP_TYPES, sample_size)
    # Scenes PlexSync has no record of are compared with their full Plex items (stale is the only
    # kind that needs it) and adopted when they already match; a preview adopts nothing.
    scan = Scan(
        ctx.settings,
        ctx.stash,
        ctx.data_dir,
        connect=_connector(ctx.settings),
        heartbeat=heartbeat,
        exact=gaps.STALE in tally.kinds,
        adopt=not dry_run,
    )
    log.info(
        "Reconciling %s%s%s…"
        % (
            SCOPE_WORDS[scope],
            " (%s only)" % ", ".join(only) if only else "",
            " — preview, nothing is queued" if dry_run else "",
        )
    )
    since = since_for(schedule.SCOPES[scope], started)
    pairs = scan.gaps(None, light_before=since) if scope in schedule.WIDE_SCOPES else scan.gaps(since)
    _collect(ctx, scan, pairs, tally, only, dry_run)
    report = _report(scope, only, dry_run, trigger, started, scan, tally)
    _log_report(report, tally)
    if not dry_run:
        schedule.record_run(ctx.data_dir, _record(report), complete=not only)
    return report


def _collect(ctx, scan, pairs, tally: _Tally, only: tuple, dry_run: bool) -> None:
    """Count, queue (unless `dry_run`) and sample every (scene, gap) the scan yields."""
    enqueuer = _Enqueuer(ctx.queue())
    writer = None
    for scene, gap in pairs:
        if not tally.counts(gap, only):
            continue
        log.debug("Scene %s is %s: %s" % (gap.scene_id, gaps.WORDS[gap.kind], gap.reason))
        if gap.enqueue:
            if gap.scene_id in enqueuer.queued:
                tally.already_queued += 1
            if not dry_run:
                enqueuer.add(gap.scene_id)
            tally.enqueued += 1
        else:
            tally.not_queued += 1
        if len(tally.sample) < tally.sample_size:
            if dry_run and writer is None:
                writer = _preview_writer(ctx, scan)
            tally.sample.append(_sample(scan, writer, scene, gap, dry_run))
    enqueuer.flush()


def _preview_writer(ctx, scan):
    from worker.plex_writer import PlexWriter, PosterMemo

    return PlexWriter(scan.server, ctx.settings, image_source=ctx.stash.image, memo=PosterMemo(ctx.data_dir))


def _sample(scan, writer, scene, gap, dry_run: bool) -> dict:
    if dry_run:
        return preview(scan, writer, scene, gap)
    return {
        "scene_id": gap.scene_id,
        "title": scene_title(scene),
        "gap": gap.kind,
        "reason": gap.reason,
        "queued": gap.enqueue,
    }


def _report(scope, only, dry_run, trigger, started, scan, tally) -> dict:
    return {
        "scope": scope,
        "only": list(only),
        "dry_run": dry_run,
        "trigger": trigger,
        "scenes_in_scope": scan.scenes_in_scope,
        "scenes_checked": scan.scenes_checked,
        "plex_items": scan.plex_items,
        "no_file": scan.no_file,
        "gaps": dict(tally.gaps),
        "ambiguous": tally.ambiguous,
        "adopted": scan.adopted,
        "enqueued": 0 if dry_run else tally.enqueued,
        "would_enqueue": tally.enqueued,
        "already_queued": tally.already_queued,
        "not_queued": tally.not_queued,
        "requests": {"stash": scan.stash_requests, "plex": scan.plex_requests},
        "started_at": started,
        "seconds": round(time.time() - started, 2),
        "sample": tally.sample,
    }


def _record(report: dict) -> dict:
    return {
        "last_run_at": report["started_at"] + report["seconds"],
        "duration_seconds": report["seconds"],
        "scope": report["scope"],
        "only": report["only"],
        "trigger": report["trigger"],
        "gaps": report["gaps"],
        "ambiguous": report["ambiguous"],
        "adopted": report.get("adopted", 0),
        "enqueued": report["enqueued"],
        "scenes_checked": report["scenes_checked"],
        "plex_items": report["plex_items"],
        "requests": report["requests"],
    }


def summary_line(report: dict) -> str:
    """The one line a person reads: what was checked, what was found, what was queued."""
    found = ["%d %s" % (n, gaps.WORDS[k]) for k, n in report["gaps"].items() if n]
    if report["ambiguous"]:
        found.append("%d %s" % (report["ambiguous"], gaps.WORDS[gaps.AMBIGUOUS]))
    head = "Reconcile%s (%s): checked %d scene(s) against %d Plex item(s) in %.1f s" % (
        " preview" if report["dry_run"] else "",
        SCOPE_WORDS[report["scope"]],
        report["scenes_checked"],
        report["plex_items"],
        report["seconds"],
    )
    text = head + (": " + ", ".join(found) if found else ": no gaps")
    if report.get("adopted"):
        text += "; %s %d that already match" % (
            "would adopt" if report["dry_run"] else "adopted",
            report["adopted"],
        )
    if report["dry_run"]:
        text += "; would queue %d, nothing was queued" % report["would_enqueue"]
    else:
        text += "; queued %d" % report["enqueued"]
        if report["already_queued"]:
            text += " (%d already were)" % report["already_queued"]
    if report["not_queued"]:
        text += "; %d reported only" % report["not_queued"]
    return text + ". Requests: %d to Stash, %d to Plex." % (
        report["requests"]["stash"],
        report["requests"]["plex"],
    )


def _log_report(report: dict, tally: _Tally) -> None:
    for entry in tally.sample:
        if report["dry_run"] or not entry["queued"]:
            log.info("  " + describe(entry))
    log.info(summary_line(report))
    if report["ambiguous"]:
        log.warning(
            "%d scene(s) match several Plex items and are not synced: fix 'Path mapping' or 'Plex libraries' "
            "so only one item holds each file, or turn off 'Strict matching'." % report["ambiguous"]
        )


# ---------------------------------------------------------------------- tasks
def reconcile(ctx) -> dict:
    """Reconcile task (Reconcile Now, Recent, Last 7 Days, Missing Metadata Only, Preview).

    Arguments: `scope` all/24h/7d/7d+ (default all; the 'Reconcile scope' setting is the automatic
    run's), `only` gap types
    (e.g. "empty_in_plex"), `dry_run` (queue nothing, show what would change), `sample` (how
    many gaps to show, default 20).
    """
    ctx.ensure_data_dir()
    return run_reconciliation(
        ctx,
        _scope(ctx, "all"),
        _only(ctx),
        dry_run=_flag(ctx.args.get("dry_run")),
        sample_size=_sample_size(ctx),
    )


def sync_all(ctx) -> dict:
    """Sync All / Sync Recent: queue every scene of `scope` (default all) whether it differs or not.

    With `dry_run` only counts them. Costs Stash paging only; the drain skips what is already
    up to date in Plex (one GET each, no write).
    """
    ctx.ensure_data_dir()
    scope = _scope(ctx, "all")
    dry_run = _flag(ctx.args.get("dry_run"))
    queue = None if dry_run else ctx.queue()
    started, before, n, sample = time.time(), ctx.stash.requests, 0, []
    for count, scenes in stash_pages(
        ctx.stash, since_for(schedule.SCOPES[scope], started), "id title files { basename }"
    ):
        if queue is not None:
            queue.enqueue_many([scene["id"] for scene in scenes], source="sync_all")
        for scene in scenes:
            n += 1
            if len(sample) < SAMPLE_SIZE:
                sample.append({"scene_id": str(scene["id"]), "title": scene_title(scene)})
        log.progress(min(1.0, n / float(max(count, 1))))
    seconds = round(time.time() - started, 2)
    log.info(
        "Sync %s (%s): %s %d scene(s) in %.1f s; the drain sends only what differs."
        % (
            "All" if scope == "all" else "Recent",
            SCOPE_WORDS[scope],
            "would queue" if dry_run else "queued",
            n,
            seconds,
        )
    )
    return {
        "scope": scope,
        "dry_run": dry_run,
        "scenes": n,
        "enqueued": 0 if dry_run else n,
        "requests": {"stash": ctx.stash.requests - before, "plex": 0},
        "seconds": seconds,
        "sample": sample,
    }


class AutoReconcile(Attachment):
    """The automatic reconciliation, attached to a drain (worker/attach.py)."""

    def before_pass(self, drain) -> None:
        reconcile_if_due(drain)


def process_queue(ctx) -> dict:
    """Process Queue task: the drain (worker/drain.py) with the automatic reconciliation attached."""
    from worker.drain import process_queue as drain_queue

    return drain_queue(ctx, attachments=[AutoReconcile()])


def reconcile_if_due(drain):
    """Run the automatic reconciliation inside a drain when it is due; returns its report or None.

    Called by `worker.drain.Drain` through `AutoReconcile` once Plex is known to be reachable. A failure is logged and
    waits for the next interval; it never stops the drain.
    """
    settings = drain.settings
    interval, scope = settings.reconcile_interval, settings.reconcile_scope
    now = drain.clock()
    if not schedule.auto_due(drain.data_dir, interval, scope, now):
        return None
    schedule.record_attempt(drain.data_dir, now)
    log.info("Automatic reconciliation is due ('Reconcile automatically': %s)." % interval)
    try:
        report = run_reconciliation(
            drain.ctx, scope, trigger="auto", sample_size=5, heartbeat=drain.marker.heartbeat
        )
    except Exception as exc:  # noqa: BLE001 - the drain must go on with the queue
        message = log.redact(str(exc))[:300]
        log.warning(
            "Automatic reconciliation failed (%s); it is tried again in one interval. Queued changes "
            "are synced as usual." % message
        )
        schedule.record_failure(drain.data_dir, message)
        return None
    drain.report.stash_requests += report["requests"]["stash"]
    drain.report.plex_requests += report["requests"]["plex"]
    return report
