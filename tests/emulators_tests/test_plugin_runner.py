"""Self-tests of the plugin runner (Stash's raw plugin protocol), with the Echo fixture plugin."""

import json
import os
import sys

import pytest

from emulators.echo_plugin import echo_plugin_dir, write_echo_plugin
from emulators.plugin_runner import PluginConfigError, PluginRunner, parse_log_line, parse_plugin_output

ECHO_DIR = echo_plugin_dir()


def conn(tmp_path):
    return {
        "Scheme": "http",
        "Host": "127.0.0.1",
        "Port": 9,
        "SessionCookie": {"Name": "session", "Value": "x"},
        "Dir": str(tmp_path),
        "PluginDir": str(ECHO_DIR),
    }


@pytest.fixture
def runner(tmp_path):
    return PluginRunner(
        ECHO_DIR, env={"ECHO_RECORD_FILE": str(tmp_path / "records.jsonl"), "ECHO_SLEEP": "0"}
    )


def records(tmp_path):
    path = tmp_path / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_manifest_tasks_hooks_and_command(runner):
    assert runner.plugin_id == "Echo"
    assert runner.tasks["Echo Task"] == {"mode": "echo"}
    assert runner.tasks["Slow Task"] == {"mode": "echo", "sleep": 0.6}  # the manifest as written
    assert runner.hooks["Scene.Update.Post"] == ["Echo scene hook"]
    assert runner.hooks["Scene.Create.Post"] == ["Echo scene hook"]
    cmd = runner.command()
    assert cmd[0] == sys.executable  # python3 replaced
    assert cmd[1] == os.path.join(str(ECHO_DIR), "echo.py")  # {pluginDir} replaced
    with pytest.raises(PluginConfigError):
        runner.task_config("No Such Task")


def test_stdin_is_stash_input_and_stdout_json_is_parsed(runner, tmp_path):
    run = runner.run({"mode": "echo", "k": "v"}, conn(tmp_path), timeout=60)
    assert run.returncode == 0 and run.error is None and run.parsed
    assert run.output == {"args": {"mode": "echo", "k": "v"}}
    assert json.loads(run.stdout) == {"output": {"args": {"mode": "echo", "k": "v"}}}
    (rec,) = records(tmp_path)
    assert rec["stdin"] == {"server_connection": conn(tmp_path), "args": {"mode": "echo", "k": "v"}}
    assert run.wall_seconds > 0


def test_error_answer_raw_output_and_exit_status(runner, tmp_path):
    failed = runner.run({"mode": "fail"}, conn(tmp_path), timeout=60)
    assert failed.error == "echo failed on purpose" and failed.output is None and failed.returncode == 0
    raw = runner.run({"mode": "raw"}, conn(tmp_path), timeout=60)
    assert raw.parsed is False and raw.error is None and raw.output == "this is not json\n"
    exited = runner.run({"mode": "exit", "code": 3}, conn(tmp_path), timeout=60)
    assert exited.returncode == 3 and exited.error == "exit status 3" and exited.output == ""


def test_log_levels_and_progress(runner, tmp_path):
    run = runner.run({"mode": "echo"}, conn(tmp_path), timeout=60)
    assert run.logs == [(lvl, "echo echo level %s" % lvl) for lvl in "tdiwe"]
    assert run.progress == [0.0, 0.5, 1.0]
    plain = runner.run({"mode": "plain"}, conn(tmp_path), timeout=60)
    assert ("e", "plain stderr line") in plain.logs  # un-prefixed stderr: the errLog level (error)


def test_parse_helpers():
    assert parse_log_line("\x01i\x02 hello \r", "e") == ("i", "hello \r".strip())
    assert parse_log_line("\x01p\x020.25", "e") == ("p", "0.25")
    assert parse_log_line("\x01i\x02", "e") == ("e", "\x01i\x02")  # too short: raw line
    assert parse_log_line("\x01z\x02what", "w") == ("w", "\x01z\x02what")  # unknown level: raw line
    assert parse_plugin_output('{"output": 1}') == (1, None, True)
    assert parse_plugin_output('{"error": "bad"}\n') == (None, "bad", True)
    assert parse_plugin_output('log line\n{"output": 1}') == ('log line\n{"output": 1}', None, False)
    assert parse_plugin_output('[1]') == ("[1]", None, False)
    assert parse_plugin_output('') == ("", None, False)


