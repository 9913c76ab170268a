"""The authorisation stage of a batch (SPEC §11), between reading and decide.

A batch debiting an account whose `authorisation` is 1–3 does not go on to decide when it
arrives: it is read through (file-level checks answer at once: FF01, DU01, AM18, AM10),
recorded as waiting (`gw_awaiting`, its file row PDNG), answered with a pain.002 that is
PDNG throughout and says what is missing, and shelved in `<spool>/awaiting/<client>/`.
Nothing is booked or reserved. Signatures arrive in containers (`signature_run.py`);
when they are enough, `execute` re-enters the ordinary stages (`newfile.new_file`) with
the waiting file, as if received at that moment. After `authorisation_days` business days
without completion `expire_due` answers it `RJCT DS24`.

Crash safety is the file run's: the waiting row, the signatures, the execution and every
answer commit in the one transaction of the file that caused them; the batch's file is
moved afterwards (`tidy`, repeatable: it moves whatever the database says is no longer
waiting).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from cryptography import x509
from sqlalchemy import Connection, delete, insert, select, update

from gateway import announcements, db, reading, record, waiting_report
from gateway.awaiting_shelf import CANCELLED as CANCELLED
from gateway.awaiting_shelf import CONTAINER as CONTAINER
from gateway.awaiting_shelf import EXECUTED as EXECUTED
from gateway.awaiting_shelf import EXPIRED as EXPIRED
from gateway.awaiting_shelf import WAITING as WAITING
from gateway.awaiting_shelf import awaiting_folder as awaiting_folder
from gateway.awaiting_shelf import tidy as tidy
from gateway.environment import Environment
from gateway.faults import Held
from gateway.inbound import pain001_v03, rules
from gateway.inbound.intake import Intake, take_in
from gateway.inbound.parsed import ParsedFile, ParsedHeader
from gateway.inbound.reader import Reading
from gateway.newfile import _header_values, new_file, read_to_summary, reject
from gateway.outbound import answers
from gateway.outbound.first_report import FirstReport
from gateway.outbound.outbox import PlainCopy
from gateway.reasons import Reason
from gateway.settings import ClientSettings
from gateway.shelving import Outcome
from gateway.signatories import (
    Authorisation,
    Signatory,
    Signer,
    authorise,
    required_level,
)
from gateway.signing_rights import Right
from gateway.statuses import GroupStatus, TxStatus
from ledger.calendar import booking_day, next_business_day
from ledger.tx import LedgerTx

log = structlog.get_logger("gateway.authorisation")



def levels_of(client: ClientSettings) -> dict[str, int]:
    """The client's accounts that need signatures, with their level."""
    return {a.iban: a.authorisation for a in client.accounts if a.authorisation > 0}


def signatories_of(client: ClientSettings) -> tuple[Signatory, ...]:
    """The client's signature sample card (certificates were checked readable at start)."""
    return tuple(
        Signatory(
            s.name,
            x509.load_pem_x509_certificate(s.certificate.read_bytes()),
            Right(s.right),
            s.valid_from,
            s.valid_until,
            frozenset(s.accounts),
        )
        for s in client.signatories
    )


def debited_text(debited: Mapping[str, int]) -> str:
    return ";".join(f"{iban}={level}" for iban, level in sorted(debited.items()))


def debited_of(text: str) -> dict[str, int]:
    pairs = (item.split("=") for item in text.split(";") if item)
    return {iban: int(level) for iban, level in pairs}


def expires_on(received: dt.datetime, business_days: int, eod_time: dt.time) -> dt.date:
    """The business day at whose start a batch received at `received` (local time)
    expires: after `business_days` business days for its signatories, the first being
    the day of receipt when that is a business day still open (before `eod_time`), else
    the next one — a batch of a Saturday night counts from Monday, not from Saturday."""
    day = booking_day(received, eod_time)
    for _ in range(business_days):
        day = next_business_day(day)
    return day


# -- admission ---------------------------------------------------------------------------------


