"""Run a Stash "raw" plugin exactly the way Stash does.

Stash (pkg/plugin/raw.go, pkg/plugin/log.go, pkg/logger/plugin.go) starts the
plugin's ``exec`` command as a new process for every hook and every task:

* stdin receives one JSON document ``{"server_connection": {...}, "args": {...}}``
  and is then closed;
* stdout is read **until EOF** (so a grandchild that inherited the pipe keeps
  Stash waiting), then parsed as ``{"output": ..., "error": ...}``; anything that
  is not such a JSON document becomes the raw ``output`` string;
* after stdout's EOF Stash waits for the process to exit; a non-zero exit
  without an ``error`` in the JSON becomes ``error = "exit status N"``;
* stderr is read line by line: ``\\x01<level>\\x02message`` lines are log lines
  (levels t, d, i, w, e), ``\\x01p\\x02<float>`` is progress, any other line is
  logged at the manifest's ``errLog`` level (``error`` by default).  When the
  process is done Stash closes its end of stderr, so a detached child that
  still writes there gets EPIPE;
* Cancel (stopJob) kills the process with SIGKILL (``os.Process.Kill``);
* a manifest whose exec starts with ``python``/``python3`` runs with the folder above the
  plugin's folder appended to PYTHONPATH (pkg/plugin/raw.go, pkg/python/env.go).

``PluginRunner`` reproduces that and records everything in a ``PluginRun``.
Python 3.9 compatible, standard library + PyYAML only.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from subprocess import PIPE, Popen, TimeoutExpired
from typing import Any, Callable, Dict, List, Optional, Tuple

try:  # select() on pipes works on POSIX only; Windows falls back to blocking reads
    import select as _select
except ImportError:  # pragma: no cover
    _select = None

_CAN_SELECT_PIPES = _select is not None and os.name == "posix"

LEVEL_NAMES = {"trace": "t", "debug": "d", "info": "i", "warning": "w", "error": "e", "none": None}
LOG_LEVELS = ("t", "d", "i", "w", "e")
PYTHON_NAMES = ("python", "python3", "python.exe", "python3.exe")

LogCallback = Callable[[str, str], None]
ProgressCallback = Callable[[float], None]


class PluginConfigError(Exception):
    """The plugin folder holds no usable manifest, or the operation is unknown."""


class PluginRun:
    """Everything observed about one plugin process."""

    def __init__(self) -> None:
        self.command: List[str] = []
        self.input: Dict[str, Any] = {}
        self.pid: Optional[int] = None
        self.stdout: str = ""
        self.stderr: str = ""
        self.logs: List[Tuple[str, str]] = []
        self.progress: List[float] = []
        self.output: Any = None
        self.error: Optional[str] = None
        self.parsed: bool = False  # stdout was one JSON object (Stash's PluginOutput)
        self.returncode: Optional[int] = None
        self.started: float = 0.0  # time.time()
        self.ended: float = 0.0
        self.wall_seconds: float = 0.0
        self.timed_out: bool = False
        self.killed: bool = False
        self.stdout_held_open: bool = False  # process exited but stdout stayed open

    @property
    def ok(self) -> bool:
        return self.error is None and self.returncode == 0

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "PluginRun(rc=%r, output=%r, error=%r, logs=%d, progress=%d, wall=%.3fs%s%s)" % (
            self.returncode,
            self.output,
            self.error,
            len(self.logs),
            len(self.progress),
            self.wall_seconds,
            ", timed_out" if self.timed_out else "",
            ", killed" if self.killed else "",
        )


class _PipeReader(threading.Thread):
    """Reads a pipe until EOF or stop(); closes the read end when done."""

    def __init__(self, fileobj: Any, on_data: Callable[[bytes], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._file = fileobj
        self._fd = fileobj.fileno()
        self._on_data = on_data
        self._stop_evt = threading.Event()
        self.eof = threading.Event()  # real EOF seen
        self.done = threading.Event()  # thread finished (EOF or stopped)

    def run(self) -> None:
        try:
            while not self._stop_evt.is_set():
                if _CAN_SELECT_PIPES:
                    ready, _, _ = _select.select([self._fd], [], [], 0.05)
                    if not ready:
                        continue
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    self.eof.set()
                    break
                self._on_data(chunk)
        except (OSError, ValueError):
            pass
        finally:
            try:
                self._file.close()
            except OSError:
                pass
            self.done.set()

    def stop(self) -> None:
        self._stop_evt.set()


def _go_exit_error(returncode: int) -> str:
    """The text of Go's *exec.ExitError, which Stash stores as the task error."""
    if returncode < 0:
        import signal

        try:
            name = signal.Signals(-returncode).name
        except (ValueError, AttributeError):
            name = "signal %d" % -returncode
        text = {
            "SIGKILL": "killed",
            "SIGTERM": "terminated",
            "SIGINT": "interrupt",
            "SIGSEGV": "segmentation fault",
            "SIGABRT": "aborted",
        }.get(name, name)
        return "signal: %s" % text
    return "exit status %d" % returncode


