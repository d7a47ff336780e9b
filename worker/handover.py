"""Long drains hand over to a fresh drain before Stash's session cookie expires, invisibly.

The session cookie Stash gives a task stops working after Stash's max session age (1 h by
default; pkg/session/session.go), and a Sync All of a large library runs longer than that. So a
drain whose Stash job has run for half the session age (counted from the process's start: Stash
mints the cookie as the job starts, in RunPluginTask's job function, internal/manager/
task_plugin.go -> PluginCache.CreateTask; a first run may spend minutes installing dependencies
before the drain begins) finishes the change it is on, gives the rest back to the queue and asks
Stash for a new "Process Queue" (the request the hook makes, with its still valid cookie); the
new task starts with a fresh cookie and carries on. Nothing is lost or done twice: the jobs
left are simply pending. The age is asked of Stash once (`configuration.general.
maxSessionAge`), and only by a drain that has already run CHECK_AFTER seconds.

The user sees one drain: the job that hands over logs one line that it continues, and no
summary; it leaves `handover.json` (this module's alone) with the running totals — the counts the
summary shows, when the drain started, how many Stash jobs it has run in and where its progress
bar stands. The next drain takes the record (reads and removes it, under the drain lock), so its
bar starts there and its one summary covers every part. A record older than VALID_FOR was not
taken up by the drain it asked for (Stash lost the request, the user removed the job, or it
waited behind a long Stash job): it is not merged into a later drain's figures; its summary is
logged late, as it stood, and the record removed. A continuation cancelled by Stash (SIGKILL)
has already removed the record, so nothing of it can reach a later summary. When the fresh drain
cannot be asked for, the record is taken back and the drain logs its summary as any stopped
drain does; the work left stays queued (and the watcher asks Stash again, worker/watcher.py).
"""

from __future__ import annotations

import os
import time

from stashplugin import log
from sync.store import JsonFile
from worker.attach import Attachment
from worker.drain_report import COUNTS, DrainReport
from worker.failures import Stop

CHECK_AFTER = 5.0  # seconds of running before a drain asks Stash for the session age
FRACTION = 0.5  # hand over after this part of the session age
DEFAULT_AGE = 3600.0  # Stash's default, when it cannot say
_QUERY = "query PlexSyncSessionAge { configuration { general { maxSessionAge } } }"

RECORD_NAME = "handover.json"
VERSION = 1
# The fresh drain normally starts the moment the one that asked for it exits (Stash runs one job
# at a time). One that has not started within this was not the continuation of anything a user
# would still call the same drain.
VALID_FOR = 600.0
CLOCK_SLACK = 5.0  # a record "written" this far in the future still counts (clocks differ a little)
NOT_REQUESTED = (
    "Stash's session was about to expire and no fresh drain could be requested; the rest stays queued"
)


def session_age(stash) -> float:
    """Stash's max session age in seconds (its default when Stash cannot say)."""
    from stashplugin.stash import StashError

    try:
        data = stash.query(_QUERY)
    except StashError as exc:
        log.debug("Could not read Stash's session age (%s); assuming %d s" % (exc, DEFAULT_AGE))
        return DEFAULT_AGE
    general = (data.get("configuration") or {}).get("general") or {}
    age = general.get("maxSessionAge")
    return (
        float(age) if isinstance(age, (int, float)) and not isinstance(age, bool) and age > 0 else DEFAULT_AGE
    )


# -- the record ----------------------------------------------------------------------------------
def _record_file(data_dir: str) -> JsonFile:
    return JsonFile(os.path.join(data_dir, RECORD_NAME), on_corrupt=lambda exc: log.warning(str(exc)))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def record_of(report: DrainReport, now: float) -> dict:
    """The hand-over record of a drain that stops here for a fresh one."""
    return {
        "version": VERSION,
        "written_at": now,
        "started_at": report.started_at,
        "parts": report.parts,
        "counts": report.counts(),
        "progress": report.progress,
    }


def valid(record) -> bool:
    """Is `record` a hand-over record this version wrote (whatever its age)?"""
    if not isinstance(record, dict) or record.get("version") != VERSION:
        return False
    counts = record.get("counts")
    return (
        _number(record.get("written_at"))
        and _number(record.get("started_at"))
        and record["started_at"] <= record["written_at"]
        and _count(record.get("parts"))
        and record["parts"] >= 1
        and isinstance(counts, dict)
        and all(_count(counts.get(name, 0)) for name in COUNTS)
        and _number(record.get("progress"))
        and 0.0 <= record["progress"] <= 1.0
    )


def fresh(record: dict, now: float) -> bool:
    """May a drain starting at `now` continue the drain that wrote `record`?"""
    age = now - record["written_at"]
    return -CLOCK_SLACK <= age <= VALID_FOR


def write_record(data_dir: str, record: dict) -> None:
    """Leave the record for the fresh drain (atomically: it reads all of it or nothing)."""
    _record_file(data_dir).write(record)


