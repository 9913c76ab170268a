"""Cancelling a batch still waiting for signatures (SPEC §11, §15), for `cancel_run`.

A batch waiting for signatures has no payment rows yet: nothing of it was decided. A
camt.055 naming it — by its original MsgId, by a payment information or by transactions —
is matched against the batch's own bytes (read again from awaiting/), and, when it
covers the whole batch, cancels it: the batch stops waiting (`gw_awaiting` state
`annulled`), never executes, and its file gets a follow-up pain.002 reporting every
transaction `RJCT DS02` (`authorisation.close_unexecuted`, the path expiry's DS24 takes).

Signatures are given to whole batches (SPEC §11), so only a whole batch can be
cancelled before it is signed: a request naming only some of its payments is refused,
every item `RJCR AGNT` with `PARTIAL` saying so — cancelling the rest of a batch that
its signatories would then sign as something it no longer is, or cancelling more than
the client asked, would both be worse than a clear refusal. One naming every payment
of it cancels it, whatever else it names: an unknown payment beside them is `NOOR` as
anywhere (the answer `PACR`), and does not undo what was asked of the batch's own.

The batch's waiting row is read `FOR UPDATE` and must still say `waiting`: a signature
run that completes the batch takes the same row lock (`authorisation.waiting_row`), so
of a cancellation and the last signature arriving together exactly one happens. A
cancellation that waited for the execution finds the batch no longer waiting and goes
on to its payments like any (`cancel_run`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Connection, select

from gateway import authorisation, cancel_match, db, reading
from gateway.environment import Environment
from gateway.inbound.cancellation import (
    OriginalGroup,
    PaymentInfoCancellation,
    TransactionCancellation,
    Underlying,
)
from gateway.inbound.intake import Intake
from gateway.inbound.parsed import ParsedPmtInf
from gateway.inbound.reader import Chunk
from gateway.outbound.resolution import (
    DEFAULT_INFO,
    GroupResolution,
    PaymentInfoResolution,
    TxResolution,
    UnderlyingResolution,
)
from gateway.pull_codes import CancellationReason, CancellationStatus
from gateway.reasons import Reason
from ledger.currency import AmountError, to_minor

log = structlog.get_logger("gateway.authorisation")

_ACCR, _RJCR = CancellationStatus.ACCR, CancellationStatus.RJCR
_NOOR, _AGNT = CancellationReason.NOOR, CancellationReason.AGNT

PARTIAL = (
    "the batch {msg_id} is waiting for signatures and is signed and cancelled only as a "
    "whole: name the batch (or all its payments) to cancel it"
)
CLOSED = {
    authorisation.CANCELLED: "the batch was already cancelled before it was signed",
    authorisation.EXPIRED: "the batch expired waiting for signatures (DS24), never executed",
}


@dataclass(frozen=True, slots=True)
class WaitingTx:
    pmt_inf_id: str
    end_to_end_id: str
    instr_id: str | None
    amount_minor: int | None
    currency: str | None
    requested_date: dt.date | None
    debtor_iban: str | None  # its payment information's


@dataclass
class Held:
    """A batch that waited for signatures, its row locked, its transactions read."""

    row: Any
    msg_id: str
    txs: list[WaitingTx]
    cancelled: bool = False


@dataclass
class Waiting:
    """The client's batches waiting for signatures, as one cancellation request meets them."""

    env: Environment
    conn: Connection
    intake: Intake  # the request's: its client, and when it was received
    request_msg_id: str
    held: dict[int, Held | None] = field(default_factory=dict)  # by gw_awaiting id
    txs_read: dict[int, list[WaitingTx]] = field(default_factory=dict)  # the same, unlocked
    expired: list[str] = field(default_factory=list)  # follow-ups of batches it expired

    @property
    def client_id(self) -> str:
        return self.intake.client_id

    def underlying(
        self,
        item: Underlying,
        ordinary: Callable[[PaymentInfoCancellation], PaymentInfoResolution],
    ) -> UnderlyingResolution | None:
        """The answer for `item` when it names a batch that waited for signatures (and
        was not executed); None otherwise (the ordinary path answers it)."""
        group = item.group
        shared = group.group if group is not None else None
        if group is not None:
            held = self._find(group.group, None)
            if held is None:
                return None
            echo = GroupResolution(original_msg_id=group.group.msg_id,
                                   original_msg_name=group.group.msg_name,
                                   cancellation_id=group.cancellation_id,
                                   whole=group.whole)  # fmt: skip
            closed = self._closed(held)
            if closed is not None and group.whole:
                echo = replace(echo, status=_RJCR, reason=_AGNT, additional_info=closed)
                return UnderlyingResolution(group=echo)
            if group.whole:
                infos = self._whole(held)
                if not infos:  # its bytes are gone: cancelled as a whole all the same
                    return UnderlyingResolution(group=replace(echo, status=_ACCR))
                return UnderlyingResolution(group=echo, payment_infos=infos)
            infos = self._items(held, item.payment_infos, shared)
            return UnderlyingResolution(group=echo, payment_infos=infos)
        found = [self._find(p.group, p.pmt_inf_id) for p in item.payment_infos]
        if not any(found):
            return None
        by_batch: dict[int, list[PaymentInfoCancellation]] = {}
        for p, held in zip(item.payment_infos, found, strict=True):
            if held is not None:
                by_batch.setdefault(held.row.id, []).append(p)
        answered: dict[int, PaymentInfoResolution] = {}
        for batch_id, items in by_batch.items():
            batch = self.held[batch_id]
            assert batch is not None
            for p, answer in zip(items, self._items(batch, tuple(items), None), strict=True):
                answered[id(p)] = answer
        infos = tuple(answered.get(id(p)) or ordinary(p) for p in item.payment_infos)
        return UnderlyingResolution(payment_infos=infos)

    def close(self, local: dt.datetime) -> list[str]:
        """End the waiting of each batch this request cancelled; the follow-ups' names
        (with those of the batches it found expired)."""
        names = list(self.expired)
        for held in self.held.values():
            if held is None or not held.cancelled:
                continue
            names.append(authorisation.close_unexecuted(
                self.env, self.conn, held.row, local, reason=Reason.DS02,
                info=f"cancelled by {self.request_msg_id} before it was signed"[:1000],
                state=authorisation.CANCELLED, tx_info=f"cancelled by {self.request_msg_id}",
            ))  # fmt: skip
            log.info("batch.cancelled", client=self.client_id, file_id=held.row.file_id,
                     by=self.request_msg_id)  # fmt: skip
        return names

    # -- finding the batch -------------------------------------------------------------------

    def _find(self, group: OriginalGroup | None, pmt_inf_id: str | None) -> Held | None:
        """The client's batch not executed after waiting for signatures, by the original
        group named (`original_named`) or, without one, the one waiting batch with a
        payment information of that id; only the batch found is locked."""
        a, f = db.awaiting.c, db.files.c
        query = (
            select(db.awaiting, f.accepted_msg_id)
            .join(db.files, f.id == a.file_id)
            .where(a.client_id == self.client_id, a.state != authorisation.EXECUTED)
        )
        if group is not None:
            query = query.where(original_named(group))
        candidates = [
            row
            for row in self.conn.execute(query.order_by(a.id)).all()
            if pmt_inf_id is None or any(t.pmt_inf_id == pmt_inf_id for t in self._txs(row))
        ]
        if len(candidates) != 1:
            return None
        return self._hold(candidates[0])

    def _hold(self, found: Any) -> Held | None:
        """The batch `found`, its row locked and read again (None: executed meanwhile)."""
        if found.id not in self.held:
            row = self._locked(found.id)
            expired = row and authorisation.expire_if_over(self.env, self.conn, row, self.intake)
            if expired:  # its waiting time was over when the request came (SPEC §11)
                self.expired.append(expired)
                row = self._locked(found.id)
            held = None
            if row is not None:
                txs = self._txs(found) if row.state == authorisation.WAITING else []
                held = Held(row, str(found.accepted_msg_id), txs)
            self.held[found.id] = held
        return self.held[found.id]

    def _locked(self, batch_id: int) -> Any:
        a = db.awaiting.c
        return self.conn.execute(
            select(db.awaiting)
            .where(a.id == batch_id, a.state != authorisation.EXECUTED)
            .with_for_update()
        ).first()

    def _txs(self, row: Any) -> list[WaitingTx]:
        """The transactions of the waiting batch of `row`, read from its bytes once."""
        if row.id not in self.txs_read:
            self.txs_read[row.id] = self._read(row)
        return self.txs_read[row.id]

    def _read(self, row: Any) -> list[WaitingTx]:
        path = authorisation.batch_path(self.env, row)
        if row.state != authorisation.WAITING or not path.exists():
            return []
        txs: list[WaitingTx] = []
        pmts: dict[int, ParsedPmtInf] = {}
        with reading.read(path, self.env.settings) as reader:
            reader.digest()
            for event in reader:
                if isinstance(event, ParsedPmtInf):
                    pmts[event.seq] = event
                elif isinstance(event, Chunk):
                    txs += [_waiting_tx(pmts[t.pmt_seq], t) for t in event.transactions]
        return txs

    # -- answering ---------------------------------------------------------------------------

    def _whole(self, held: Held) -> tuple[PaymentInfoResolution, ...]:
        """Every payment of the waiting batch, cancelled with it."""
        held.cancelled = True
        ids = list(dict.fromkeys(t.pmt_inf_id for t in held.txs))
        return tuple(
            PaymentInfoResolution(pmt_inf_id=pid, transactions=tuple(
                _answer(t, None, None) for t in held.txs if t.pmt_inf_id == pid))
            for pid in ids
        )  # fmt: skip

    def _items(
        self, held: Held, items: tuple[PaymentInfoCancellation, ...], shared: OriginalGroup | None
    ) -> tuple[PaymentInfoResolution, ...]:
        """The named payment informations of one batch: the batch cancelled when together
        they name every payment of it, else its payments refused (`PARTIAL`). What they
        name that is not one of its payments (unknown, ambiguous, another original amount)
        is `NOOR` either way, as for any payment: naming it beside every payment of the
        batch still asks for each of them to be cancelled, which is the whole batch."""
        closed = self._closed(held)
        if closed is not None:
            return tuple(PaymentInfoResolution(**_echo(p, shared), status=_RJCR, reason=_AGNT,
                                               additional_info=closed) for p in items)  # fmt: skip
        matched = [list(_matches(held, p)) for p in items]
        named = {id(t) for f in matched for _, t, why in f if t is not None and why is None}
        whole = named == {id(t) for t in held.txs} and bool(named)
        if whole:
            held.cancelled = True
        refusal = PARTIAL.format(msg_id=held.msg_id)
        result = []
        for p, found in zip(items, matched, strict=True):
            echo = _echo(p, shared)
            if not found:
                result.append(PaymentInfoResolution(**echo, status=_RJCR, reason=_NOOR))
                continue
            txs = tuple(_answer(t, named_tx, None if whole else refusal, why)
                        for named_tx, t, why in found)  # fmt: skip
            result.append(PaymentInfoResolution(**echo, transactions=txs))
        return tuple(result)

    def _closed(self, held: Held) -> str | None:
        """Why the batch can no longer be cancelled (None: it still waits)."""
        if held.cancelled:
            return "the batch is cancelled by this request already"
        return CLOSED.get(held.row.state)


