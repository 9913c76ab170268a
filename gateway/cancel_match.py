"""Which payment a camt.055 `TxInf` names (SPEC §15), for `cancel_run` and `cancel_waiting`.

A transaction is named by its `OrgnlEndToEndId` and/or `OrgnlInstrId`, with its original
amount and its debtor account (`OrgnlTxRef/DbtrAcct`) when the client gives them: a
payment from another of the client's accounts is not the one named. Within a payment
information these need not be unique: `NOTPROVIDED` may repeat (SPEC §6), and so may an
InstrId. The payment named is the one that every identifier given fits: when the ids fit
several, the original amount chooses among them; a payment rejected at arrival as a
repeat (`AM05`) of another with the same ids is not the one named. When several still
fit, the item is ambiguous and is refused, never answered for one of them picked at
random: cancelling another payment than the client meant, or saying a payment is
cancelled while the one meant still executes, are both worse than asking the client to
say which.

Pure: the candidates are whatever the caller read (payment rows, a waiting batch's
transactions), with the attributes of `Candidate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from gateway.inbound.cancellation import TransactionCancellation
from gateway.reasons import Reason
from ledger.currency import AmountError, format_minor, to_minor


class Candidate(Protocol):
    @property
    def end_to_end_id(self) -> str | None: ...
    @property
    def instr_id(self) -> str | None: ...
    @property
    def amount_minor(self) -> int | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def debtor_iban(self) -> str | None: ...


C = TypeVar("C", bound=Candidate)


@dataclass(frozen=True, slots=True)
class Refused:
    """Why no payment is named: `info` is None for an unknown one (the default text)."""

    info: str | None = None
    near: Candidate | None = None  # the payment the ids fit, when only the amount differs


def pick(
    named: TransactionCancellation,
    candidates: Sequence[C],
    where: str,
    ambiguous: Callable[[Sequence[C]], str | None] = lambda _: None,
) -> C | Refused:
    """The one candidate `named` names (`where` is its payment information, for the
    English), or why none is. `ambiguous` may explain several fitting candidates better
    (e.g. they lie in different files); by default the client is asked to name more."""
    if not (named.end_to_end_id or named.instr_id):
        return Refused()
    fit = [
        c
        for c in candidates
        if named.end_to_end_id in (None, c.end_to_end_id) and named.instr_id in (None, c.instr_id)
    ]
    if not fit:
        return Refused()
    if named.debtor_account is not None:
        debited = [c for c in fit if c.debtor_iban == named.debtor_account]
        if not debited:
            accounts = ", ".join(dict.fromkeys(str(c.debtor_iban) for c in fit))
            why = f"debtor account {named.debtor_account} is not the payment's ({accounts})"
            return Refused(why)
        fit = debited
    same = [c for c in fit if same_amount(c, named)]
    if not same:
        amounts = ", ".join(dict.fromkeys(amount_text(c) for c in fit))
        whose = "the payment's" if len(fit) == 1 else f"that of any of the {len(fit)} it names"
        sent = f"{named.amount} {named.currency}"
        return Refused(f"original amount {sent} is not {whose} ({amounts})", fit[0])
    if len(same) > 1:  # a repeat rejected at arrival is not the payment its ids name
        same = [c for c in same if getattr(c, "reason", None) != Reason.AM05.value] or same
    if len(same) == 1:
        return same[0]
    return Refused(ambiguous(same) or _which(named, len(same), where))


def _which(named: TransactionCancellation, count: int, where: str) -> str:
    ids = " ".join(
        f"{tag} {value}"
        for tag, value in (("EndToEndId", named.end_to_end_id), ("InstrId", named.instr_id))
        if value
    )
    more = [
        tag
        for tag, given in (("OrgnlInstrId", named.instr_id), ("OrgnlInstdAmt", named.amount))
        if given is None
    ]
    hint = f"name its {' or '.join(more)} too, or " if more else ""
    return f"{count} payments of {where} have {ids}: {hint}cancel the whole payment information"


def same_amount(c: Candidate, named: TransactionCancellation) -> bool:
    """Whether the original amount `named` gives (if any) is the candidate's."""
    if named.amount is None:
        return True
    if c.amount_minor is None or c.currency is None or named.currency != c.currency:
        return False
    try:
        # (zero too: a payment of 0.00, rejected AM12 at arrival, is named by its amount)
        return bool(to_minor(named.amount, c.currency, allow_zero=True) == c.amount_minor)
    except (AmountError, ValueError):
        return False


def amount_text(c: Candidate) -> str:
    if c.amount_minor is None or c.currency is None:
        return "no amount"
    return f"{format_minor(c.amount_minor, c.currency)} {c.currency}"
