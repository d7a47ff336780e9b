"""Stash's log protocol, secrets never written, paths optionally hidden, the log file capped."""

from __future__ import annotations

import os

import pytest

from stashplugin import log


@pytest.fixture
def stream():
    with log.capture() as out:
        yield out


def test_levels_and_progress_use_stash_protocol(stream):
    log.info("hello")
    log.warning("careful")
    log.error("broken")
    log.progress(0.5)
    log.progress(7)
    assert stream.getvalue().splitlines() == [
        "\x01i\x02hello",
        "\x01w\x02careful",
        "\x01e\x02broken",
        "\x01p\x020.5000",
        "\x01p\x021.0000",
    ]


def test_each_line_of_a_multiline_message_keeps_its_level(stream):
    log.info("a\nb")
    assert stream.getvalue() == "\x01i\x02a\n\x01i\x02b\n"


def test_debug_lines_only_with_debug_logging(stream):
    log.debug("hidden")
    assert stream.getvalue() == ""
    log.configure(debug=True)
    log.debug("shown")
    assert stream.getvalue() == "\x01i\x02[debug] shown\n"


def test_secrets_are_replaced_everywhere(stream):
    log.add_secret("tok/en+value")
    log.error("url http://plex/?X-Plex-Token=tok%2Fen%2Bvalue and raw tok/en+value")
    assert "tok" not in stream.getvalue() and stream.getvalue().count("***") == 2


def test_obfuscated_paths_get_stable_placeholders(stream):
    log.configure(obfuscate_paths=True)
    log.add_path("/data/videos/My Holiday/beach.mp4")
    log.info("Synced /data/videos/My Holiday/beach.mp4 and C:\\Videos\\x.mkv, not \"/mnt/a b/c d.mp4\"")
    log.info("again /data/videos/My Holiday/beach.mp4")
    first, second = stream.getvalue().splitlines()
    assert "videos" not in first and "Holiday" not in first and "Videos" not in first and "a b" not in first
    placeholder = first.split("Synced ")[1].split(" ")[0]
    assert placeholder.startswith("<path:") and placeholder.endswith(".mp4>") and placeholder in second


def test_background_log_file_is_capped_and_rotated(stream, tmp_path):
    path = str(tmp_path / "plexsync.log")
    log.configure(file_path=path, max_bytes=2000)
    for i in range(200):
        log.info("line %03d %s" % (i, "x" * 40))
    assert os.path.getsize(path) <= 2000 + 100
    assert os.path.exists(path + ".1") and os.path.exists(path + ".2") and not os.path.exists(path + ".3")


def test_capture_puts_the_stream_and_the_settings_back(capsys):
    with log.capture() as out:
        log.configure(debug=True)
        log.debug("inside")
    log.debug("hidden again")
    log.info("after")
    assert out.getvalue() == "\x01i\x02[debug] inside\n"
    assert capsys.readouterr().err == "\x01i\x02after\n"