def original_named(group: OriginalGroup) -> ColumnElement[bool]:
    """The files a request's original group names: the client's file with that MsgId, of
    the named kind of message (`pain.001`, whatever version the request gives: a payment
    of a pain.008 with the same MsgId is not one of ours, SPEC §15 NOOR)."""
    return (db.files.c.accepted_msg_id == group.msg_id) & of_named_kind(group)


def of_named_kind(group: OriginalGroup) -> ColumnElement[bool]:
    """Files of the kind of message `group` names (`pain.001`, whatever its version)."""
    kind = ".".join(group.msg_name.split(".")[:2])
    return db.files.c.message.startswith(f"{kind}.", autoescape=True)


def _echo(p: PaymentInfoCancellation, shared: OriginalGroup | None) -> dict[str, Any]:
    echo: dict[str, Any] = {"pmt_inf_id": p.pmt_inf_id, "cancellation_id": p.cancellation_id}
    if p.group is not None and p.group is not shared:
        echo |= {"original_msg_id": p.group.msg_id, "original_msg_name": p.group.msg_name}
    return echo


def _waiting_tx(pmt: ParsedPmtInf, t: Any) -> WaitingTx:
    try:
        amount: int | None = to_minor(t.amount, t.currency)
    except AmountError:
        amount = None
    try:
        day: dt.date | None = dt.date.fromisoformat(pmt.requested_date[:10])
    except ValueError:
        day = None
    return WaitingTx(pmt.pmt_inf_id, t.end_to_end_id, t.instr_id, amount,
                     t.currency[:3] or None, day, pmt.debtor_iban)  # fmt: skip


