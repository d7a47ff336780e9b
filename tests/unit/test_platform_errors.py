"""Errors a file system or Windows gives that POSIX on a local disk never does: each is handled like
its POSIX twin, or ends in one sentence saying what to do - never a wait that does not end."""

from __future__ import annotations

import errno
import io
import json
import os

import pytest

import plexsync
import sync.lock
from sync.drain_marker import DrainMarker
from sync.lock import FileLock, LockRefused
from sync.queue import FileQueue


def _refusing(*_args, **_kwargs):
    raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))


@pytest.fixture
def locks_refused(monkeypatch):
    """A share that refuses byte-range locks (e.g. SMB mounted with nobrl off, NFS without lockd)."""
    monkeypatch.setattr(sync.lock, "_try_lock", _refusing)
    monkeypatch.setattr(sync.lock, "_lock_blocking", _refusing)


def test_a_lock_the_file_system_refuses_is_an_error_not_a_busy_lock(tmp_path, locks_refused):
    for timeout in (None, 0, 1.0):
        with pytest.raises(LockRefused) as caught:
            FileLock(str(tmp_path / "x.lock")).acquire(timeout=timeout)
        assert "refuses file locks" in str(caught.value) and "Data folder" in str(caught.value)


def test_a_busy_lock_is_still_just_busy(tmp_path):
    first, second = FileLock(str(tmp_path / "x.lock")), FileLock(str(tmp_path / "x.lock"))
    assert first.acquire(timeout=0)
    assert second.acquire(timeout=0) is False
    assert second.acquire(timeout=0.05) is False
    first.release()
    assert second.acquire(timeout=0)
    second.release()


def test_the_hook_says_to_move_the_data_folder_when_locks_are_refused(tmp_path, locks_refused):
    plugin_dir = str(tmp_path)
    stdin = io.StringIO(
        json.dumps(
            {
                "server_connection": {
                    "Scheme": "http",
                    "Host": "127.0.0.1",
                    "Port": 9,
                    "PluginDir": plugin_dir,
                },
                "args": {
                    "hookContext": {
                        "id": 3,
                        "type": "Scene.Update.Post",
                        "input": {"title": "t"},
                        "inputFields": ["title"],
                    }
                },
            }
        )
    )
    stdout = io.StringIO()
    assert plexsync.main(stdin, stdout) == 1
    error = json.loads(stdout.getvalue())["error"]
    assert "refuses file locks" in error and "local disk" in error
    assert "make that folder writable" not in error


def test_a_marker_a_hook_holds_open_on_windows_is_cleared_as_idle(tmp_path, monkeypatch):
    marker = DrainMarker(str(tmp_path))
    marker.heartbeat()
    real_remove = os.remove

    def sharing_violation(path):
        if path == marker.path:
            raise PermissionError(errno.EACCES, "The process cannot access the file")
        real_remove(path)

    monkeypatch.setattr(os, "remove", sharing_violation)
    assert marker.clear_and_look(lambda: False) is False
    assert marker.read()["state"] == "idle" and not marker.is_fresh()


def test_the_queue_on_refused_locks_raises_the_clear_error(tmp_path, locks_refused):
    with pytest.raises(LockRefused):
        FileQueue(str(tmp_path)).enqueue("1", ["title"])


def test_error_text_is_redacted_before_it_is_cut_so_no_half_token_escapes():
    from stashplugin import log
    from worker.errors import classify

    token = "half-token-9f3a7c2e1b"
    log.add_secret(token)
    for cut_at in (190, 195, 199):
        failure = classify(RuntimeError("x" * cut_at + token))
        assert token[:6] not in failure.detail and token[:6] not in str(failure)
