"""What every task receives: the connection, its arguments, settings and the data folder."""

from __future__ import annotations

import os
import time

from stashplugin import log
from stashplugin.settings import (
    Settings,
    default_data_dir,
    read_hook_cache,
    resolve_data_dir,
    write_hook_cache,
)
from sync.queue import FileQueue, queue_exists
from sync.store import JsonFile, clean_temp_files, make_private_dir

# Data folders used before the current one, kept in the default data folder so every task can
# look for changes a hook queued there after the folder changed (hooks learn of the change only
# from the next task).
EARLIER_FOLDERS_NAME = "earlier_data_folders.json"
MAX_EARLIER_FOLDERS = 5


class TaskError(Exception):
    """A task cannot go on; the message is one sentence that says what to do. `output`, when
    given, is still answered as the task's JSON output beside the error (for scripts)."""

    def __init__(self, message: str, output=None):
        super().__init__(message)
        self.output = output


class TaskContext:
    """Built once per task process by plexsync.py and passed down."""

    def __init__(self, server_connection: dict, args: dict, settings: Settings, stash=None, started_at=None):
        self.server_connection = server_connection
        # When Stash started this process (plexsync.py notes it first thing): a drain's time and
        # the age of the session cookie Stash gave the task count from here, not from after the
        # imports and the dependency check, which can take long on a slow or fresh install.
        self.started_at = time.time() if started_at is None else started_at
        self.plugin_dir = server_connection.get("PluginDir") or os.path.dirname(
            os.path.abspath(__file__ + "/..")
        )
        self.args = args
        self.settings = settings
        self.data_dir = resolve_data_dir(settings, self.plugin_dir)
        self._stash = stash

    @property
    def stash(self):
        if self._stash is None:
            # Here, not at the top: plexsync.py imports this module (TaskError) before the
            # dependency bootstrap has made requests importable.
            from stashplugin.stash import StashClient

            self._stash = StashClient(self.server_connection)
        return self._stash

    def queue(self):
        """The durable queue in the data folder; damage found while reading it is logged loudly."""
        if getattr(self, "_queue", None) is None:
            self.ensure_data_dir()
            self._queue = FileQueue(self.data_dir, on_corrupt=lambda exc: log.error(str(exc)))
        return self._queue

    def ensure_data_dir(self) -> str:
        """Create the data folder if needed and check it is writable; the first call of a task
        also removes temp files that a write killed before its replace left behind."""
        try:
            make_private_dir(self.data_dir)
        except OSError as exc:
            raise TaskError(
                "PlexSync cannot create its data folder %s (%s); set 'Data folder' to a writable folder."
                % (self.data_dir, exc.strerror or exc)
            )
        if not os.access(self.data_dir, os.W_OK):
            raise TaskError(
                "PlexSync's data folder %s is not writable; fix its permissions or set 'Data folder' to a writable folder."
                % self.data_dir
            )
        if not getattr(self, "_temp_cleaned", False):
            self._temp_cleaned = True
            clean_temp_files(self.data_dir)
        return self.data_dir


def store_switch_defaults(stash, raw: dict, taken_over=()) -> None:
    """Store the default of every on-by-default switch the user never touched, so Stash's
    settings page shows it on, as PlexSync treats it, and the settings taken over from the
    Community "Plex Sync" (`taken_over`, already in `raw`). Best effort: the sync never depends on it."""
    from stashplugin.settings import LEGACY_SETTINGS, SPEC, unset_switches

    missing = unset_switches(raw)
    if not missing and not taken_over:
        return
    try:
        stash.configure_plugin(dict(raw, **missing))
    except Exception as exc:  # noqa: BLE001 - an older Stash, a read-only API key: only the display suffers
        log.debug("Could not store PlexSync's settings in Stash (%s)" % exc)
        return
    if taken_over:
        old = sorted({o for name, olds, _c in LEGACY_SETTINGS if name in taken_over for o in olds})
        log.info(
            "Took over %s from the Community 'Plex Sync' plugin's settings (%s); they are now PlexSync's "
            "own, and the old ones were left in place."
            % (", ".join("'%s'" % SPEC[n][2] for n in taken_over), ", ".join(old))
        )
    if missing:
        log.info(
            "Stored the defaults of PlexSync's switches you have not set yet (%s), so Stash's settings "
            "page shows them as PlexSync uses them." % ", ".join(sorted(missing))
        )


def load_context(server_connection: dict, args: dict, need_plex: bool, started_at=None) -> TaskContext:
    """Fetch and validate settings from Stash (one GraphQL request) and build the task context."""
    from stashplugin.stash import StashClient

    stash = StashClient(server_connection)
    stash.check_version()  # before any query an older Stash would reject
    from stashplugin.settings import take_over_legacy

    raw, taken_over = take_over_legacy(stash.plugin_settings())
    settings = Settings.from_raw(raw, strict=True, need_plex=need_plex)
    if settings.plex_token:
        log.add_secret(settings.plex_token)
    log.configure(debug=settings.debug_logging, obfuscate_paths=settings.obfuscate_paths)
    ctx = TaskContext(server_connection, args, settings, stash, started_at)
    store_switch_defaults(stash, raw, taken_over)
    adopt_earlier_queues(ctx)
    try:
        write_hook_cache(ctx.plugin_dir, settings)
    except OSError as exc:
        log.warning("Could not save settings for the hook (%s); hooks use defaults until this works." % exc)
    return ctx


def adopt_earlier_queues(ctx: TaskContext) -> int:
    """'Data folder' changed: move what hooks queued in an earlier folder into the current one.

    Changing a setting runs no task, so hooks keep queueing where the last task told them until
    the next task; that task (this function) notices, moves the old folder's waiting changes and
    says so. The old folder is remembered, so a hook that was already running at that moment is
    caught by a later task. Returns how many changes were moved.
    """
    earlier_file = JsonFile(os.path.join(default_data_dir(ctx.plugin_dir), EARLIER_FOLDERS_NAME))
    earlier = earlier_file.read()
    folders = [f for f in earlier.get("folders", []) if isinstance(f, str)]
    previous = resolve_data_dir(read_hook_cache(ctx.plugin_dir), ctx.plugin_dir)
    if previous not in folders:
        folders.append(previous)
    folders = [f for f in folders if not _same_folder(f, ctx.data_dir)][-MAX_EARLIER_FOLDERS:]
    if folders != earlier.get("folders", []):
        try:
            make_private_dir(default_data_dir(ctx.plugin_dir))
            earlier_file.write({"folders": folders})
        except OSError as exc:  # the move below still happens; the list is written next time
            log.warning("Could not note the earlier data folder %s (%s)." % (previous, exc.strerror or exc))
    return sum(_adopt_from(ctx, folder) for folder in folders if queue_exists(folder))


def _same_folder(a: str, b: str) -> bool:
    """The same folder, however it is spelled (case on Windows, symlinks, a trailing slash)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _adopt_from(ctx: TaskContext, folder: str) -> int:
    try:
        count = ctx.queue().adopt(FileQueue(folder, on_corrupt=lambda exc: log.error(str(exc))))
    except OSError as exc:
        log.warning(
            "PlexSync could not take over the changes queued in its earlier data folder %s (%s); "
            "they stay there until this works." % (folder, exc.strerror or exc)
        )
        return 0
    if count:
        log.warning(
            "'Data folder' changed to %s: moved %d queued change(s) from the earlier folder %s."
            % (ctx.data_dir, count, folder)
        )
    return count
