"""The dependency bootstrap's pure parts, and the floors stated in one place each."""

from __future__ import annotations

import os
import re

import pytest

from stashplugin.dependencies import REQUIREMENTS, dep_manager_candidates, specs, version_tuple
from stashplugin.stash import stash_version_problem
from tests.conftest import ROOT


def requirement_lines(name: str) -> list:
    lines = open(os.path.join(ROOT, name), encoding="utf-8").read().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith(("#", "-"))]


def test_requirements_txt_lists_only_the_run_time_packages_at_the_bootstraps_floors():
    assert requirement_lines("requirements.txt") == specs()
    assert [dist for _m, dist, _f in REQUIREMENTS] == ["plexapi", "requests"]


def test_the_floor_tier_pins_exactly_the_floors():
    pins = dict(
        re.match(r"^([\w.-]+)==(\S+)$", line).groups() for line in requirement_lines("requirements-floor.txt")
    )
    assert pins == {dist: floor for _m, dist, floor in REQUIREMENTS}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("4.18.3", (4, 18, 3)),
        ("2.32.0.post1", (2, 32, 0)),
        ("0.27.0-12-gabc", (0, 27, 0)),
        ("1.2rc1", (1, 2)),
        ("", ()),
    ],
)
def test_version_tuple(text, expected):
    assert version_tuple(text) == expected


def test_python_dep_manager_is_looked_for_where_stash_installs_plugins(tmp_path):
    by_hand = str(tmp_path / "plugins" / "PlexSync")
    from_source = str(tmp_path / "plugins" / "plexsync-source" / "PlexSync")
    assert str(tmp_path / "plugins" / "community") in dep_manager_candidates(by_hand)
    assert str(tmp_path / "plugins") in dep_manager_candidates(by_hand)
    assert str(tmp_path / "plugins" / "community") in dep_manager_candidates(from_source)


@pytest.mark.parametrize(
    "version, refused",
    [
        ("v0.26.2", True),
        ("v0.24.0", True),
        ("v0.27.0", False),
        ("v0.28.1-12-gabc1234", False),
        ("v1.0.0", False),
        ("", False),
        (None, False),
        ("0.25.1", True),
    ],
)
def test_stash_older_than_0_27_is_refused_in_one_sentence(version, refused):
    problem = stash_version_problem(version)
    assert bool(problem) is refused
    if problem:
        assert "v0.27.0" in problem and str(version) in problem and problem.count(". ") == 0
