"""What `ekase-gateway status` shows (values) and how (plain text, JSON): pure, so that
tests render any state; `gateway.status` reads the spool, heartbeat and database into it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.faults import Active


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    state: str  # running | not responding | stopped | not running
    pid: int | None = None
    started_at: dt.datetime | None = None
    heartbeat_age_seconds: float | None = None
    fault: Active | None = None  # the fault of ours it is waiting out, if any
    host: str | None = None  # where it runs
    # The clients it holds: a fault of their own folders (client id -> kind, error, path).
    held: dict[str, dict[str, str | int | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClientStatus:
    client_id: str
    waiting: int  # complete files in in/
    # Files in in/ and test/ (trials) still under a temporary name, written to within the
    # hour; and those no session writes, or older than an hour.
    uploading: int
    stale_uploads: int
    in_progress: int  # claimed files in work/
    # From the database: None where it could not be read (`Status.database_error`).
    processed_today: int | None  # answered today, whatever the outcome
    rejected_today: int  # of those, rejected as a whole (shelved in rejected/)
    duplicates_today: int  # the same bytes uploaded again, answered with the original report
    undelivered: int | None  # answers owed to the client but not yet in out/
    last_answer: str | None
    last_answer_at: dt.datetime | None  # local treasury time
    trials_today: int = 0  # trial runs from test/ answered today (SPEC §15: not in the books)


@dataclass(frozen=True, slots=True)
class FileInProgress:
    client_id: str
    file: str  # the name the client gave it
    claim: str  # its name in work/
    # processing | claimed | stopped (its process is gone: the next run resumes) |
    # waiting (for the daemon's fault of ours to clear) | failed (a defect of ours: retried) |
    # booked (committed: its delivery and shelving to come) | answered (committed and its
    # answer delivered: its shelving to come)
    state: str
    done: int | None = None
    total: int | None = None  # as the file declares it (NbOfTxs)
    rate_per_second: float | None = None
    updated_seconds_ago: float | None = None
    attempts: int | None = None  # failed runs on a defect of ours (state failed)
    error: str | None = None  # the last of them


@dataclass(frozen=True, slots=True)
class Quarantined:
    client_id: str
    name: str  # in quarantine/<client>/
    error: str  # the last line of NAME.error.txt


@dataclass(frozen=True, slots=True)
class PendingSum:
    client_id: str
    iban: str
    currency: str
    count: int
    amount: str  # decimal, in `currency`


@dataclass(frozen=True, slots=True)
class AwaitingSignatures:
    """A batch waiting in awaiting/ for its signatories (SPEC §11)."""

    client_id: str
    file_id: int
    msg_id: str
    level: int
    signatures: int  # counted so far
    expires_on: dt.date  # RJCT DS24 at the start of this business day


@dataclass(frozen=True, slots=True)
class StaleUpload:
    client_id: str
    name: str
    size_bytes: int
    age_seconds: float
    area: str = "in"  # the client's folder it lies in: in, or test (trials)


@dataclass(frozen=True, slots=True)
class Status:
    day: dt.date
    now: dt.datetime  # local treasury time
    daemon: DaemonStatus  # the one running (of `daemons`), else the one that beat last
    clients: tuple[ClientStatus, ...]
    in_progress: tuple[FileInProgress, ...]
    pending: tuple[PendingSum, ...] | None  # None: the database could not be read
    stale_uploads: tuple[StaleUpload, ...]
    quarantined: tuple[Quarantined, ...] = ()
    database_error: str | None = None  # why the database could not be read (its values None)
    awaiting: tuple[AwaitingSignatures, ...] = ()
    daemons: tuple[DaemonStatus, ...] = ()  # every daemon on the spool (two may share it)
    # Client folders no configured client owns: (folder name, files waiting in in/ and test/)
    unconfigured: tuple[tuple[str, int], ...] = ()
    # SQLite: one writer at a time, a big file's run holding the turn until it commits.
    one_writer: bool = False


# -- showing (pure) -----------------------------------------------------------------------------

HEADERS = ("client", "waiting", "uploading", "stale uploads", "in progress", "processed today",
           "rejected today", "duplicates today", "trials today", "undelivered", "last answer")


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def _daemon_lines(status: Status) -> list[str]:
    if not status.daemons:
        return ["daemon: not running (no heartbeat in run/daemons/)"]
    lines = []
    for d in status.daemons:
        started = f", started {d.started_at:%Y-%m-%d %H:%M:%S %Z}" if d.started_at else ""
        age = f"last heartbeat {d.heartbeat_age_seconds:g} s ago"
        lines.append(f"daemon: {d.state} (pid {d.pid} on {d.host}{started}, {age})")
        lines += _fault_lines(d.fault)
        lines += _held_lines(d.held)
    return lines


def _held_lines(held: dict[str, dict[str, str | int | None]]) -> list[str]:
    return [
        f"CLIENT HELD {client_id}: its own folder refuses us ({fault.get('kind')}) at "
        f"{fault.get('folder') or fault.get('path')}: {fault.get('error')}; its answers wait in "
        "the outbox and its "
        "files in in/ and work/ (each shown below: booked or not); retried every pass, every "
        "other client goes on"
        for client_id, fault in sorted(held.items())
    ]


def _fault_lines(fault: Active | None) -> list[str]:
    if fault is None:
        return []
    return [
        f"FAULT of ours ({fault.kind}) since {fault.since:%Y-%m-%d %H:%M:%S %Z}, last "
        f"{fault.last:%H:%M:%S}: {fault.error}",
        f"  {fault.files_waiting} claimed file(s) wait (each is listed below: booked, its "
        f"answer still to deliver, or not booked); the daemon retries every "
        f"{fault.retry_seconds:g} s (backing off to once a minute) and goes on once the "
        "fault clears",
    ]


def _writing(status: Status, claimed: FileInProgress) -> FileInProgress | None:
    """On SQLite, the file whose run a claimed file waits behind, if one runs: another
    file deciding its payments holds the one write turn until it commits (README)."""
    if not status.one_writer or claimed.state != "claimed":
        return None
    return next(
        (f for f in status.in_progress if f.state == "processing" and f.claim != claimed.claim),
        None,
    )


def _progress_line(f: FileInProgress, behind: FileInProgress | None = None) -> str:
    if f.state == "claimed" and behind is not None:
        return (
            f"  {f.client_id}  {f.file}: claimed; waits for the database's write turn, which "
            f"{behind.client_id}'s {behind.file} holds until its run commits (SQLite: one "
            "writer at a time), or is being read"
        )
    if f.state == "claimed":
        return (
            f"  {f.client_id}  {f.file}: claimed; no payment count now (being read, its "
            "first payments decided, or its answer written)"
        )
    if f.state == "waiting":
        return (
            f"  {f.client_id}  {f.file}: waits for the fault of ours to clear (not booked, "
            "unanswered)"
        )
    if f.state == "booked":
        return (
            f"  {f.client_id}  {f.file}: booked and answered; the answer waits to be "
            "delivered and the file to be shelved (it is not run again)"
        )
    if f.state == "answered":
        return (
            f"  {f.client_id}  {f.file}: answered (its answer delivered); the file waits "
            "to be shelved (it is not run again)"
        )
    if f.state == "failed":
        return (
            f"  {f.client_id}  {f.file}: failed {f.attempts} time(s) on a defect of ours "
            f"({f.error}); tried again on the next pass, set aside in quarantine/ if it "
            "keeps failing"
        )
    total = f"{f.total:,}" if f.total is not None else "?"
    share = f" ({100 * (f.done or 0) // f.total}%)" if f.total else ""
    line = (
        f"  {f.client_id}  {f.file}: {f.done or 0:,} of {total} payments{share}, "
        f"{f.rate_per_second or 0:,.0f}/s, updated {f.updated_seconds_ago:g} s ago"
    )
    if f.state == "stopped":
        line += " — its process is gone; the next run processes the file again"
    return line


def _known(value: int | None) -> str:
    return "?" if value is None else str(value)


def render(status: Status) -> str:
    """Plain text for the terminal (pure: for tests too)."""
    lines = [f"today: {status.day.isoformat()}", *_daemon_lines(status)]
    if status.database_error is not None:
        lines.append(
            f"DATABASE unreachable: {status.database_error} (processed, undelivered, the "
            "last answer and pending are not shown)"
        )
    lines.append("")
    rows: list[Sequence[str]] = [HEADERS]
    unknown = "?" if status.database_error is not None else "-"  # (none yet: "-")
    for s in status.clients:
        last = unknown
        if s.last_answer is not None and s.last_answer_at is not None:
            last = f"{s.last_answer} at {s.last_answer_at:%Y-%m-%d %H:%M:%S}"
        rows.append((
            s.client_id, str(s.waiting), str(s.uploading), str(s.stale_uploads),
            str(s.in_progress), _known(s.processed_today), str(s.rejected_today),
            str(s.duplicates_today), str(s.trials_today), _known(s.undelivered), last,
        ))
    lines += _table(rows)
    sections = [
        ("in progress:", [_progress_line(f, _writing(status, f)) for f in status.in_progress]),
        ("pending payments:", [
            f"  {p.client_id}  {p.iban}  {p.count} payment(s)  {p.amount} {p.currency}"
            for p in status.pending or ()
        ]),
        ("awaiting signatures:", [
            f"  {a.client_id}  file {a.file_id} {a.msg_id}  {a.signatures} of {a.level} "
            f"signature(s), expires {a.expires_on.isoformat()}"
            for a in status.awaiting
        ]),
        ("stale temporary uploads (abandoned by a stopped server, or unfinished for over an "
         "hour; remove or rename):", [
            f"  {u.client_id}  {u.area}/{u.name}  {u.size_bytes:,} bytes, "
            f"{u.age_seconds / 3600:.1f} h old"
            for u in status.stale_uploads
        ]),
        ("client folders of no configured client (their files wait unanswered):", [
            f"  clients/{name}  {files} file(s) in in/ and test/"
            for name, files in status.unconfigured
        ]),
        ("quarantined (set aside for a person: the error is in NAME.error.txt):", [
            f"  {q.client_id}  quarantine/{q.client_id}/{q.name}: {q.error}"
            for q in status.quarantined
        ]),
    ]  # fmt: skip
    for title, body in sections:
        if body:
            lines += ["", title, *body]
    return "\n".join(lines) + "\n"


def to_json(status: Status) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(asdict(status))) + "\n"