def parse_plugin_output(stdout: str) -> Tuple[Any, Optional[str], bool]:
    """Parse stdout as Stash does (json.Unmarshal into PluginOutput).

    Returns (output, error, parsed).  When stdout is not one JSON object with a
    string-or-null ``error``, the whole raw text is the output.
    """
    try:
        doc = json.loads(stdout)
    except ValueError:
        return stdout, None, False
    if not isinstance(doc, dict):
        return stdout, None, False
    error = doc.get("error")
    if error is not None and not isinstance(error, str):
        return stdout, None, False
    return doc.get("output"), error, True


def parse_log_line(line: str, default_level: Optional[str]) -> Tuple[Optional[str], str]:
    """Split one stderr line into (level, message) like logger.DetectLogLevel."""
    if len(line) >= 4 and line[0] == "\x01" and line[2] == "\x02":
        char = line[1]
        if char in LOG_LEVELS or char == "p":
            return char, line[3:].strip()
    return default_level, line


class PluginHandle:
    """A running plugin process (what Stash holds while a task runs)."""

    def __init__(
        self,
        runner: "PluginRunner",
        args: Dict[str, Any],
        server_connection: Dict[str, Any],
        operation: Optional[Dict[str, Any]] = None,
        on_log: Optional[LogCallback] = None,
        on_progress: Optional[ProgressCallback] = None,
        cwd: Optional[str] = None,
    ) -> None:
        self.run = PluginRun()
        self._runner = runner
        self._on_log = on_log
        self._on_progress = on_progress
        self._default_level = runner.default_log_level
        self._stdout_chunks: List[bytes] = []
        self._stderr_chunks: List[bytes] = []
        self._stderr_buf = b""
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._result_lock = threading.Lock()

        run = self.run
        run.command = runner.command(operation)
        run.input = {"server_connection": server_connection, "args": args}
        payload = json.dumps(run.input).encode("utf-8")
        run.started = time.time()
        self._t0 = time.monotonic()
        self._proc = Popen(
            run.command,
            stdin=PIPE,
            stdout=PIPE,
            stderr=PIPE,
            bufsize=0,
            cwd=cwd or runner.cwd,
            env=runner.environment(),
        )
        run.pid = self._proc.pid
        self._stdout_reader = _PipeReader(self._proc.stdout, self._stdout_chunks.append, "plugin-stdout")
        self._stderr_reader = _PipeReader(self._proc.stderr, self._on_stderr, "plugin-stderr")
        self._stdout_reader.start()
        self._stderr_reader.start()
        writer = threading.Thread(target=self._write_stdin, args=(payload,), name="plugin-stdin", daemon=True)
        writer.start()

    @property
    def pid(self) -> Optional[int]:
        return self.run.pid

    def _write_stdin(self, payload: bytes) -> None:
        stdin = self._proc.stdin
        try:
            stdin.write(payload)
        except (OSError, ValueError):
            pass
        finally:
            try:
                stdin.close()
            except (OSError, ValueError):
                pass

    def _on_stderr(self, chunk: bytes) -> None:
        with self._lock:
            self._stderr_chunks.append(chunk)
            data = self._stderr_buf + chunk
            lines = data.split(b"\n")
            self._stderr_buf = lines.pop()
        for raw in lines:
            self._handle_line(raw)

    def _handle_line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace")
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            return
        level, msg = parse_log_line(line, self._default_level)
        if level is None:
            return
        if level == "p":
            try:
                value = float(msg)
            except ValueError:
                level, msg = "e", "Error parsing progress value '%s'" % msg
            else:
                self.run.progress.append(value)
                if self._on_progress is not None:
                    self._on_progress(value)
                return
        self.run.logs.append((level, msg))
        if self._on_log is not None:
            self._on_log(level, msg)

    def poll(self) -> Optional[int]:
        return self._proc.poll()

    def kill(self) -> None:
        """SIGKILL the plugin process, as Stash's Cancel does."""
        if self._proc.poll() is None:
            self.run.killed = True
            try:
                self._proc.kill()
            except OSError:
                pass

    def wait(self, timeout: Optional[float] = None) -> PluginRun:
        """Wait like Stash: stdout to EOF, then process exit.  ``timeout`` (seconds)
        bounds the whole wait; when it expires the process is killed and the run
        is reported with ``timed_out`` and an explanatory ``error``."""
        with self._result_lock:
            if self._finished.is_set():
                return self.run
            deadline = None if timeout is None else self._t0 + timeout
            run = self.run
            proc = self._proc

            def remaining() -> Optional[float]:
                return None if deadline is None else max(0.0, deadline - time.monotonic())

            # 1. stdout until EOF (or kill / timeout)
            while not self._stdout_reader.eof.is_set():
                step = 0.05 if remaining() is None else min(0.05, remaining())
                if self._stdout_reader.eof.wait(step):
                    break
                if run.killed and proc.poll() is not None:
                    # Cancel: Stash stops waiting for the task once the process is dead
                    self._stdout_reader.eof.wait(0.2)
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    run.timed_out = True
                    break
            if not self._stdout_reader.eof.is_set() and proc.poll() is not None:
                run.stdout_held_open = True
            # 2. process exit
            if run.timed_out:
                self._kill_quietly()
            try:
                proc.wait(remaining() if not run.timed_out else 5)
            except TimeoutExpired:
                run.timed_out = True
                self._kill_quietly()
                proc.wait()
            run.returncode = proc.returncode
            # 3. Stash closes its pipe ends once the process is done
            self._stdout_reader.stop()
            self._stderr_reader.eof.wait(0.2)
            self._stderr_reader.stop()
            self._stdout_reader.done.wait(1.0)
            self._stderr_reader.done.wait(1.0)
            with self._lock:
                tail, self._stderr_buf = self._stderr_buf, b""
            if tail:
                self._handle_line(tail)
            run.ended = time.time()
            run.wall_seconds = time.monotonic() - self._t0
            run.stdout = b"".join(self._stdout_chunks).decode("utf-8", "replace")
            run.stderr = b"".join(self._stderr_chunks).decode("utf-8", "replace")
            run.output, run.error, run.parsed = parse_plugin_output(run.stdout)
            if run.timed_out:
                if run.stdout_held_open:
                    why = (
                        "the plugin process exited (return code %s) but its stdout stayed open - a child "
                        "process inherited the pipe, and Stash reads stdout until EOF" % run.returncode
                    )
                else:
                    why = "the plugin process was still running"
                run.error = "timeout after %.1fs: %s" % (timeout or 0.0, why)
            elif run.returncode not in (0, None) and run.error is None:
                run.error = _go_exit_error(run.returncode)
            for stream in (proc.stdin,):
                try:
                    if stream is not None:
                        stream.close()
                except (OSError, ValueError):
                    pass
            self._finished.set()
            return run

    def _kill_quietly(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.kill()
            except OSError:
                pass


class PluginRunner:
    """Loads a plugin manifest (``<plugin_dir>/*.yml``) and runs its exec command.

    The plugin id is the manifest's file stem (as in Stash).  When the folder
    holds several yml files, the ones that are not plugin manifests (no
    ``name`` + ``exec``/``tasks``/``hooks`` mapping, e.g. a package ``index.yml``)
    are ignored; pass ``plugin_id`` when several manifests remain.
    """

    def __init__(
        self,
        plugin_dir: Any,
        python: str = sys.executable,
        env: Optional[Dict[str, Optional[str]]] = None,
        plugin_id: Optional[str] = None,
        cwd: Optional[str] = None,
    ) -> None:
        self.plugin_dir = str(Path(plugin_dir).resolve())
        self.python = python
        self.env = dict(env or {})
        self.cwd = cwd
        self.plugin_id, self.manifest_path, self.manifest = self._load_manifest(plugin_id)
        interface = self.manifest.get("interface") or "raw"
        self.interface = interface
        err_log = self.manifest.get("errLog")
        self.default_log_level = LEVEL_NAMES.get(str(err_log).lower(), "e") if err_log else "e"

    # ------------------------------------------------------------------ manifest
    def _load_manifest(self, plugin_id: Optional[str]) -> Tuple[str, str, Dict[str, Any]]:
        import yaml

        folder = Path(self.plugin_dir)
        if not folder.is_dir():
            raise PluginConfigError("plugin folder does not exist: %s" % folder)
        found = []
        for path in sorted(folder.glob("*.yml")):
            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(doc, dict) and "name" in doc and any(k in doc for k in ("exec", "tasks", "hooks")):
                found.append((path.stem, str(path), doc))
        if plugin_id is not None:
            found = [f for f in found if f[0].lower() == plugin_id.lower()]
        if not found:
            raise PluginConfigError(
                "no plugin manifest (a *.yml with name and exec) in %s%s"
                % (folder, "" if plugin_id is None else " with id %r" % plugin_id)
            )
        if len(found) > 1:
            raise PluginConfigError(
                "several plugin manifests in %s (%s): pass plugin_id"
                % (folder, ", ".join(f[0] for f in found))
            )
        return found[0]

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or self.plugin_id)

    @property
    def settings(self) -> Dict[str, Dict[str, Any]]:
        return dict(self.manifest.get("settings") or {})

    def _operations(self, key: str) -> List[Dict[str, Any]]:
        ops = self.manifest.get(key) or []
        return [op for op in ops if isinstance(op, dict) and op.get("name")]

    @property
    def tasks(self) -> Dict[str, Dict[str, Any]]:
        """{task name: defaultArgs}"""
        return {op["name"]: dict(op.get("defaultArgs") or {}) for op in self._operations("tasks")}

    @property
    def hooks(self) -> Dict[str, List[str]]:
        """{trigger (e.g. "Scene.Update.Post"): [hook names]}"""
        ret: Dict[str, List[str]] = {}
        for op in self._operations("hooks"):
            for trigger in op.get("triggeredBy") or []:
                ret.setdefault(str(trigger), []).append(op["name"])
        return ret

    def task_config(self, name: str) -> Dict[str, Any]:
        for op in self._operations("tasks"):
            if op["name"] == name:
                return op
        raise PluginConfigError("no task with name %s in plugin %s" % (name, self.name))

    def hook_configs(self, trigger: str) -> List[Dict[str, Any]]:
        return [op for op in self._operations("hooks") if trigger in (op.get("triggeredBy") or [])]

    # ------------------------------------------------------------------ process
    def command(self, operation: Optional[Dict[str, Any]] = None) -> List[str]:
        """The argv Stash would run: exec + the operation's execArgs, with python
        replaced by ``self.python`` and ``{pluginDir}`` by the plugin folder."""
        if self.interface != "raw":
            raise PluginConfigError(
                "plugin interface %r is not supported by the emulator (only raw)" % self.interface
            )
        cmd = [str(a) for a in (self.manifest.get("exec") or [])]
        if operation is not None:
            cmd += [str(a) for a in (operation.get("execArgs") or [])]
        if not cmd:
            raise PluginConfigError("empty exec value in plugin %s" % self.name)
        cmd = [a.replace("{pluginDir}", self.plugin_dir) for a in cmd]
        if Path(cmd[0]).name.lower() in PYTHON_NAMES:
            cmd[0] = self.python
        return cmd

    def environment(self) -> Dict[str, str]:
        """The plugin's environment: ours with ``self.env`` applied (the Stash process's own
        environment), plus what Stash adds for a Python plugin.

        Stash (pkg/plugin/raw.go, rawPluginTask.Start; pkg/python/env.go, AppendPythonPath) runs
        a manifest whose exec starts with exactly ``python`` or ``python3`` with PYTHONPATH set to
        the folder *above* the plugin's folder (``filepath.Dir(filepath.Dir(<manifest path>))``):
        the plugins folder for a plugin installed by hand, ``<plugins>/community`` for one
        installed from the Community source. A PYTHONPATH Stash itself has comes first.
        """
        env = dict(os.environ)
        for key, value in self.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(value)
        exec_cmd = [str(a) for a in (self.manifest.get("exec") or [])]
        if exec_cmd and exec_cmd[0] in ("python", "python3"):  # python.IsPythonCommand
            above = os.path.dirname(os.path.dirname(os.path.abspath(self.manifest_path)))
            current = env.get("PYTHONPATH")
            env["PYTHONPATH"] = above if current is None else "%s%s%s" % (current, os.pathsep, above)
        return env

    def start(
        self,
        args: Dict[str, Any],
        server_connection: Dict[str, Any],
        operation: Optional[Dict[str, Any]] = None,
        on_log: Optional[LogCallback] = None,
        on_progress: Optional[ProgressCallback] = None,
        cwd: Optional[str] = None,
    ) -> PluginHandle:
        return PluginHandle(
            self,
            args,
            server_connection,
            operation=operation,
            on_log=on_log,
            on_progress=on_progress,
            cwd=cwd,
        )

    def run(
        self,
        args: Dict[str, Any],
        server_connection: Dict[str, Any],
        timeout: Optional[float] = 120,
        operation: Optional[Dict[str, Any]] = None,
        on_log: Optional[LogCallback] = None,
        on_progress: Optional[ProgressCallback] = None,
        cwd: Optional[str] = None,
    ) -> PluginRun:
        handle = self.start(
            args, server_connection, operation=operation, on_log=on_log, on_progress=on_progress, cwd=cwd
        )
        return handle.wait(timeout)


__all__ = [
    "PluginRunner",
    "PluginRun",
    "PluginHandle",
    "PluginConfigError",
    "parse_plugin_output",
    "parse_log_line",
]
