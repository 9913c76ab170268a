"""The pain.002 of a batch waiting for signatures (SPEC §11) lists every transaction, as
every pain.002 does (SPEC §6): PDNG while it waits, RJCT when it expired or was cancelled.
The batch is read for it as it arrives (`read`, during the authorisation stage); what
that first answer listed is kept with the waiting batch (`db.awaiting_listings`), and each
later answer while it waits lists it again from there (`answer`). An answer that says
something else of every transaction (expired, cancelled) reads the batch again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from gateway import announcements, reading
from gateway.environment import Environment
from gateway.inbound.facts import parse_date
from gateway.inbound.parsed import ParsedFile, ParsedHeader, ParsedPmtInf
from gateway.inbound.reader import Chunk, forget_before
from gateway.outbound import answers, first_report, pain002_v03
from gateway.outbound.first_report import FirstReport
from gateway.reasons import Reason
from gateway.statuses import GroupStatus, TxStatus

WAITS_INFO = "waiting for the signatures of the account's signatories"


def waits(expires_on: dt.date) -> str:
    """A waiting transaction's text (SPEC §6: why it waits, and until when): the day it
    is rejected DS24 unless signed before (`authorisation.expires_on`)."""
    return f"{WAITS_INFO}; rejected (DS24) on {expires_on} if not complete"


def read(
    events: Iterable[Any], guarded: Mapping[str, int], debited: dict[str, int],
    report: FirstReport, status: TxStatus = TxStatus.PDNG, reason: Reason | None = None,
    info: str = WAITS_INFO,
    eur: Counter[dt.date] | None = None,
) -> ParsedFile:
    """Read on to the summary, noting the accounts debited and writing each transaction
    into the report with `status` (nothing is decided: PDNG while it waits; RJCT DS24 or
    DS02 when it expired or was cancelled)."""
    pmts: dict[int, ParsedPmtInf] = {}
    requested: dict[int, dt.date | None] = {}  # each payment information's ReqdExctnDt
    said = pain002_v03.outcome(status, reason, info, None)
    for event in events:
        if isinstance(event, ParsedPmtInf):
            pmts[event.seq] = event
            report.payment_info(event.seq, answers.echoed_ctrl_sum(event.ctrl_sum))
            requested[event.seq] = parse_date(event.requested_date or "")
            iban = event.debtor_iban or ""
            debited[iban] = guarded.get(iban, 0)
        elif isinstance(event, Chunk):
            txs = event.transactions
            forget_before(txs[0].pmt_seq, pmts, requested)
            amounts = [f.amount_sent for f in event.facts]
            days = [requested[t.pmt_seq] for t in txs]
            if eur is not None:
                announcements.add_awaiting(eur, days, [t.currency for t in txs], amounts)
            report.add_chunk(
                [t.pmt_seq for t in txs],
                [pmts[t.pmt_seq].pmt_inf_id for t in txs],
                [status.value] * len(txs),
                [i + said + r for i, r in first_report.echoes(event, days)],
            )
        elif isinstance(event, ParsedFile):
            return event
    raise AssertionError("a read always ends with its summary")


def _list(
    env: Environment, path: Path, report: FirstReport, tx: tuple[TxStatus, Reason | None, str]
) -> bool:
    """Every transaction of the batch at `path` into `report` as `tx` says (status, reason,
    text); False when it cannot be read as a batch."""
    with reading.read(path, env.settings) as reader:
        reader.digest()
        events = iter(reader)
        if not isinstance(next(events), ParsedHeader):
            return False
        read(events, {}, {}, report, *tx)
    return True


def answer(
    env: Environment, conn: Connection, file_row: Any, local: dt.datetime, *,
    path: Path | None, status: GroupStatus, reason: pain002_v03.Reasons, info: str,
    tx: tuple[TxStatus, Reason | None, str], claim_name: str | None = None,
    msg_id: str | None = None, listing: bytes | None = None,
) -> tuple[int, str]:
    """A pain.002 about the batch of `file_row`: the group's `status`, `reason` and `info`,
    and every transaction as `tx` says (SPEC §6: a pain.002 lists every transaction) —
    from `listing` (`FirstReport.dump` of the batch's first answer, which listed them so),
    else read again from `path`; the group alone without a batch there to read. Its
    outbox id and name (`answers.issue`: `claim_name`, `msg_id`)."""
    tmp = env.spool.tmp()
    kept = FirstReport.load(tmp, listing) if listing is not None else None
    with contextlib.closing(kept or FirstReport(tmp)) as report:
        listed = kept is not None or (
            path is not None and path.exists() and _list(env, path, report, tx)
        )

        def render(msg_id: str) -> bytes:
            created = answers.echoed_created_at(file_row.msg_created_at)
            ctrl_sum = answers.echoed_ctrl_sum(file_row.ctrl_sum)
            if listed:
                return report.render(
                    msg_id=msg_id, created_at=local, bic=env.settings.bic,
                    original_msg_id=file_row.msg_id, original_msg_name=file_row.message,
                    original_created_at=created, original_nb_of_txs=file_row.nb_of_txs,
                    original_ctrl_sum=ctrl_sum, status=status, info=info, reason=reason,
                )  # fmt: skip
            return answers.build_group_only(
                status=status, msg_id=msg_id, created_at=local, bic=env.settings.bic,
                original_msg_id=file_row.msg_id, original_message=file_row.message,
                original_created_at=created, nb_of_txs=file_row.nb_of_txs, ctrl_sum=ctrl_sum,
                reason=reason, info=info,
            )  # fmt: skip

        return answers.issue(
            conn, client_id=file_row.client_id, file_id=file_row.id, local=local,
            render=render, claim_name=claim_name, msg_id=msg_id,
        )  # fmt: skip
