"""The code's shape, read from its source (ast; of our code only the tables of names are imported):
dependencies point one way, the hook stays on the standard library and `sync/`, the drain stays
small, functions fit on a screen, error classes and states are named, not spelled. See
docs/ARCHITECTURE.md, "Modules" and "Layers"."""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import sysconfig

from sync import breaker_file, jobs
from tests.conftest import ROOT
from worker import errors

# A module imports only from its own layer or below: sync/ <- stashplugin/ <- worker/ <- reconcile/
# <- plexsync.py.
LAYERS = {"sync": 0, "stashplugin": 1, "worker": 2, "reconcile": 3, "plexsync": 4}
PACKAGES = ("sync", "stashplugin", "worker", "reconcile")

# What a hook may load besides the standard library: sync/ and these. reconcile.schedule is the
# automatic reconciliation's due check (one small read); it is held to the same rule.
HOOK_MODULES = {
    "stashplugin",
    "stashplugin.hook",
    "stashplugin.log",
    "stashplugin.settings",
    "stashplugin.connection",
    "stashplugin.drain_request",
    "reconcile",
    "reconcile.schedule",
}
# The plexsync.py functions a hook runs (the entry imports what it needs lazily).
HOOK_FUNCTIONS = ("run_hook", "scene_fields", "enqueue", "run_entity_hook", "drain_wanted", "ensure_drain")
# Standard-library modules too slow for a hook to load at import time (bench/hook.py measures).
HEAVY_STDLIB = (
    "http",
    "ssl",
    "subprocess",
    "asyncio",
    "urllib.request",
    "email",
    "concurrent",
    "typing",
    "dataclasses",
)

WINDOWS_STDLIB = ("msvcrt", "winreg", "_winapi")  # not found on other systems, standard on Windows

MAX_FUNCTION_LINES = 50
MAX_DRAIN_LINES = 300


def production_files() -> dict:
    """module name -> path (relative to the plugin folder) of every module the plugin ships."""
    files = {"plexsync": "plexsync.py"}
    for package in PACKAGES:
        for name in sorted(os.listdir(os.path.join(ROOT, package))):
            if name.endswith(".py"):
                module = package if name == "__init__.py" else "%s.%s" % (package, name[:-3])
                files[module] = "%s/%s" % (package, name)
    return files


def parse(path: str) -> ast.Module:
    with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
        return ast.parse(fh.read(), path)


def imported(node: ast.AST, module: str) -> list:
    """(line, name) of every module an import statement under `node` loads, relative ones resolved.
    `from package import name` counts as package.name when that is a module of ours."""
    found = []
    for item in ast.walk(node):
        if isinstance(item, ast.Import):
            found += [(item.lineno, alias.name) for alias in item.names]
        elif isinstance(item, ast.ImportFrom):
            base = item.module or ""
            if item.level:
                parent = module.split(".")[: -item.level] if "." in module else []
                base = ".".join(parent + ([base] if base else []))
            found.append((item.lineno, base))
            found += [
                (item.lineno, "%s.%s" % (base, a.name)) for a in item.names if _ours("%s.%s" % (base, a.name))
            ]
    return found


