"""The table `make torture` ends with: per torture test, trials, kills, jobs, lost and corrupt.

Tests call `record(...)` with what they did and what they found *before* asserting, so a failing
run still shows its numbers; tests/reliability/conftest.py prints the table at the end of the
session when PLEXSYNC_TORTURE=1. Any lost or corrupt count also fails the test itself, which is
what makes `make torture` exit non-zero.
"""

from __future__ import annotations

RESULTS = []
COLUMNS = ("trials", "kills", "jobs", "lost", "corrupt")


def record(
    name: str, trials: int = 0, kills: int = 0, jobs: int = 0, lost: int = 0, corrupt: int = 0, note: str = ""
) -> None:
    """Remember one torture test's figures for the summary table."""
    RESULTS.append(
        {
            "name": name,
            "trials": trials,
            "kills": kills,
            "jobs": jobs,
            "lost": lost,
            "corrupt": corrupt,
            "note": note,
        }
    )


def table(results=None) -> str:
    """The figures as an aligned text table with a total line."""
    results = list(RESULTS if results is None else results)
    if not results:
        return "no torture test recorded figures"
    totals = {c: sum(r[c] for r in results) for c in COLUMNS}
    rows = [("test",) + COLUMNS + ("note",)]
    rows += [(r["name"],) + tuple(str(r[c]) for c in COLUMNS) + (r["note"],) for r in results]
    rows.append(("total",) + tuple(str(totals[c]) for c in COLUMNS) + ("",))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(COLUMNS) + 1)]
    lines = []
    for n, cells in enumerate(rows):
        text = "  ".join(
            [cells[0].ljust(widths[0])]
            + [c.rjust(widths[i + 1]) for i, c in enumerate(cells[1:-1])]
            + [cells[-1]]
        )
        lines.append(text.rstrip())
        if n == 0 or n == len(rows) - 2:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)
