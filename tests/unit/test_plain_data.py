"""`plain_data`: the dataclass-like classes on the hook's path behave as dataclasses do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sync.jobs import Job
from sync.plain_data import Field, field_names, plain_data
from sync.queue import QueueSummary
from tests.conftest import ROOT, child_env


@plain_data(slots=True)
class Point:
    x: int
    y: int = 0
    tags: list = Field(factory=list)

    def __post_init__(self):
        self.x = int(self.x)


def test_fields_take_their_defaults_and_each_object_gets_its_own_list():
    a, b = Point("3"), Point(1, 2)
    a.tags.append("t")
    assert (a.x, a.y, a.tags) == (3, 0, ["t"]) and b.tags == []
    assert field_names(Point) == ("x", "y", "tags") and Point.__slots__ == ("x", "y", "tags")
    with pytest.raises(TypeError):
        Point()  # x has no default


def test_equality_and_repr_are_over_the_fields():
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(1, 3) and Point(1) != (1, 0, [])
    assert repr(Point(1)) == "Point(x=1, y=0, tags=[])"
    with pytest.raises(TypeError):
        hash(Point(1))  # mutable, as a dataclass with eq


def test_a_mutable_default_is_refused():
    with pytest.raises(TypeError, match="factory"):

        @plain_data
        class Bad:
            items: list = []


def test_a_job_record_keeps_its_keys_in_the_journals_order():
    job = Job("j1", 7, ["title", "tags", "title"])
    assert list(job.to_dict()) == [
        "id",
        "scene_id",
        "fields",
        "state",
        "source",
        "enqueued_at",
        "changed_at",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "lease_owner",
        "error_class",
        "error_message",
        "first_failure_at",
        "last_failure_at",
        "dead_at",
    ]
    assert job.scene_id == "7" and job.fields == ["tags", "title"] and job.copy() == job
    summary = QueueSummary()
    summary.dead_by_class["plex_timeout"] = 1
    assert QueueSummary().dead_by_class == {}


@plain_data
class Options:
    name: str
    size: int = 1
    seen: dict = Field(factory=dict)


def test_a_class_without_slots_checks_its_arguments_and_keeps_defaults_on_the_class():
    a, b = Options("a"), Options(name="b", size=3)
    a.seen["x"] = 1
    assert (a.size, b.size, b.seen, Options.size) == (1, 3, {}, 1) and a == Options("a", seen={"x": 1})
    for bad in (lambda: Options(), lambda: Options("a", name="b"), lambda: Options("a", colour="red")):
        with pytest.raises(TypeError):
            bad()


def test_the_hooks_modules_do_not_import_dataclasses():
    code = (
        "import sys, stashplugin.hook, stashplugin.settings as s, sync.queue; "
        "s.Settings.from_raw({'sync_tags': False}, strict=False); "
        "print([m for m in ('dataclasses', 'inspect') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=child_env(), capture_output=True, text=True
    )
    assert out.stdout.strip() == "[]", out.stderr
