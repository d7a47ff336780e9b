#!/usr/bin/env python3
"""PlexSync's entry point: read Stash's JSON from stdin, dispatch, print one JSON answer.

Stash starts this file as a new process for every hook and every task. A hook (scene saved) must
return at once: it imports only the standard library, `sync` and the stdlib-only parts of
`stashplugin`, appends one job to the queue and makes sure a drain will run. Tasks import what
they need lazily. Logs go to stderr in Stash's protocol; stdout carries exactly one JSON object.
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from stashplugin import log  # noqa: E402  (after the path fix, stdlib only)

# mode -> (module, function, needs Plex settings). Each function takes a TaskContext and
# returns the task's JSON output; it raises TaskError with a one-sentence message on failure.
TASKS = {
    "process_queue": ("reconcile.tasks", "process_queue", True),
    "status": ("reconcile.status", "view_queue_status", False),
    "clear_queue": ("worker.maintenance", "clear_pending_queue", False),
    "clear_dlq": ("worker.maintenance", "clear_dead_letter_queue", False),
    "purge_dlq": ("worker.maintenance", "purge_old_dead_letters", False),
    "clear_match_cache": ("worker.maintenance", "clear_match_cache", False),
    "health_check": ("worker.outage_tasks", "health_check", True),
    "outage_summary": ("worker.outage_tasks", "outage_summary", False),
    "recover_outage_jobs": ("worker.outage_tasks", "recover_outage_jobs", True),
    "reconcile": ("reconcile.tasks", "reconcile", True),
    "sync_all": ("reconcile.tasks", "sync_all", True),
}

# errno names that mean the data folder cannot take a write: disk full, quota, read-only, denied.
DISK_ERRORS = ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM")


class BadInput(Exception):
    """stdin is not what Stash sends."""


def read_input(stream) -> dict:
    try:
        raw = stream.read()
    except (OSError, ValueError) as exc:
        raise BadInput("could not read stdin (%s)" % exc)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not raw or not raw.strip():
        raise BadInput("no input on stdin; PlexSync is started by Stash, which sends a JSON document")
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise BadInput(
            "stdin is not JSON (%s); PlexSync expects the JSON document Stash sends" % str(exc).split(":")[0]
        )
    if not isinstance(payload, dict):
        raise BadInput("stdin must be a JSON object with server_connection and args")
    conn = payload.get("server_connection")
    if not isinstance(conn, dict):
        raise BadInput("stdin has no server_connection object; PlexSync must be run by Stash")
    args = payload.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise BadInput("args must be a JSON object")
    return {"server_connection": conn, "args": args}


def answer(stdout, output=None, error=None) -> None:
    body = {"output": output, "error": log.redact(error) if error else None}
    stdout.write(json.dumps(body, ensure_ascii=False, default=str))
    stdout.write("\n")
    stdout.flush()


def plugin_dir_of(conn: dict) -> str:
    return conn.get("PluginDir") or HERE


def run_hook(conn: dict, args: dict) -> tuple:
    """Enqueue the saved scene when the edit touches a field some setting could sync; the drain
    decides with fresh settings (stashplugin/hook.py). Returns (output, error)."""
    from stashplugin.hook import HOOK_TYPES, BadHookContext, entity_event, parse_hook_context
    from stashplugin.settings import read_hook_cache, resolve_data_dir

    try:
        scene_id, hook_type, hook_input, input_fields = parse_hook_context(args.get("hookContext"))
    except BadHookContext as exc:
        raise BadInput(str(exc))
    plugin_dir = plugin_dir_of(conn)
    settings = read_hook_cache(plugin_dir)
    log.configure(debug=settings.debug_logging, obfuscate_paths=settings.obfuscate_paths)
    data_dir = resolve_data_dir(settings, plugin_dir)
    entity = entity_event(hook_type)
    if entity is not None:
        return run_entity_hook(
            conn, plugin_dir, data_dir, settings, scene_id, hook_type, entity, input_fields
        )
    if hook_type not in HOOK_TYPES:
        return "ignored: PlexSync does not handle %s" % hook_type, None
    fields = scene_fields(scene_id, hook_type, hook_input, input_fields)
    if not fields:
        ensure_drain(conn, plugin_dir, data_dir, settings, enqueued=False)
        return "ignored: no synced field changed", None
    problem = enqueue(data_dir, scene_id, fields, hook_type, "scene %s" % scene_id)
    if problem:
        return None, problem
    log.debug("Queued scene %s (%s)" % (scene_id, ", ".join(fields)))
    ensure_drain(conn, plugin_dir, data_dir, settings, enqueued=True)
    return "queued", None


def scene_fields(scene_id, hook_type: str, hook_input, input_fields) -> list:
    """What to queue for a scene hook: the syncable fields the edit touched ([]: none)."""
    from stashplugin.hook import FULL_SYNC, relevant_create_fields, relevant_update_fields

    if input_fields == [FULL_SYNC]:
        log.debug("Scene %s: hook input of an unknown shape; queued as a full sync" % scene_id)
        return [FULL_SYNC]  # an input PlexSync cannot read: sync the whole scene rather than lose it
    if hook_type == "Scene.Update.Post" and hook_input is None and not input_fields:
        # A scan added or changed a file of an existing scene (pkg/scene/scan.go, associateExisting):
        # the file Plex knows it by may be a new one, so match and sync it again, whole.
        return [FULL_SYNC]
    if hook_type == "Scene.Create.Post":
        return relevant_create_fields(hook_input)
    return relevant_update_fields(input_fields)


def enqueue(data_dir: str, key: str, fields: list, hook_type: str, what: str) -> str:
    """Append one job to the queue (one fsync'd write); "" when done, else the error to answer."""
    from sync.lock import LockRefused
    from sync.queue import FileQueue
    from sync.store import make_private_dir

    try:
        make_private_dir(data_dir)
        FileQueue(data_dir).enqueue(key, fields, source=hook_type)
    except LockRefused as exc:
        return "PlexSync could not save the change of %s: %s." % (what, exc.strerror)
    except OSError as exc:
        return (
            "PlexSync could not save the change of %s to its queue in %s (%s); "
            "make that folder writable or set 'Data folder' to one that is."
            % (what, data_dir, exc.strerror or exc)
        )
    return ""


def run_entity_hook(
    conn, plugin_dir, data_dir, settings, object_id, hook_type, entity, input_fields
) -> tuple:
    """A tag, performer, studio or group was renamed, deleted or merged: record "tag 17 changed"
    (one job, coalesced); the drain finds the scenes it concerns."""
    from stashplugin.hook import entity_change_fields

    kind, event = entity
    fields = entity_change_fields(kind, event, input_fields)
    if not fields:
        ensure_drain(conn, plugin_dir, data_dir, settings, enqueued=False)
        return "ignored: nothing PlexSync writes changed", None
    problem = enqueue(data_dir, "%s:%s" % (kind, object_id), fields, hook_type, "%s %s" % (kind, object_id))
    if problem:
        return None, problem
    log.debug("Queued %s %s (%s): its scenes follow" % (kind, object_id, event.lower()))
    ensure_drain(conn, plugin_dir, data_dir, settings, enqueued=True)
    return "queued", None


def drain_wanted(
    data_dir: str,
    enqueued: bool,
    now: float,
    check_queue: bool = False,
    reconcile_interval: str = "never",
    reconcile_scope: str = "all",
) -> bool:
    """Should this invocation make sure a drain runs? (small file reads only)

    While Plex is known to be down a drain would only wait, so a new job does not ask for one;
    once the breaker's pause is over, any invocation asks, which is how a recovered Plex is
    noticed without anyone pressing a button. So does a retry that a stopped drain left for
    later (its time is in the drain marker), and a due automatic reconciliation: the drain runs
    it (reconcile/schedule.py decides from `reconcile.json`, one small read).
    """
    from sync.breaker_file import CLOSED, read_breaker_cheap

    breaker = read_breaker_cheap(data_dir, now)
    if breaker["state"] != CLOSED:
        if not breaker["probe_due"]:
            return False
        from sync.queue import FileQueue

        return enqueued or FileQueue(data_dir).has_due()
    if enqueued:
        return True
    from sync.drain_marker import DrainMarker, retry_due

    if retry_due(DrainMarker(data_dir).read(), now):
        return True  # a change that failed earlier is due for its retry
    if reconcile_interval != "never":
        from reconcile.schedule import auto_due

        if auto_due(data_dir, reconcile_interval, reconcile_scope, now):
            return True
    if check_queue:
        from sync.queue import FileQueue, queue_exists

        return queue_exists(data_dir) and FileQueue(data_dir).has_due()
    return False


def ensure_drain(
    conn: dict,
    plugin_dir: str,
    data_dir: str,
    settings,
    enqueued: bool,
    check_queue: bool = False,
    fresh_settings: bool = False,
) -> None:
    """Ask Stash for a drain unless one is running or already requested (see sync/drain_marker.py).

    Pause is decided by a drain, which reads the settings fresh. A task has fresh settings too: it
    skips the request while sync is paused, and otherwise ends the pause a drain left in the
    marker. A hook's cached copy may be stale, so a hook relies on the marker alone.
    """
    from sync.drain_marker import STALE, DrainMarker

    marker = DrainMarker(data_dir)
    if fresh_settings:
        if settings.pause_sync:
            return
        marker.end_pause()
    if not drain_wanted(
        data_dir, enqueued, time.time(), check_queue, settings.reconcile_interval, settings.reconcile_scope
    ):
        return
    kind = marker.claim_request()
    if not kind:
        return
    from stashplugin.drain_request import drain_waiting_in_stash, request_drain

    if kind == STALE and drain_waiting_in_stash(conn):
        return  # Stash holds our earlier request behind a long job; the claim refreshed the marker
    how, problem = request_drain(conn, plugin_dir)
    if not how:
        marker.withdraw()
        log.warning(
            "PlexSync could not start syncing (%s); the change is queued and goes out with the next "
            "edit or when you run 'Process Queue'." % problem
        )
    elif how == "background":
        log.debug("Stash could not queue the drain task (%s); syncing in the background instead" % problem)


def check_dependencies(plugin_dir: str) -> None:
    """Make plexapi and requests importable before anything imports them (stashplugin.dependencies
    says how: already there, PythonDepManager, or pip --target into the data folder)."""
    from stashplugin.dependencies import MissingPackages, ensure_packages
    from stashplugin.settings import read_hook_cache, resolve_data_dir
    from stashplugin.task import TaskError

    # The settings are not known yet (reading them needs requests); the data folder the last task
    # saw is in the hook's settings cache.
    data_dir = resolve_data_dir(read_hook_cache(plugin_dir), plugin_dir)
    try:
        ensure_packages(plugin_dir, data_dir)
    except MissingPackages as exc:
        raise TaskError(str(exc))


def precompile() -> None:
    """Write the bytecode of PlexSync's modules once, so hooks never compile source.

    Python writes it by itself on first import, except where PYTHONDONTWRITEBYTECODE is set or
    the first import happened elsewhere; compiling costs a hook several times its own run time.
    Tasks are not time-critical, so they make sure it is there (unchanged files are skipped).
    """
    try:
        import compileall

        for folder in ("sync", "stashplugin", "worker", "reconcile"):
            compileall.compile_dir(os.path.join(HERE, folder), quiet=2, maxlevels=0)
        compileall.compile_file(os.path.join(HERE, "plexsync.py"), quiet=2)
    except Exception as exc:  # a read-only plugin folder only costs speed
        log.debug("Could not precompile PlexSync's modules (%s)" % exc)


def run_task(conn: dict, args: dict, started_at=None) -> tuple:
    from stashplugin.settings import SettingsError
    from stashplugin.task import TaskError

    mode = args.get("mode")
    if not isinstance(mode, str) or mode not in TASKS:
        known = ", ".join(sorted(TASKS))
        raise BadInput("unknown task mode %r; known modes: %s" % (mode, known))
    module_name, func_name, need_plex = TASKS[mode]
    precompile()
    try:
        check_dependencies(plugin_dir_of(conn))
    except TaskError as exc:
        return None, str(exc)
    # Only now: stashplugin.stash imports requests.
    from stashplugin.stash import StashError
    from stashplugin.task import load_context
    from worker.plex import use_identity

    try:
        ctx = load_context(conn, args, need_plex, started_at)
        use_identity(ctx.data_dir)  # one Plex device across runs, restarts and containers
        module = __import__(module_name, fromlist=[func_name])
        output = getattr(module, func_name)(ctx)
        if mode != "process_queue":
            # Every invocation notices a recovered Plex or a stranded backlog.
            ensure_drain(
                conn,
                ctx.plugin_dir,
                ctx.data_dir,
                ctx.settings,
                enqueued=False,
                check_queue=True,
                fresh_settings=True,
            )
        return output, None
    except (TaskError, SettingsError, StashError) as exc:
        return getattr(exc, "output", None), str(exc)


def main(stdin=None, stdout=None) -> int:
    # A task's time (and the age of the session cookie Stash gave it) counts from here, before
    # the dependency check and the imports, which take long on a slow or fresh install.
    started_at = time.time()
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    try:
        output, error = dispatch(read_input(stdin), started_at)
    except BadInput as exc:
        message = "PlexSync: %s" % exc
        log.error(message)
        answer(stdout, error=message)
        return 2
    except KeyboardInterrupt:
        answer(
            stdout,
            error="PlexSync was interrupted; queued changes are kept and sync resumes on the next run.",
        )
        return 130
    except Exception as exc:  # last resort: one clear line, the traceback at debug level
        import traceback

        message = unexpected_error(exc)
        log.error(message)
        log.debug(traceback.format_exc())
        answer(stdout, error=message)
        return 1
    if error:
        log.error(error)
        answer(stdout, output=output, error=error)
        return 1
    answer(stdout, output=output)
    return 0


def dispatch(payload: dict, started_at=None) -> tuple:
    """A hook, a task or the watcher, by what Stash (or a stopping drain) sent; (output, error)."""
    conn, args = payload["server_connection"], payload["args"]
    if "hookContext" in args:
        return run_hook(conn, args)
    if "mode" in args:
        return run_task(conn, args, started_at)
    if isinstance(args.get("watch"), dict):
        # The detached watcher a stopped drain leaves behind (worker/watcher.py), not a Stash call.
        from worker.watcher import run_watcher

        return run_watcher(conn, args["watch"]), None
    raise BadInput("args has neither hookContext (a hook) nor mode (a task); check PlexSync.yml")


def unexpected_error(exc: Exception) -> str:
    """The one sentence for an error nothing else caught: the user's to fix when it is the disk."""
    import errno

    from sync.lock import LockRefused

    if isinstance(exc, LockRefused):
        return "PlexSync could not lock its files: %s; queued changes are kept." % exc.strerror
    disk_errors = {getattr(errno, name, None) for name in DISK_ERRORS} - {None}
    if isinstance(exc, OSError) and exc.errno in disk_errors:
        # A full or read-only disk is the user's to fix, not a bug to report.
        return (
            "PlexSync could not write its files (%s%s); free some disk space or make the data "
            "folder writable (setting 'Data folder'); queued changes are kept."
            % (exc.strerror or exc, ": %s" % exc.filename if exc.filename else "")
        )
    return (
        "PlexSync failed unexpectedly (%s: %s); queued changes are kept. "
        "Turn on 'Debug logging' and report the log." % (type(exc).__name__, exc)
    )


if __name__ == "__main__":
    sys.exit(main())
