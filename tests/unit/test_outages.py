"""Outage history: recording, the 30-outage cap, and MTTR / MTBF / availability by hand."""

from __future__ import annotations

import os

import pytest

from stashplugin import log
from worker.outages import OutageHistory, plain_duration, render_summary, summarize


def history_of(tmp_path, spans, now=None):
    """Record outages given as (start, end) pairs; end None leaves the last one open."""
    history = OutageHistory(str(tmp_path))
    for start, end in spans:
        history.start("Plex unreachable (connection refused)", at=start)
        if end is not None:
            history.end(at=end)
    return history


# -- recording -----------------------------------------------------------------------------


def test_starting_twice_during_one_outage_records_one_outage(tmp_path):
    history = OutageHistory(str(tmp_path))
    first = history.start("Plex unreachable", at=100)
    again = history.start("Plex did not answer in time", at=130)
    assert again == first
    assert len(history.outages()) == 1
    assert history.current()["cause"] == "Plex unreachable"


def test_ending_an_outage_records_its_end_and_the_changes_that_waited(tmp_path):
    history = OutageHistory(str(tmp_path))
    history.start("Plex unreachable", at=100)
    history.note_job_affected()
    history.note_job_affected(4)
    assert history.current()["jobs_affected"] == 5
    ended = history.end(at=940)
    assert ended == {"start": 100, "end": 940, "cause": "Plex unreachable", "jobs_affected": 5}
    assert history.current() is None
    assert history.last() == ended


def test_jobs_affected_given_at_the_end_replaces_the_running_count(tmp_path):
    history = OutageHistory(str(tmp_path))
    history.start("Plex unreachable", at=100)
    history.note_job_affected()
    assert history.end(at=200, jobs_affected=37)["jobs_affected"] == 37


def test_nothing_to_end_or_count_when_plex_is_up(tmp_path):
    history = OutageHistory(str(tmp_path))
    assert history.end(at=5) is None
    assert history.note_job_affected() is None
    assert history.outages() == []
    assert history.last() is None and history.current() is None


def test_history_survives_a_new_process(tmp_path):
    history_of(tmp_path, [(100, 200), (300, None)])
    again = OutageHistory(str(tmp_path))
    assert [o["start"] for o in again.outages()] == [100, 300]
    assert again.current()["start"] == 300
    assert again.last()["end"] == 200


def test_only_the_last_30_outages_are_kept(tmp_path):
    history = history_of(tmp_path, [(i * 100, i * 100 + 10) for i in range(35)])
    kept = history.outages()
    assert len(kept) == 30
    assert kept[0]["start"] == 500 and kept[-1]["start"] == 3400
    summary = history.summary(now=3500)
    assert summary["count"] == 30
    assert summary["window_seconds"] == 3000  # from the oldest kept outage, not the dropped ones


def test_cause_never_keeps_the_token(tmp_path):
    token = "tok-outage-39c1d2"
    log.add_secret(token)
    history = OutageHistory(str(tmp_path))
    history.start("refused at http://plex/?X-Plex-Token=%s" % token, at=1)
    assert token not in (tmp_path / "outages.json").read_text()


def test_corrupt_history_starts_empty_with_a_warning_and_is_kept_aside(tmp_path, capsys):
    (tmp_path / "outages.json").write_text("[[[")
    history = OutageHistory(str(tmp_path))
    assert history.outages() == []
    assert "outages.json" in capsys.readouterr().err
    assert any(n.startswith("outages.json.corrupt-") for n in os.listdir(tmp_path))
    history.start("Plex unreachable", at=1)
    assert len(history.outages()) == 1


# -- arithmetic (every number below is worked out by hand) -----------------------------------


def test_no_outages_gives_no_figures():
    summary = summarize([], now=5000)
    assert summary["count"] == 0
    assert summary["window_seconds"] == 0 and summary["downtime_seconds"] == 0
    assert summary["mttr_seconds"] is None and summary["mtbf_seconds"] is None
    assert summary["availability"] is None
    assert render_summary(summary) == "No Plex outages recorded."


