"""Cross-process file locks: fcntl on POSIX, msvcrt on Windows, behind one small class.

Why not the `filelock` package: it imports asyncio and costs tens of milliseconds per process,
several times a bare Python start, and the hook runs once per saved scene (see
docs/ARCHITECTURE.md, "Locking"). Both primitives used here are released by the operating system
when the holding process dies, SIGKILL included, so a crashed process never leaves a stale lock.
"""
from __future__ import annotations

import os
import time

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    def _lock_blocking(fd: int) -> None:
        delay = 0.001
        while not _try_lock(fd):
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except (BlockingIOError, PermissionError):
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_blocking(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)


class LockTimeout(Exception):
    """The lock could not be taken within the time allowed."""


class FileLock:
    """An exclusive lock on `path` shared by every process (and thread) that opens it.

    `FileLock(path).acquire()` blocks; `acquire(timeout=0)` tries once; `acquire(timeout=s)`
    polls for up to `s` seconds. Use as a context manager for the blocking form.
    """

    def __init__(self, path: str):
        self.path = path
        self._fd = -1

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def acquire(self, timeout: float | None = None) -> bool:
        if self._fd >= 0:
            raise RuntimeError("lock already held by this object: " + os.path.basename(self.path))
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if timeout is None:
                _lock_blocking(fd)
            elif not _try_lock(fd):
                deadline = time.monotonic() + timeout
                delay = 0.001
                while True:
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        return False
                    time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
                    delay = min(delay * 2, 0.05)
                    if _try_lock(fd):
                        break
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