def admit(
    env: Environment, tx: LedgerTx, intake: Intake, reader: Reading | None,
    signers: Sequence[Signer] = (), *, by_container: bool = False,
) -> Outcome | None:
    """Read the whole batch; answer a file invalid as a whole at once; record a batch
    debiting an account that needs signatures as waiting (PDNG, what is missing). None:
    it debits no such account, and runs as usual (read again by the caller).

    `by_container`: the batch came in a container (a submission of its own), whose
    verified signatures are `signers`. They count from the start, and the batch is not
    answered here: the container's run records them and answers what they did and what is
    still missing, in one pain.002 that lists the payments (the batch's first answer), or
    executes the batch at once when they complete the level (`signature_run`)."""
    if reader is None or intake.size > env.settings.max_file_bytes:
        return None
    guarded = levels_of(env.settings.client(intake.client_id))
    events = iter(reader)
    first = next(events)
    if isinstance(first, ParsedFile):
        assert first.failure is not None
        return reject(env, tx.conn, intake, first.failure, first)
    assert isinstance(first, ParsedHeader)
    # DU01 needs only the MsgId: a file that uses one again is read on for its summary (FF01
    # outranks DU01), nothing of it listed; `rules.file_finding` says which finding wins.
    used = record.msg_id_used(tx.conn, intake.client_id, first.msg_id)
    debited: dict[str, int] = {}
    eur: Counter[dt.date] = Counter()  # SPEC §14: known, hence announced, per day
    expires = expires_on(
        intake.received_local, env.settings.authorisation_days, env.settings.eod_time
    )
    with contextlib.closing(FirstReport(env.spool.tmp())) as report:
        if used:
            parsed = read_to_summary(events)
        else:
            parsed = waiting_report.read(
                events, guarded, debited, report, info=waiting_report.waits(expires), eur=eur
            )
        finding = rules.file_finding(parsed, used)
        if finding is not None:
            return reject(env, tx.conn, intake, finding, parsed)
        level = required_level(debited)
        if level == 0:
            return None
        client = env.settings.client(intake.client_id)
        auth = authorise(debited, signatories_of(client) if signers else (), signers)
        missing = auth.describe()  # "0 of 2 signatures; …"
        file_id = record.insert_file(
            tx.conn, intake, **_header_values(first), group_status=GroupStatus.PDNG.value,
            accepted_msg_id=first.msg_id, nb_of_txs=parsed.count,
            additional_info=missing[:1000],
        )  # fmt: skip
        name = None if auth.complete or by_container else _answer_waiting(
            env, tx.conn, intake, file_id, first, parsed, report, missing
        )  # fmt: skip
        listing = None if auth.complete else report.dump()  # what later answers list
    waiting = {
        "client_id": intake.client_id, "sha256": intake.sha256, "file_id": file_id,
        "level": level, "debited": debited_text(debited), "path": intake.claim_name,
        "state": WAITING, "received_at": intake.received, "expires_on": expires,
    }  # fmt: skip
    _record_waiting(tx.conn, waiting, eur, listing)
    return Outcome(
        file_id, "awaiting", GroupStatus.PDNG.value, info=missing, msg_id=first.msg_id,
        counts={TxStatus.PDNG.value: parsed.count}, answer=name,
    )  # fmt: skip


def _record_waiting(
    conn: Connection, row: dict[str, Any], eur: Counter[dt.date], listing: bytes | None
) -> None:
    """The waiting batch's row, the EUR it announces per day (SPEC §14) and what its
    answers list while it waits."""
    awaiting_id = conn.execute(
        db.awaiting.insert().values(**row).returning(db.awaiting.c.id)
    ).scalar_one()
    announcements.record_awaiting(conn, awaiting_id, eur)
    if listing is not None:
        conn.execute(insert(db.awaiting_listings).values(awaiting_id=awaiting_id, body=listing))


def _answer_waiting(
    env: Environment, conn: Connection, intake: Intake, file_id: int, header: ParsedHeader,
    parsed: ParsedFile, report: FirstReport, missing: str,
) -> str:
    """The waiting batch's first pain.002: every transaction PDNG, and what is missing."""
    local = intake.now_local
    outbox_id, name = answers.issue(
        conn, client_id=intake.client_id, file_id=file_id, local=local,
        render=lambda msg_id: report.render(
            msg_id=msg_id, created_at=local, bic=env.settings.bic,
            original_msg_id=header.msg_id, original_msg_name=pain001_v03.MESSAGE,
            original_created_at=answers.echoed_created_at(header.created_at),
            original_nb_of_txs=parsed.count,
            original_ctrl_sum=answers.echoed_ctrl_sum(header.ctrl_sum),
            status=GroupStatus.PDNG, info=missing,
        ),
    )  # fmt: skip
    record.update_file(conn, file_id, first_outbox_id=outbox_id)
    return name


