"""`ekase-gateway status` output: what an operator reads first."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from zoneinfo import ZoneInfo

from gateway.faults import Active
from gateway.status_report import (
    ClientStatus,
    DaemonStatus,
    FileInProgress,
    PendingSum,
    Quarantined,
    StaleUpload,
    Status,
    render,
    to_json,
)

RIGA = ZoneInfo("Europe/Riga")
DAY = dt.date(2026, 11, 25)
NOW = dt.datetime(2026, 11, 25, 10, 20, tzinfo=RIGA)


def _client(client_id: str, **overrides: object) -> ClientStatus:
    values: dict[str, object] = {
        "client_id": client_id, "waiting": 0, "uploading": 0, "stale_uploads": 0,
        "in_progress": 0, "processed_today": 0, "rejected_today": 0, "duplicates_today": 0,
        "undelivered": 0, "last_answer": None, "last_answer_at": None,
    }
    values.update(overrides)
    return ClientStatus(**values)  # type: ignore[arg-type]


def _status(*clients: ClientStatus, **overrides: object) -> Status:
    values: dict[str, object] = {
        "day": DAY, "now": NOW, "daemon": DaemonStatus("not running"), "clients": clients,
        "in_progress": (), "pending": (), "stale_uploads": (),
    }
    values.update(overrides)
    daemon = values["daemon"]
    assert isinstance(daemon, DaemonStatus)
    values.setdefault("daemons", (daemon,) if daemon.pid is not None else ())
    return Status(**values)  # type: ignore[arg-type]


def test_table_has_one_aligned_line_per_client_with_last_answer() -> None:
    """Each client is one line under a header, columns aligned, the last answer with its time."""
    text = render(
        _status(
            _client("iestade-a", waiting=2, in_progress=1, processed_today=14, rejected_today=3,
                    duplicates_today=1, trials_today=4,
                    last_answer="20261125T101501_pain.002.001.03_GW1.xml",
                    last_answer_at=dt.datetime(2026, 11, 25, 10, 15, 2, tzinfo=RIGA)),
            _client("b", uploading=1),
        )
    )
    lines = text.splitlines()
    assert lines[0] == "today: 2026-11-25"
    header, first, second = lines[3:6]
    assert header.split()[:2] == ["client", "waiting"]
    # The trials column (the README's "processed/rejected/duplicates/trials today") was
    # in the JSON only.
    assert "trials today" in header
    assert first.split()[:10] == ["iestade-a", "2", "0", "0", "1", "14", "3", "1", "4", "0"]
    assert first.endswith("20261125T101501_pain.002.001.03_GW1.xml at 2026-11-25 10:15:02")
    assert second.split() == ["b", "0", "1", "0", "0", "0", "0", "0", "0", "0", "-"]
    starts = [header.index("waiting"), header.index("processed today")]
    assert [first.index(" 2 ") + 1, first.index(" 14 ") + 1] == starts


def test_daemon_line_says_running_with_pid_and_heartbeat_age() -> None:
    """The operator sees at once whether the daemon runs, which process it is, and how
    recently it was alive; without a heartbeat it says it is not running."""
    running = DaemonStatus(
        "running", 4242, dt.datetime(2026, 11, 25, 7, 0, tzinfo=RIGA), heartbeat_age_seconds=2.5,
        host="node-a",
    )
    assert render(_status(daemon=running)).splitlines()[1] == (
        "daemon: running (pid 4242 on node-a, started 2026-11-25 07:00:00 EET, "
        "last heartbeat 2.5 s ago)"
    )
    assert render(_status()).splitlines()[1].startswith("daemon: not running")
    # two daemons on one spool (SPEC §9): a line each, the one stopped included
    stopped = DaemonStatus("stopped", 77, None, heartbeat_age_seconds=300.0, host="node-b")
    lines = render(_status(daemon=running, daemons=(running, stopped))).splitlines()
    assert lines[1].startswith("daemon: running (pid 4242 on node-a")
    assert lines[2] == "daemon: stopped (pid 77 on node-b, last heartbeat 300 s ago)"


def test_file_in_progress_shows_payments_done_of_total_and_rate() -> None:
    """A big file being processed shows how far it is, not just `in progress 1`."""
    text = render(
        _status(
            _client("a", in_progress=2),
            in_progress=(
                FileInProgress("a", "payroll.xml", "x__payroll.xml", "processing", done=120_000,
                               total=190_000, rate_per_second=45_123.4, updated_seconds_ago=1.0),
                FileInProgress("a", "small.xml", "y__small.xml", "claimed"),
            ),
        )
    )
    assert (
        "  a  payroll.xml: 120,000 of 190,000 payments (63%), 45,123/s, updated 1 s ago" in text
    )
    assert "  a  small.xml: claimed; no payment count now (being read, its first" in text


def test_a_file_claimed_behind_another_files_run_on_sqlite_says_so() -> None:
    """On SQLite one file's run holds the write turn until it commits: a small file of
    another client claimed meanwhile names the file it waits behind, rather than
    "no payment count now" for as long as the big one runs (tester F, stop 45); on
    PostgreSQL, where runs commit side by side, and with nothing running, it does not."""
    files = (
        FileInProgress("a", "big1.xml", "x__big1.xml", "processing", done=50_000,
                       total=200_000, rate_per_second=9_000.0, updated_seconds_ago=0.5),
        FileInProgress("b", "small.xml", "y__small.xml", "claimed"),
    )  # fmt: skip
    status = _status(_client("a", in_progress=1), _client("b", in_progress=1), in_progress=files)
    waits = "  b  small.xml: claimed; waits for the database's write turn, which a's big1.xml holds"
    assert waits in render(dataclasses.replace(status, one_writer=True))
    assert waits not in render(status)  # PostgreSQL
    alone = dataclasses.replace(status, one_writer=True, in_progress=files[1:])
    assert "  b  small.xml: claimed; no payment count now" in render(alone)


def test_pending_payments_per_account_are_counted_and_summed_in_decimal() -> None:
    """Waiting payments are listed per account with their count and sum in the currency."""
    text = render(
        _status(_client("a"), pending=(PendingSum("a", "LV00TREL1", "EUR", 3, "1500.49"),))
    )
    assert "pending payments:\n  a  LV00TREL1  3 payment(s)  1500.49 EUR" in text


def test_stale_temporary_uploads_are_named_with_their_age() -> None:
    """An upload that never finished is shown as such, not as `uploading` forever."""
    text = render(
        _status(
            _client("a", stale_uploads=1),
            stale_uploads=(StaleUpload("a", "big.xml.filepart", 1_048_576, 7200),),
        )
    )
    assert "  a  in/big.xml.filepart  1,048,576 bytes, 2.0 h old" in text


def test_json_output_is_machine_readable() -> None:
    """`status --json` gives scripts and monitoring the same numbers, with ISO timestamps."""
    at = dt.datetime(2026, 11, 25, 10, 15, 2, tzinfo=RIGA)
    data = json.loads(
        to_json(
            _status(
                _client("a", waiting=1, last_answer="x.xml", last_answer_at=at),
                pending=(PendingSum("a", "LV00TREL1", "EUR", 3, "1500.49"),),
            )
        )
    )
    assert data["day"] == "2026-11-25"
    assert data["clients"][0]["waiting"] == 1
    assert data["clients"][0]["last_answer_at"] == "2026-11-25T10:15:02+02:00"
    assert data["pending"] == [
        {"client_id": "a", "iban": "LV00TREL1", "currency": "EUR", "count": 3, "amount": "1500.49"}
    ]
    assert data["daemon"]["state"] == "not running"


def test_a_fault_of_ours_its_waiting_files_and_quarantine_are_shown() -> None:
    """While the daemon waits out a fault of ours, `status` says which fault, since when,
    how many files wait unanswered and how often it retries; a file waiting on it, one that
    failed on a defect of ours (and is retried), and one set aside in quarantine/ are each
    named with what the operator needs to act."""
    fault = Active(
        "disk_full", "OSError: [Errno 28] No space left on device",
        since=dt.datetime(2026, 11, 25, 10, 2, 3, tzinfo=RIGA),
        last=dt.datetime(2026, 11, 25, 10, 19, 0, tzinfo=RIGA), retry_seconds=60.0,
        files_waiting=2,
    )  # fmt: skip
    daemon = DaemonStatus("running", 7, NOW, heartbeat_age_seconds=1.0, fault=fault)
    text = render(
        _status(
            daemon=daemon,
            in_progress=(
                FileInProgress("iestade-a", "big.xml", "c1__big.xml", "waiting"),
                FileInProgress("iestade-a", "paid.xml", "c0__paid.xml", "booked"),
                FileInProgress("iestade-a", "sent.xml", "c4__sent.xml", "answered"),
                FileInProgress(
                    "iestade-a", "odd.xml", "c2__odd.xml", "failed", attempts=2,
                    error="KeyError: 'x'",
                ),
            ),
            quarantined=(Quarantined("iestade-b", "c3__bad.xml", "ValueError: boom"),),
        )
    )
    lines = text.splitlines()
    assert lines[2] == (
        "FAULT of ours (disk_full) since 2026-11-25 10:02:03 EET, last 10:19:00: "
        "OSError: [Errno 28] No space left on device"
    )
    assert "2 claimed file(s) wait (each is listed below" in lines[3]
    assert "every 60 s" in lines[3]
    waits = "  iestade-a  big.xml: waits for the fault of ours to clear (not booked, unanswered)"
    assert waits in lines
    booked = "  iestade-a  paid.xml: booked and answered; the answer waits to be delivered"
    assert any(line.startswith(booked) for line in lines)
    # answered already, its shelf refusing it: not said to wait for its delivery (a tester)
    sent = "  iestade-a  sent.xml: answered (its answer delivered); the file waits to be shelved"
    assert any(line.startswith(sent) for line in lines), lines
    assert any("odd.xml: failed 2 time(s) on a defect of ours (KeyError: 'x')" in x for x in lines)
    assert lines[-1] == "  iestade-b  quarantine/iestade-b/c3__bad.xml: ValueError: boom"
    shown = json.loads(to_json(_status(daemon=daemon)))
    assert shown["daemon"]["fault"]["kind"] == "disk_full"
    assert shown["daemon"]["fault"]["since"] == "2026-11-25T10:02:03+02:00"


def test_what_the_database_holds_is_unknown_not_zero_when_it_cannot_be_read() -> None:
    """With the database unreachable the counts it holds are shown as `?` and the JSON
    gives null, never 0 (a monitoring script read "undelivered 0"); the spool's own counts
    still show."""
    unknown = _client("a", waiting=2, processed_today=None, undelivered=None)
    status = _status(unknown, pending=None, database_error="connection refused")
    lines = render(status).splitlines()
    assert any(line.startswith("DATABASE unreachable: connection refused") for line in lines)
    row = next(line for line in lines if line.startswith("a "))
    # (the last answer too: "-" is a client never answered; an outside tester)
    assert row.split() == ["a", "2", "0", "0", "0", "?", "0", "0", "0", "?", "?"], row
    shown = json.loads(to_json(status))
    assert shown["pending"] is None
    assert shown["clients"][0]["undelivered"] is None and shown["clients"][0]["waiting"] == 2


def test_a_faults_times_are_shown_in_the_treasurys_time() -> None:
    """The fault's line said `since … UTC` beside every other time in local time (a
    tester): the daemon keeps its times in UTC; status shows them in the treasury's."""
    from gateway import status
    from gateway.progress import HeartbeatInfo, this_host

    utc = dt.datetime(2026, 11, 25, 8, 2, 3, tzinfo=dt.UTC)
    fault = Active("database", "OperationalError", since=utc, last=utc, retry_seconds=8.0,
                   files_waiting=0)  # fmt: skip
    beat = HeartbeatInfo(os.getpid(), utc, utc, fault=fault, host=this_host())
    shown = status._daemon(beat, utc, RIGA)
    assert shown.fault is not None
    assert f"{shown.fault.since:%H:%M:%S %Z}" == "10:02:03 EET"
    assert f"{shown.fault.last:%H:%M:%S %Z}" == "10:02:03 EET"
