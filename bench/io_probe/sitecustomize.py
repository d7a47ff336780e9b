"""Loaded (only in benchmarks) by every plexsync.py process the Stash emulator starts, through
PYTHONPATH: at exit it appends the bytes the process handed to write() calls (Linux
/proc/self/io `wchar`: files and pipes, not sockets) to the file named by PLEXSYNC_BENCH_IO.
Not part of the plugin; bench/sync.py uses it to measure what a drain writes to its data folder."""

import atexit
import os


def _report():
    target = os.environ.get("PLEXSYNC_BENCH_IO")
    if not target:
        return
    try:
        with open("/proc/self/io") as fh:
            fields = dict(line.split(":", 1) for line in fh.read().splitlines() if ":" in line)
        with open(target, "a") as out:
            out.write("%d %d\n" % (os.getpid(), int(fields["wchar"])))
    except (OSError, KeyError, ValueError):
        pass


atexit.register(_report)