def test_err_log_level_and_bad_progress(tmp_path):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "index.yml").write_text("- id: other\n  name: Other\n")  # a package index, not a manifest
    (plugin / "p.py").write_text(
        "import sys\nsys.stdin.read()\nsys.stderr.write('plain\\n\\x01p\\x02oops\\n')\nprint('{}')\n"
    )
    (plugin / "Quiet.yml").write_text("name: Quiet\nexec: [python3, '{pluginDir}/p.py']\nerrLog: info\n")
    run = PluginRunner(plugin).run({}, conn(tmp_path), timeout=60)
    assert run.logs == [("i", "plain"), ("e", "Error parsing progress value 'oops'")]
    assert run.progress == [] and run.output is None and run.error is None


def test_manifest_selection_errors(tmp_path):
    with pytest.raises(PluginConfigError, match="no plugin manifest"):
        PluginRunner(tmp_path)
    write_echo_plugin(tmp_path, "A")
    write_echo_plugin(tmp_path, "B")
    with pytest.raises(PluginConfigError, match="several plugin manifests"):
        PluginRunner(tmp_path)
    assert PluginRunner(tmp_path, plugin_id="b").plugin_id == "B"


def test_kill_is_sigkill(runner, tmp_path):
    handle = runner.start({"mode": "hang", "sleep": 60}, conn(tmp_path))
    assert handle.poll() is None
    handle.kill()
    run = handle.wait(30)
    assert run.killed and not run.timed_out
    if os.name == "posix":
        assert run.returncode == -9 and run.error == "signal: killed"


def test_child_holding_stdout_blocks_until_timeout(runner, tmp_path):
    # the plugin exits at once, but a grandchild inherited stdout: Stash reads to EOF, so it waits
    run = runner.run({"mode": "detach", "sleep": 6}, conn(tmp_path), timeout=2.5)
    assert run.timed_out and run.stdout_held_open
    assert run.returncode == 0
    assert "stdout stayed open" in run.error
    assert run.output == "detached"  # what was read is still parsed; the timeout is the error


def test_child_holding_stdout_delays_the_answer(runner, tmp_path):
    run = runner.run({"mode": "detach", "sleep": 1.0}, conn(tmp_path), timeout=30)
    assert not run.timed_out and run.error is None and run.output == "detached"
    assert run.wall_seconds >= 1.0  # blocked until the grandchild closed the pipe


def _env_plugin(folder, exec0="python3"):
    folder.mkdir(parents=True)
    (folder / "Env.yml").write_text(
        "name: Env\nexec:\n  - %s\n  - \"{pluginDir}/env.py\"\ninterface: raw\n" % exec0
    )
    (folder / "env.py").write_text(
        "import json, os, sys\nsys.stdin.read()\n"
        "print(json.dumps({'output': os.environ.get('PYTHONPATH')}))\n"
    )
    return folder


def test_python_plugins_get_the_folder_above_theirs_on_pythonpath(tmp_path):
    # Stash: pkg/plugin/raw.go (rawPluginTask.Start) + pkg/python/env.go (AppendPythonPath).
    plugin = _env_plugin(tmp_path / "plugins" / "community" / "Env")
    above = str((tmp_path / "plugins" / "community").resolve())
    bare = PluginRunner(plugin, env={"PYTHONPATH": None}).run({}, conn(tmp_path))
    assert bare.output == above
    theirs = PluginRunner(plugin, env={"PYTHONPATH": "/stash/own"}).run({}, conn(tmp_path))
    assert theirs.output == "/stash/own" + os.pathsep + above


def test_only_python_and_python3_commands_get_pythonpath(tmp_path):
    plugin = _env_plugin(tmp_path / "plugins" / "Env", exec0=sys.executable)
    run = PluginRunner(plugin, env={"PYTHONPATH": None}).run({}, conn(tmp_path))
    assert run.output is None  # python.IsPythonCommand is exactly "python" or "python3"
