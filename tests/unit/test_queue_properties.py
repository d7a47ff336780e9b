"""Property test: the file journal behaves exactly like the in-memory model, whatever the order of
operations and however many processes re-read it."""

from __future__ import annotations

import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sync.jobs import DEAD, INFLIGHT, PENDING
from sync.queue import FileQueue, MemoryQueue
from tests.clock import FakeClock

SCENES = st.sampled_from([str(i) for i in range(6)])
FIELDS = st.lists(st.sampled_from(["title", "details", "tag_ids", "studio_id"]), min_size=1, max_size=3)


class QueueMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.clock = FakeClock()
        self.model = MemoryQueue(clock=self.clock)
        self.real = FileQueue(self.dir, clock=self.clock)
        self.real.COMPACT_MIN_RECORDS = 15  # compact often to exercise it
        self.held = []

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(scene=SCENES, fields=FIELDS)
    def enqueue(self, scene, fields):
        self.clock.t += 1
        # Both implementations must draw the same ids for equality checks: compare by scene.
        self.model.enqueue(scene, fields)
        self.real.enqueue(scene, fields)

    @rule(n=st.integers(1, 4))
    def lease(self, n):
        a = self.model.lease(n, 30)
        b = self.real.lease(n, 30)
        assert [j.scene_id for j in a] == [j.scene_id for j in b]
        self.held.extend(zip(a, b))

    @precondition(lambda self: self.held)
    @rule(i=st.integers(0, 100), outcome=st.sampled_from(["ack", "retry", "dead"]))
    def finish(self, i, outcome):
        a, b = self.held.pop(i % len(self.held))
        if outcome == "ack":
            self.model.ack(a)
            self.real.ack(b)
        else:
            ra = self.model.nack(
                a, "plex_timeout", "x", max_retries=3, permanent=outcome == "dead", retry_at=self.clock.t + 10
            )
            rb = self.real.nack(
                b, "plex_timeout", "x", max_retries=3, permanent=outcome == "dead", retry_at=self.clock.t + 10
            )
            assert ra == rb

    @rule(seconds=st.sampled_from([5, 15, 31]))
    def time_passes(self, seconds):
        self.clock.t += seconds

    @rule()
    def requeue_all_dead(self):
        ids_a = [j.id for j in self.model.jobs(DEAD)]
        ids_b = [j.id for j in self.real.jobs(DEAD)]
        assert self.model.requeue(ids_a) == self.real.requeue(ids_b)

    @rule()
    def another_process_reads(self):
        fresh = FileQueue(self.dir, clock=self.clock)
        assert _view(fresh) == _view(self.real)

    @invariant()
    def same_contents(self):
        assert _view(self.model) == _view(self.real)

    @invariant()
    def at_most_one_pending_and_one_dead_per_scene(self):
        jobs = self.real.jobs()
        for state in (PENDING, DEAD):
            scenes = [j.scene_id for j in jobs if j.state == state]
            assert len(scenes) == len(set(scenes))
        assert all(j.state in (PENDING, INFLIGHT, DEAD) for j in jobs)


def _view(q):
    return sorted((j.scene_id, j.state, tuple(j.fields), j.attempts, j.error_class) for j in q.jobs())


TestQueueMachine = QueueMachine.TestCase
TestQueueMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