def module_level(tree: ast.Module) -> ast.Module:
    """The statements that run at import (function and class bodies' imports run later)."""
    body = [s for s in tree.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for cls in (s for s in tree.body if isinstance(s, ast.ClassDef)):
        body.remove(cls)
        body += [s for s in cls.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return ast.Module(body=body, type_ignores=[])


def _ours(name: str) -> bool:
    return name in production_files()


def _layer(name: str):
    return LAYERS.get(name.split(".")[0])


def is_stdlib(name: str) -> bool:
    top = name.split(".")[0]
    if top in sys.builtin_module_names or top in WINDOWS_STDLIB or top == "__future__":
        return True
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.origin:
        return False
    if spec.origin in ("built-in", "frozen"):
        return True
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    origin = os.path.realpath(spec.origin)
    return origin.startswith(stdlib + os.sep) and "site-packages" not in origin


def test_no_module_imports_from_a_layer_above_it():
    offenders = []
    for module, path in production_files().items():
        own = _layer(module)
        for line, name in imported(parse(path), module):
            layer = _layer(name)
            if layer is not None and layer > own:
                offenders.append("%s:%d imports %s" % (path, line, name))
    assert not offenders, (
        "imports from a layer above (sync <- stashplugin <- worker <- reconcile <- plexsync):\n"
        + "\n".join(offenders)
    )


def hook_path() -> dict:
    """module -> (line, name) of what it imports at module level, for every module a hook loads:
    plexsync.py, the modules its hook functions import, stashplugin/hook.py, and what those
    import, transitively."""
    files = production_files()
    tree = parse(files["plexsync"])
    start = [name for _line, name in imported(module_level(tree), "plexsync")]
    for func in (s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name in HOOK_FUNCTIONS):
        start += [name for _line, name in imported(func, "plexsync")]
    seen, todo = {}, ["stashplugin.hook"] + [n for n in start if n in files]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen[module] = imported(module_level(parse(files[module])), module)
        todo += [name for _line, name in seen[module] if name in files]
        todo += [module.split(".")[0]]  # importing package.module runs package/__init__.py first
    return {"plexsync": [(0, n) for n in start], **seen}


def _hook_may_import(name: str) -> bool:
    if _layer(name) is not None:
        return name.split(".")[0] == "sync" or name in HOOK_MODULES
    return is_stdlib(name)


def test_the_hook_loads_only_the_standard_library_sync_and_its_own_modules():
    assert set(HOOK_FUNCTIONS) <= {
        s.name for s in parse("plexsync.py").body if isinstance(s, ast.FunctionDef)
    }
    offenders = []
    for module, names in sorted(hook_path().items()):
        for line, name in names:
            heavy = any(name == h or name.startswith(h + ".") for h in HEAVY_STDLIB)
            if not _hook_may_import(name) or heavy:
                offenders.append("%s:%d imports %s" % (module, line, name))
    assert not offenders, "the hook's path must stay standard library + sync/ (and cheap):\n" + "\n".join(
        offenders
    )


def test_nothing_the_hook_loads_imports_a_third_party_package_even_later():
    """A function of a module the hook loads may import lazily (a task calls it), but only the
    standard library and modules the hook could load anyway: requests or plexapi never."""
    files = production_files()
    offenders = []
    for module in sorted(set(hook_path()) - {"plexsync"}):
        for line, name in imported(parse(files[module]), module):
            if not _hook_may_import(name):
                offenders.append("%s:%d imports %s" % (files[module], line, name))
    assert not offenders, "modules on the hook's path import beyond it:\n" + "\n".join(offenders)


def test_the_drain_stays_a_loop_that_reads_in_one_sitting():
    with open(os.path.join(ROOT, "worker", "drain.py"), encoding="utf-8") as fh:
        lines = fh.read().count("\n")
    assert lines < MAX_DRAIN_LINES, "worker/drain.py has %d lines; keep it under %d" % (
        lines,
        MAX_DRAIN_LINES,
    )


def test_no_function_is_longer_than_a_screen():
    offenders = []
    for path in production_files().values():
        for node in ast.walk(parse(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    offenders.append("%s %s: %d lines" % (path, node.name, length))
    assert not offenders, "functions longer than %d lines:\n%s" % (MAX_FUNCTION_LINES, "\n".join(offenders))


# Names whose spelling is part of the data folder's format, each defined once as a constant: the
# error classes and what a drain does with each (worker/errors.py), the job states and nack's
# outcomes (sync/jobs.py), the breaker states (sync/breaker_file.py). Elsewhere a literal copy
# would let a typo silently become another class, so only these modules may spell them.
NAMED = frozenset(errors.ERROR_CLASSES) | {
    errors.RETRY,
    errors.STOP,
    errors.SETTINGS,
    errors.NOT_FOUND,
    errors.TRACE,
    jobs.PENDING,
    jobs.INFLIGHT,
    jobs.DEAD,
    jobs.RETRY,
    breaker_file.CLOSED,
    breaker_file.OPEN,
    breaker_file.HALF_OPEN,
}
NAME_OWNERS = ("worker.errors", "sync.jobs", "sync.breaker_file")


def error_class_takers(trees) -> dict:
    """callable name -> position of its `error_class` parameter, for every production function (a
    class's __init__ counts as the class) that takes one."""
    takers = {}
    for tree in trees:
        for cls in [None] + [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
            for func in (cls or tree).body:
                if not isinstance(func, ast.FunctionDef):
                    continue
                params = [a.arg for a in func.args.posonlyargs + func.args.args]
                if cls is not None:
                    params = params[1:]  # self
                if "error_class" in params:
                    name = cls.name if func.name == "__init__" else func.name
                    takers[name] = params.index("error_class")
    return takers


def _called(call: ast.Call) -> str:
    return getattr(call.func, "id", None) or getattr(call.func, "attr", "")


def spelled_names(tree: ast.AST, takers: dict) -> list:
    """(line, literal) of every string equal to a NAMED value that `tree` compares with something
    or passes as an error class: `x == "dead"`, `state in ("open", "half_open")`,
    `SyncFailure("no_file", ...)`, `queue.nack(job, "plex_timeout", ...)`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left] + node.comparators
            operands += [e for o in operands if isinstance(o, (ast.Tuple, ast.List, ast.Set)) for e in o.elts]
        elif isinstance(node, ast.Call) and _called(node) in takers:
            at = takers[_called(node)]
            operands = node.args[at : at + 1] + [k.value for k in node.keywords if k.arg == "error_class"]
        else:
            continue
        found += [
            (o.lineno, o.value)
            for o in operands
            if isinstance(o, ast.Constant) and isinstance(o.value, str) and o.value in NAMED
        ]
    return found


def test_error_classes_and_states_are_named_not_spelled():
    files = production_files()
    trees = {module: parse(path) for module, path in files.items()}
    takers = error_class_takers(trees.values())
    assert {"SyncFailure", "nack", "dead_letter", "likely_cause"} <= set(takers)
    offenders = [
        "%s:%d spells %r" % (files[module], line, text)
        for module, tree in sorted(trees.items())
        if module not in NAME_OWNERS
        for line, text in spelled_names(tree, takers)
    ]
    assert not offenders, (
        "use the constants of worker/errors.py, sync/jobs.py and sync/breaker_file.py, not their "
        "spelling:\n" + "\n".join(offenders)
    )


def test_a_spelled_error_class_or_state_is_found():
    planted = ast.parse(
        "if queue.nack(job, 'plex_timeout', 'slow') == 'dead': pass\n"
        "raise SyncFailure(error_class='no_file', detail='stop')\n"
        "ok = breaker.state in ('open', HALF_OPEN) or likely_cause(PLEX_UNREACHABLE, 'internal')\n"
        "log('dead', {'op': 'dead'}, f('plex_timeout'))\n"
    )
    takers = {"SyncFailure": 0, "nack": 1, "likely_cause": 0}
    assert sorted(spelled_names(planted, takers)) == [
        (1, "dead"),
        (1, "plex_timeout"),
        (2, "no_file"),
        (3, "open"),
    ]