def needs(level: int) -> str:
    """Who must sign a batch waiting for `level` signatures (SPEC §11)."""
    if level == 1:
        return "a signatory with either right must sign"
    if level == 2:
        return "a signatory with the first right and one with the second must sign"
    return (
        f"{level} signatories must sign, at least one with the first and one with the second right"
    )


# -- the waiting batch -------------------------------------------------------------------------


def authorise_waiting(
    env: Environment, row: Any, before: list[Signatory], signers: list[Signer],
    card: Sequence[Signatory] | None = None,
) -> Authorisation:
    """The level rule for the waiting batch of `row`: the signatories counted `before`
    and the new `signers` (SPEC §11), against the client's `card` (`signatories_of`,
    read here if not given)."""
    if card is None:
        card = signatories_of(env.settings.client(row.client_id))
    return authorise(debited_of(row.debited), card, signers, before)


def waiting_row(conn: Connection, client_id: str, sha256: str) -> Any:
    """The batch with these bytes, waiting or not, locked against a sibling daemon."""
    a = db.awaiting.c
    query = select(db.awaiting).where(a.client_id == client_id, a.sha256 == sha256)
    return conn.execute(query.with_for_update()).first()


def recovered_shelf(conn: Connection, known: Any) -> str | None:
    """Where a file recorded by a run that stopped before shelving it belongs, when the
    authorisation stage decides it: a batch still waiting goes to awaiting/, an expired
    one to rejected/, a signature container (kept whatever it did) to the archive unless
    it was unreadable."""
    if known.message == CONTAINER:
        return "rejected" if known.reason in ("DS0B", "FF01") else "archive"
    a = db.awaiting.c
    state = conn.execute(select(a.state).where(a.file_id == known.id)).scalar()
    return {WAITING: "awaiting", EXPIRED: "rejected", CANCELLED: "rejected"}.get(state or "")


def batch_path(env: Environment, row: Any) -> Path:
    """Where the waiting batch lies: in awaiting/, or still in work/ when it arrived in
    the same group as the signature that completes it."""
    name: str = row.path
    shelved = awaiting_folder(env, row.client_id) / name
    return shelved if shelved.exists() else env.spool.work(row.client_id) / name


def execute(
    env: Environment, tx: LedgerTx, row: Any, copies: dict[int, PlainCopy],
    completed: dt.datetime, ahead: Reading | None = None,
) -> Outcome:
    """Run the authorised batch through the ordinary stages, as if received when the
    signature that `completed` it was (`run_batch`; `ahead`: the reading of its file,
    already started), and end its waiting."""
    outcome = run_batch(env, tx, row, copies, completed, ahead)
    stop_waiting(tx.conn, row, EXECUTED, env.clock.now())
    log.info("batch.authorised", client=row.client_id, file_id=row.file_id,
             group_status=outcome.group_status)  # fmt: skip
    return outcome


def run_batch(
    env: Environment, tx: LedgerTx, row: Any, copies: dict[int, PlainCopy],
    completed: dt.datetime, ahead: Reading | None = None,
) -> Outcome:
    """The waiting batch of `row` through the ordinary stages: what `execute` does once it
    is authorised, and a trial of a container for it (SPEC §15). SPEC §11: it runs as if
    received at the moment it was complete — when the container that `completed` it was
    received — so a batch completed after a cut-off, or the evening before, waits for its
    day like any file received then (`decide.Clock.now_or_later`)."""
    file_row = tx.conn.execute(select(db.files).where(db.files.c.id == row.file_id)).one()
    path = batch_path(env, row)
    intake = take_in(
        client_id=row.client_id, path=path, original_name=file_row.original_name,
        receipt={"sftp_user": file_row.sftp_user, "source_ip": file_row.source_ip,
                 "key_fingerprint": file_row.key_fingerprint},
        sha256=row.sha256, size=file_row.size_bytes, arrived=completed, now=env.clock.now(),
        timezone=env.settings.timezone,
    )  # fmt: skip
    with ahead or reading.read(path, env.settings) as reader:
        reader.digest()
        return new_file(env, tx, intake, reader, copies, file_id=row.file_id)


# -- expiry ------------------------------------------------------------------------------------