def take_record(data_dir: str, now: float) -> tuple:
    """Read and remove the record: (record to continue, None), (None, stale record) or (None, None).

    Call with the drain lock held. Removing it at once means a continuation that Stash cancels
    (SIGKILL) leaves nothing behind that a later, unrelated drain could count as its own."""
    path = os.path.join(data_dir, RECORD_NAME)
    if not os.path.exists(path):
        return None, None
    record = _record_file(data_dir).read()
    _remove(path)
    if not valid(record):
        if record:
            log.debug("Ignored a hand-over record this version does not read")
        return None, None
    return (record, None) if fresh(record, now) else (None, record)


def take_back(data_dir: str, record: dict) -> bool:
    """The fresh drain could not be asked for: remove the record if it is still the one written.
    False when it is gone or replaced, i.e. a drain has started meanwhile and continues this one."""
    path = os.path.join(data_dir, RECORD_NAME)
    if _record_file(data_dir).read() != record:
        return False
    return _remove(path)


def _remove(path: str) -> bool:
    try:
        os.remove(path)
    except FileNotFoundError:
        return False
    except OSError as exc:  # e.g. Windows, a reader has it open: the next drain finds it stale
        log.debug("Could not remove %s (%s)" % (os.path.basename(path), exc))
        return False
    return True


def late_summary(record: dict) -> str:
    """The summary of a drain whose fresh drain never took it up, as it stood."""
    report = DrainReport()
    report.continue_from(record["started_at"], record["counts"], record["parts"] - 1, record["progress"])
    report.ended_at = record["written_at"]
    report.stopped = "it handed over to a fresh drain at %s, which did not start within %d minutes" % (
        time.strftime("%H:%M:%S", time.localtime(record["written_at"])),
        VALID_FOR // 60,
    )
    return report.line()


# -- the attachment ------------------------------------------------------------------------------
class HandOver(Attachment):
    """Decides, for one drain, when it should hand over to a fresh one, and carries the drain on
    from the one that handed over to it."""

    def __init__(self, ctx, started_at: float):
        self.ctx = ctx
        self.started_at = started_at
        self.age = None

    def before_drain(self, drain) -> None:
        """Continue the drain that handed over to this one, if it did (drain lock held)."""
        record, stale = take_record(drain.data_dir, drain.clock())
        if stale is not None:
            log.info(late_summary(stale))
        if record is None:
            return
        drain.report.continue_from(
            record["started_at"], record["counts"], record["parts"], record["progress"]
        )
        log.debug("Continuing the drain that started at %s" % time.ctime(record["started_at"]))
        log.progress(drain.report.progress)

    def due(self, now: float) -> bool:
        elapsed = now - self.started_at
        if elapsed < CHECK_AFTER:
            return False
        if self.age is None:
            self.age = session_age(self.ctx.stash)
        return elapsed >= self.age * FRACTION

    def after_change(self, drain, rest: int):
        """Mid-batch too: a batch against a slow Plex must not outlast the cookie (its `rest`
        changes go back to the queue, for the fresh drain)."""
        if self.due(drain.clock()):
            return Stop("handed over to a fresh drain", handed_over=True)
        return None

    def after_batch(self, drain):
        """Before Stash's session cookie expires: the rest goes to a fresh drain (when there is a
        rest: a drain that has just emptied the queue ends here, its cookie still has half its age)."""
        if self.due(drain.clock()) and drain.queue.summary().pending:
            return Stop("handed over to a fresh drain", handed_over=True)
        return None

    def after_drain(self, ctx, report) -> None:
        """Leave the record and ask Stash for the fresh drain; if that fails, the drain ends here
        like any stopped drain (its summary is logged, the work left stays queued)."""
        if not report.handed_over:
            return
        record = record_of(report, time.time())
        try:
            write_record(ctx.data_dir, record)
        except OSError as exc:
            problem = "its running totals could not be saved (%s)" % (exc.strerror or exc)
        else:
            problem = request_fresh_drain(ctx)
            if problem and not take_back(ctx.data_dir, record):
                problem = ""  # a drain started meanwhile and took the record: it continues this one
        if problem:
            log.warning("PlexSync could not hand over to a fresh drain: %s." % problem)
            report.handed_over = False
            report.stopped = NOT_REQUESTED
            return
        pending = ctx.queue().summary().pending
        log.info(
            "Process Queue continues in a fresh Stash job before Stash's session expires "
            "(%d change(s) to go); it logs the summary." % pending
        )


def request_fresh_drain(ctx) -> str:
    """Ask Stash for the drain that continues this one: "" when asked (or already asked for)."""
    from stashplugin.drain_request import ask_stash_to_drain
    from sync.drain_marker import DrainMarker

    marker = DrainMarker(ctx.data_dir)
    if not marker.claim_request():
        return ""  # a hook asked for one meanwhile, or a drain already runs
    problem = ask_stash_to_drain(ctx.server_connection)
    if problem:
        marker.withdraw()
    return problem
