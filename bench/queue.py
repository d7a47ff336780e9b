"""Does a queue operation cost more when the queue is long? 0 vs 10,000 pending jobs.

One steady-state cycle per sample, on two queues side by side (cycles interleaved, so both see
the same machine noise): a hook-like process enqueues one change with a fresh `FileQueue` (the
hook opens the queue anew every time), then a long-lived drain-like `FileQueue` leases one job
and acks it. The backlog stays at its size (one in, one out). Each operation is timed apart;
"enqueue+ack" is what a change costs end to end, "lease+ack" what the drain pays per job.
Also timed: the first read of the journal by a new process (a drain starting on a backlog).
"""

from __future__ import annotations

import shutil
import time

from bench import median, ms, print_result, ratio, row, scratch_dir, sized

BACKLOG = 10000


def prefill(directory: str, count: int) -> None:
    """`count` pending jobs, written as the enqueue records a hook writes, in one append.

    One batched append instead of 10,000 fsync'd ones keeps the setup quick; the journal is the
    same as after 10,000 hooks.
    """
    from sync.queue import FileQueue, _new_id

    if not count:
        return
    queue = FileQueue(directory)
    now = time.time()
    records = [
        {
            "op": "enq",
            "id": _new_id(),
            "scene": "backlog-%d" % n,
            "fields": ["title"],
            "at": now,
            "src": "hook",
            "t": now,
        }
        for n in range(count)
    ]
    queue._append_only(records)


def _cold_read_seconds(directory: str, repeats: int) -> float:
    from sync.queue import FileQueue

    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        FileQueue(directory).summary()
        samples.append(time.perf_counter() - started)
    return median(samples)


def run(cycles: int | None = None) -> dict:
    """Median per-operation cost at 0 and at 10,000 pending jobs, and the ratios."""
    from sync.queue import FileQueue

    cycles = cycles or sized(300, 40)
    sizes = (0, BACKLOG)
    folders = {size: scratch_dir("queue-%d" % size) for size in sizes}
    try:
        for size in sizes:
            prefill(folders[size], size)
        cold = {size: _cold_read_seconds(folders[size], sized(5, 2)) for size in sizes}
        consumers = {size: FileQueue(folders[size]) for size in sizes}
        for consumer in consumers.values():
            consumer.summary()  # the drain has read the journal once, as a running drain has
        timings = {size: {"enqueue": [], "lease": [], "ack": []} for size in sizes}
        for n in range(cycles):
            for size in sizes if n % 2 else sizes[::-1]:
                t = timings[size]
                started = time.perf_counter()
                FileQueue(folders[size]).enqueue("bench-%d" % n, ["title"])
                enqueued = time.perf_counter()
                jobs = consumers[size].lease(1, 300.0, owner="bench")
                leased = time.perf_counter()
                for job in jobs:
                    consumers[size].ack(job)
                acked = time.perf_counter()
                t["enqueue"].append(enqueued - started)
                t["lease"].append(leased - enqueued)
                t["ack"].append(acked - leased)
        pending_after = {size: consumers[size].summary().pending for size in sizes}
    finally:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)

    med = {size: {op: median(v) for op, v in timings[size].items()} for size in sizes}
    pairs = {
        size: {
            "enqueue+ack": [e + a for e, a in zip(timings[size]["enqueue"], timings[size]["ack"])],
            "lease+ack": [le + a for le, a in zip(timings[size]["lease"], timings[size]["ack"])],
        }
        for size in sizes
    }
    both = {size: {k: median(v) for k, v in pairs[size].items()} for size in sizes}
    empty, full = sizes
    rows = [
        row("enqueue (new process view), 0 pending", ms(med[empty]["enqueue"]), "ms"),
        row("enqueue (new process view), 10,000 pending", ms(med[full]["enqueue"]), "ms"),
        row("enqueue+ack, 0 pending", ms(both[empty]["enqueue+ack"]), "ms"),
        row("enqueue+ack, 10,000 pending", ms(both[full]["enqueue+ack"]), "ms"),
        row(
            "enqueue+ack ratio 10,000 / 0",
            ratio(both[full]["enqueue+ack"], both[empty]["enqueue+ack"]),
            "x",
            "target <= 2",
        ),
        row("lease+ack, 0 pending", ms(both[empty]["lease+ack"]), "ms"),
        row("lease+ack, 10,000 pending", ms(both[full]["lease+ack"]), "ms"),
        row("lease+ack ratio 10,000 / 0", ratio(both[full]["lease+ack"], both[empty]["lease+ack"]), "x"),
        row(
            "lease alone ratio 10,000 / 0",
            ratio(med[full]["lease"], med[empty]["lease"]),
            "x",
            "%.2f vs %.2f ms" % (ms(med[full]["lease"]), ms(med[empty]["lease"])),
        ),
        row(
            "first read of the journal, 10,000 pending",
            ms(cold[full]),
            "ms",
            "a drain starting on a backlog (once per process); 0 pending: %.2f ms" % ms(cold[empty]),
        ),
    ]
    notes = [
        "%d cycles per queue (enqueue by a fresh FileQueue, lease 1 and ack by a long-lived one), "
        "interleaved; medians. Backlog after the run: %d and %d pending."
        % (cycles, pending_after[empty], pending_after[full]),
        "Every enqueue and ack is an fsync'd append, so on most disks fsync dominates both columns.",
    ]
    return {"title": "Queue cost vs backlog", "rows": rows, "notes": notes}


def main() -> None:
    """Run this benchmark alone and print its table."""
    print_result(run())


if __name__ == "__main__":
    main()