def expire_due(
    env: Environment, now: dt.datetime, held: Held, *, only: Sequence[str] | None = None,
    but: Sequence[str] = (),
) -> int:
    """Answer every batch whose waiting time is over by `now` `RJCT DS24` (at the start of
    a business day, and on `scan --once`) — of the clients `only` names, or of every client
    `but` those — then move it out of awaiting/. A client whose awaiting/ refuses (an
    operator's chmod) is `held`: its batches expire once it is mended."""
    local = now.astimezone(env.settings.timezone)
    a = db.awaiting.c
    whose = [a.state == WAITING, a.expires_on <= local.date(), a.client_id.not_in(but)]
    if only is not None:
        whose.append(a.client_id.in_(only))
    with env.engine.connect() as conn:
        if conn.execute(select(a.id).where(*whose).limit(1)).first() is None:
            return 0
    expired: list[str] = []  # the clients of the batches expired
    with env.ledger.begin() as tx:
        rows = tx.conn.execute(select(db.awaiting).where(*whose).with_for_update()).all()
        for row in rows:
            inner = tx.savepoint()
            if held.confined(row.client_id, _expire, env, tx.conn, row, local):
                inner.commit()
                expired.append(row.client_id)
            else:
                inner.rollback()
    for client_id in sorted(set(expired)):
        held.confined(client_id, tidy, env, [client_id])
    return len(expired)


def expire_if_over(env: Environment, conn: Connection, row: Any, intake: Intake) -> str | None:
    """Expire the waiting batch of `row` (locked) now if its waiting time was over when
    `intake` (a signature container, a cancellation) was received — the expiry at that
    day's start had not run (the daemon down then, OpenSSH receiving meanwhile): such a
    signature changes nothing, such a cancellation finds it expired (SPEC §11). The name
    of its follow-up if it did."""
    if row.state != WAITING or intake.received_local.date() < row.expires_on:
        return None
    return _expire(env, conn, row, intake.now_local)


def _expire(env: Environment, conn: Connection, row: Any, local: dt.datetime) -> str:
    """RJCT DS24: every transaction of the batch (read again from awaiting/), the group too;
    the name of that follow-up (done: what `Held.confined` hands on)."""
    days = env.settings.authorisation_days
    info = (f"waited {days} business days for signatures without completion "
            f"(received {row.received_at.astimezone(local.tzinfo):%Y-%m-%d %H:%M})")  # fmt: skip
    name = close_unexecuted(
        env, conn, row, local, reason=Reason.DS24, info=info, state=EXPIRED,
        tx_info="waiting time for signatures expired",
    )  # fmt: skip
    log.info("batch.expired", client=row.client_id, file_id=row.file_id)
    return name


def close_unexecuted(
    env: Environment, conn: Connection, row: Any, local: dt.datetime, *, reason: Reason,
    info: str, state: str, tx_info: str,
) -> str:
    """End the waiting of the batch of `row` (locked, waiting) without executing it: its
    pain.002 reports every transaction and the group RJCT `reason` (DS24 when it expired,
    DS02 when the client cancelled it), and its row leaves the waiting `state`; the
    pain.002's name."""
    file_row = conn.execute(select(db.files).where(db.files.c.id == row.file_id)).one()
    outbox_id, name = waiting_report.answer(
        env, conn, file_row, local, path=batch_path(env, row), status=GroupStatus.RJCT,
        reason=reason, info=info, tx=(TxStatus.RJCT, reason, tx_info),
    )  # fmt: skip
    record.update_file(
        conn, row.file_id, group_status=GroupStatus.RJCT.value, reason=reason.value,
        additional_info=info[:1000], first_outbox_id=outbox_id,
    )  # fmt: skip
    stop_waiting(conn, row, state, local.astimezone(dt.UTC))
    return name


def stop_waiting(conn: Connection, row: Any, state: str, closed_at: dt.datetime) -> None:
    """The batch of `row` waits no more (`state`: executed, expired, cancelled): its
    listing, which only its answers while it waited used, goes."""
    a = db.awaiting.c
    conn.execute(update(db.awaiting).where(a.id == row.id).values(state=state, closed_at=closed_at))
    conn.execute(delete(db.awaiting_listings).where(db.awaiting_listings.c.awaiting_id == row.id))


def listing_of(conn: Connection, row: Any) -> bytes | None:
    """What the answers about the waiting batch of `row` list (`db.awaiting_listings`),
    or None for a batch that waited before listings were kept."""
    listings = db.awaiting_listings.c
    found = select(listings.body).where(listings.awaiting_id == row.id)
    return conn.execute(found).scalar()