def test_one_ended_outage():
    # down 1000..1600 (600 s); window 1000..4000 (3000 s) -> availability 1 - 600/3000 = 0.8
    summary = summarize([{"start": 1000, "end": 1600, "cause": "x", "jobs_affected": 3}], now=4000)
    assert summary["window_seconds"] == 3000
    assert summary["downtime_seconds"] == 600
    assert summary["mttr_seconds"] == 600
    assert summary["mtbf_seconds"] is None
    assert summary["availability"] == pytest.approx(0.8)
    assert summary["outages"][0]["duration_seconds"] == 600 and not summary["ongoing"]


def test_one_outage_still_going_on():
    # down since 1000, now 1300: all of the window is downtime; nothing has ended, so no MTTR
    summary = summarize([{"start": 1000, "end": None, "cause": "x"}], now=1300)
    assert summary["downtime_seconds"] == 300
    assert summary["mttr_seconds"] is None
    assert summary["availability"] == 0.0
    assert summary["ongoing"] and summary["outages"][0]["ongoing"]


def test_three_outages():
    # durations 600, 1200, 300 -> MTTR 700
    # gaps 3600-600 = 3000 and 10000-4800 = 5200 -> MTBF 4100
    # downtime 2100 over the window 0..20000 -> availability 1 - 2100/20000 = 0.895
    outages = [{"start": 0, "end": 600}, {"start": 3600, "end": 4800}, {"start": 10000, "end": 10300}]
    summary = summarize(outages, now=20000)
    assert summary["mttr_seconds"] == 700
    assert summary["mtbf_seconds"] == 4100
    assert summary["downtime_seconds"] == 2100
    assert summary["availability"] == pytest.approx(0.895)


def test_an_ongoing_outage_counts_as_downtime_and_as_the_end_of_a_gap():
    # (0..600) then (1000.. now 1500): durations 600 and 500; MTTR only over the ended one = 600
    # gap 1000-600 = 400; downtime 1100 of 1500 -> availability 400/1500
    summary = summarize([{"start": 0, "end": 600}, {"start": 1000, "end": None}], now=1500)
    assert summary["mttr_seconds"] == 600
    assert summary["mtbf_seconds"] == 400
    assert summary["downtime_seconds"] == 1100
    assert summary["availability"] == pytest.approx(400 / 1500)


def test_summary_reads_like_a_sentence():
    outages = [
        {"start": 0, "end": 600, "cause": "Plex unreachable (connection refused)", "jobs_affected": 37},
        {"start": 3600, "end": 4800, "cause": "Plex is still starting", "jobs_affected": 1},
        {"start": 10000, "end": 10300, "cause": "", "jobs_affected": 0},
    ]
    text = render_summary(summarize(outages, now=20000))
    first = text.splitlines()[0]
    assert first == (
        "3 outages in the last 5.6 h; mean time to recovery 12 min; "
        "mean time between outages 68 min; availability 89.50%."
    )
    assert (
        "10 min" in text and "Plex unreachable (connection refused)" in text and "37 changes waited" in text
    )
    assert "1 change waited" in text and "cause unknown" in text
    assert "down now" not in text


def test_summary_says_when_plex_is_down_now():
    text = render_summary(summarize([{"start": 0, "end": None, "cause": "Plex unreachable"}], now=120))
    assert text.splitlines()[0] == "1 outage in the last 2 min; availability 0.00%."
    assert "going on for 2 min" in text
    assert "Plex is down now" in text


@pytest.mark.parametrize(
    "seconds,words",
    [(0, "0 s"), (45, "45 s"), (89, "89 s"), (840, "14 min"), (9000, "2.5 h"), (267840, "3.1 days")],
)
def test_durations_read_as_people_say_them(seconds, words):
    assert plain_duration(seconds) == words
