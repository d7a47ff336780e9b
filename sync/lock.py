"""Cross-process file locks: fcntl on POSIX, msvcrt on Windows, behind one small class.

Why not the `filelock` package: it imports asyncio and costs tens of milliseconds per process,
several times a bare Python start, and the hook runs once per saved scene (see
docs/ARCHITECTURE.md, "Locking"). Both primitives used here are released by the operating system
when the holding process dies, SIGKILL included, so a crashed process never leaves a stale lock.
"""

from __future__ import annotations

import errno
import os
import time

# How a lock held by someone else answers: POSIX flock says EWOULDBLOCK (some systems EACCES);
# msvcrt.locking says EACCES, or EDEADLOCK. Any other error means the file system cannot lock.
_BUSY = frozenset(
    (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK, getattr(errno, "EDEADLOCK", errno.EDEADLK))
)


def _busy(exc: OSError) -> bool:
    return exc.errno in _BUSY


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError as exc:
            if _busy(exc):
                return False
            raise

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
        except OSError as exc:
            if _busy(exc):
                return False
            raise

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_blocking(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)


class LockTimeout(Exception):
    """The lock could not be taken within the time allowed."""


class LockRefused(OSError):
    """The file system holding the data folder does not support file locks (e.g. a network share
    mounted without locking). Waiting would never end and going on unlocked would risk the queue,
    so this says what to do instead."""

    def __init__(self, path: str, cause: OSError):
        folder = os.path.dirname(os.path.abspath(path))
        super().__init__(
            cause.errno,
            "the file system of %s refuses file locks (%s); set 'Data folder' to a "
            "folder on a local disk" % (folder, cause.strerror or cause),
        )


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
        except OSError as exc:
            os.close(fd)
            raise LockRefused(self.path, exc)
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
