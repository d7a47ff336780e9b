"""Runtime packages come through PythonDepManager when Stash has it installed next to PlexSync."""
from __future__ import annotations

import os


def test_tasks_ask_python_dep_manager_for_the_runtime_packages(world):
    plugins = os.path.dirname(world.plugin_dir)
    pdm = os.path.join(plugins, "PythonDepManager")
    os.makedirs(pdm)
    record = os.path.join(plugins, "pdm-calls.txt")
    with open(os.path.join(pdm, "__init__.py"), "w") as fh:
        fh.write("def ensure_import(*deps):\n"
                 "    with open(%r, 'a') as out:\n"
                 "        out.write(' '.join(deps) + '\\n')\n" % record)
    run = world.run_task("View Queue Status")
    assert run.error is None
    calls = open(record).read().split()
    assert any(c.startswith("plexapi") for c in calls) and any(c.startswith("requests") for c in calls)


def test_hooks_do_not_load_python_dep_manager(world):
    plugins = os.path.dirname(world.plugin_dir)
    pdm = os.path.join(plugins, "PythonDepManager")
    os.makedirs(pdm)
    with open(os.path.join(pdm, "__init__.py"), "w") as fh:
        fh.write("raise SystemExit('hooks must not import PythonDepManager')\n")
    sid, rk = world.add_scene("deps.mp4")
    os.makedirs(os.path.join(world.plugin_dir, "data"), exist_ok=True)
    with open(os.path.join(world.plugin_dir, "data", "settings_cache.json"), "w") as fh:
        fh.write('{"pause_sync": true}')
    world.edit(sid, title="x")
    assert world.stash.hook_runs[-1].output == "queued"


def test_missing_package_gives_the_pip_command(plugin_dir, tmp_path):
    from tests.emulators.plugin_runner import PluginRunner

    shim = tmp_path / "no-plexapi" / "plexapi"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('plexapi is not installed')\n")
    runner = PluginRunner(plugin_dir, env={"PYTHONPATH": str(shim.parent)})
    run = runner.run({"mode": "status"}, {"Scheme": "http", "Host": "127.0.0.1", "Port": 9, "PluginDir": plugin_dir})
    assert run.returncode != 0
    assert "plexapi" in run.error and "pip install -r requirements.txt" in run.error
    assert "PythonDepManager" in run.error
