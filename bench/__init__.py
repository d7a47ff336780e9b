"""Benchmarks: figures a user would notice, measured as ratios within one run.

Each module (`bench.hook`, `bench.queue`, `bench.sync`, `bench.reconcile`, `bench.outage`) has
`run() -> dict` and `main()`. `python -m bench` runs them all, prints one table and writes
docs/benchmarks.md. Nothing here asserts on time: these machines are noisy, so every timing is
a median of several runs, and every comparison is a ratio of figures taken in the same run.

The dict a module returns: `{"title": str, "rows": [row(...), ...], "notes": [str, ...]}`, where
each row is `{"figure": str, "value": number or str, "unit": str, "note": str}`. A module that
returns any other dict is shown key by key.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = os.environ.get("BENCH_QUICK") == "1"


def sized(full: int, quick: int) -> int:
    """How many repetitions: `full` in `make bench`, `quick` with BENCH_QUICK=1 (a smoke run)."""
    return quick if QUICK else full


def median(values) -> float:
    """The median of a non-empty sequence of numbers."""
    return float(statistics.median(list(values)))


def ratio(a, b):
    """a / b rounded for a table, or None when either side is missing or b is zero."""
    if a is None or b is None or not b:
        return None
    return round(float(a) / float(b), 2)


def ms(seconds) -> float:
    """Seconds -> milliseconds, rounded for a table."""
    return round(seconds * 1000.0, 2)


def row(
    figure: str, value, unit: str = "", note: str = "", target: str = "", baseline=None, met=None
) -> dict:
    """One line of the benchmark table. A row with a `target` (e.g. "<= 1.1") also goes to the
    targets table, with the `baseline` figure measured before the change and whether it is `met`."""
    out = {"figure": figure, "value": value, "unit": unit, "note": note}
    if target:
        out.update(target=target, baseline=baseline, met=met)
    return out


def scratch_dir(prefix: str) -> str:
    """A fresh folder in the system temp dir (where a real plugin's data folder would be on disk)."""
    return tempfile.mkdtemp(prefix="plexsync-bench-%s-" % prefix)


def machine_facts() -> dict:
    """What the figures ran on: they mean little without it."""
    import platform

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpus": os.cpu_count(),
        "python": "%s (%s)"
        % (platform.python_version(), sys.executable and os.path.basename(sys.executable)),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def fast_emulator_sockets() -> None:
    """Switch Nagle's algorithm off in both emulators' HTTP handlers.

    Python's BaseHTTPRequestHandler writes the headers and the body of an answer in two sends;
    with Nagle on, the body then waits for the client's delayed ACK (~40 ms on Linux) on many
    answers. Real Stash (Go's net/http) and real Plex set TCP_NODELAY, so without this the
    benchmarks would mostly measure that stall instead of PlexSync.
    """
    from emulators.plex import server as plex_server
    from emulators.stash import server as stash_server

    plex_server._Handler.disable_nagle_algorithm = True
    stash_server._Handler.disable_nagle_algorithm = True


def peak_rss_of_children_mb():
    """The largest peak resident memory of any finished child process, in MB (None if unknown).

    `resource` is POSIX only; on Windows the figure is simply not measured. Linux reports
    kilobytes and macOS bytes.
    """
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if not peak:
        return None
    divisor = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0
    return round(peak / divisor, 1)


def result_rows(result: dict) -> list:
    """A module's figures as rows, whatever shape its dict has (see the module docstring)."""
    rows = result.get("rows") if isinstance(result, dict) else None
    if isinstance(rows, list):
        out = []
        for item in rows:
            if isinstance(item, dict):
                out.append(
                    row(
                        str(item.get("figure", "?")),
                        item.get("value"),
                        str(item.get("unit") or ""),
                        str(item.get("note") or ""),
                        str(item.get("target") or ""),
                        item.get("baseline"),
                        item.get("met"),
                    )
                )
            elif isinstance(item, (list, tuple)) and item:
                padded = list(item) + ["", "", ""]
                out.append(row(str(padded[0]), padded[1], str(padded[2] or ""), str(padded[3] or "")))
        return out
    return [row(name, value) for name, value in _flatten(result or {})]


def _flatten(data: dict, prefix: str = ""):
    for key, value in data.items():
        if key in ("title", "notes", "rows"):
            continue
        name = "%s%s" % (prefix, key)
        if isinstance(value, dict):
            yield from _flatten(value, name + ".")
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
            for n, item in enumerate(value):
                label = item.get("label") or n
                rest = {k: v for k, v in item.items() if k != "label"}
                yield from _flatten(rest, "%s[%s]." % (name, label))
        else:
            yield name, value


def format_value(value) -> str:
    """Numbers with sensible precision; None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 100:
            return "%d" % value
        return "%.2f" % value if abs(value) < 100 else "%.0f" % value
    if isinstance(value, (list, tuple)):
        value = ", ".join(format_value(v) for v in value)
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def render_table(rows: list, markdown: bool = False) -> str:
    """Rows as an aligned plain-text table, or as a Markdown table.

    Rows carrying an "area" (set by `python -m bench`) get it as a first column.
    """
    with_area = any(r.get("area") for r in rows)
    header = (("area",) if with_area else ()) + ("figure", "value", "unit", "note")
    cells = [header] + [
        ((r.get("area", ""),) if with_area else ())
        + (r["figure"], format_value(r["value"]), r["unit"], r["note"])
        for r in rows
    ]
    value_col = header.index("value")
    if markdown:

        def esc(text):
            return str(text).replace("|", "\\|")

        align = ["---:" if i == value_col else "---" for i in range(len(header))]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
        lines += ["| " + " | ".join(esc(c) for c in cell) + " |" for cell in cells[1:]]
        return "\n".join(lines)
    widths = [max(len(str(cell[i])) for cell in cells) for i in range(len(header) - 1)]
    lines = []
    for n, cell in enumerate(cells):
        parts = [
            str(c).rjust(widths[i]) if i == value_col else str(c).ljust(widths[i])
            for i, c in enumerate(cell[:-1])
        ]
        lines.append("  ".join(parts + [str(cell[-1])]).rstrip())
        if n == 0:
            lines.append("-" * min(130, sum(widths) + 2 * len(widths) + max(len(str(c[-1])) for c in cells)))
    return "\n".join(lines)


def print_result(result: dict, stream=None) -> None:
    """Print one module's table and notes (for `python -m bench.<module>`)."""
    stream = stream or sys.stdout
    stream.write(render_table(result_rows(result)) + "\n")
    for note in result.get("notes") or ():
        stream.write("  - %s\n" % note)
    stream.flush()
