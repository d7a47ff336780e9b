"""The fake clock every test that needs time under its own control uses.

Production code takes `clock` (a function answering the time) and, where it waits, `sleep`;
a test passes a `FakeClock` for both: calling it answers the time, `advance` moves it, and
`sleep` moves it too and remembers how long each pause was.
"""

from __future__ import annotations


class FakeClock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t
        self.sleeps = []

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