Match = tuple[TransactionCancellation | None, WaitingTx | None, str | None]  # named, found, why not


def _matches(held: Held, item: PaymentInfoCancellation) -> Iterator[Match]:
    """Each transaction `item` names (all of its payment information when whole), with
    the batch's transaction it names (`cancel_match.pick`) or why none: unknown (None),
    ambiguous or of another original amount (the English)."""
    own = [t for t in held.txs if t.pmt_inf_id == item.pmt_inf_id]
    if item.whole:
        yield from ((None, t, None) for t in own)
        return
    for named in item.transactions:
        found = cancel_match.pick(named, own, item.pmt_inf_id)
        if isinstance(found, cancel_match.Refused):
            near = found.near if isinstance(found.near, WaitingTx) else None
            yield named, near, found.info or DEFAULT_INFO[_NOOR]
        else:
            yield named, found, None


def _answer(
    t: WaitingTx | None,
    named: TransactionCancellation | None,
    refusal: str | None,
    why_not: str | None = None,
) -> TxResolution:
    """ACCR for a transaction of a batch cancelled as a whole; else why not."""
    echo: dict[str, Any] = {
        "cancellation_id": named.cancellation_id if named else None,
        "end_to_end_id": t.end_to_end_id if t else named.end_to_end_id if named else None,
        "instr_id": t.instr_id if t else named.instr_id if named else None,
        "amount_minor": t.amount_minor if t else None,
        "currency": t.currency if t else None,
        "requested_date": t.requested_date if t else named.requested_date if named else None,
    }
    if t is None or why_not is not None:
        return TxResolution(status=_RJCR, reason=_NOOR, additional_info=why_not, **echo)
    if refusal is not None:
        return TxResolution(status=_RJCR, reason=_AGNT, additional_info=refusal, **echo)
    return TxResolution(status=_ACCR, **echo)
