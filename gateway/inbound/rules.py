"""The business rules of SPEC §6 as small pure functions, applied in precedence order.

File rules look at the whole file and reject it (`FILE_RULES`, applied in `Reason` order;
what is FF01 the reader finds).
Transaction rules judge the payments of a chunk against what the gateway knows when
the file arrives (`Context`): each rule is one function, declared with its reason
code, that names the payments it refuses (by position) and why. `TRANSACTION_RULES`
holds every rule declared, in `reasons.Reason` order, and `findings` applies them so to
the payments no earlier rule refused: the first finding wins. (A rule sees a whole
chunk at a time because a 100,000-payment file is judged once per rule and payment:
one loop per rule and chunk instead of a call per rule and payment.) Funds and daily
limits are judged at execution time (`decide.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from gateway.inbound import budget
from gateway.inbound.classifier import Classifier
from gateway.inbound.facts import Facts, parse_date
from gateway.inbound.findings import Finding, account_in_status
from gateway.inbound.identifiers import bic_problem
from gateway.inbound.parsed import (
    ParsedFile,
    ParsedPmtInf,
    ParsedTx,
    decimal_or_none,
    declared_count,
)
from gateway.reasons import PRECEDENCE, Reason
from ledger import calendar, currency
from ledger.core import Account

duplicate_window_business_days = 5


_declared: list[FileRule | Rule] = []  # every rule of this module, as declared

# -- file level ------------------------------------------------------------------------------


# A file's amounts added up must fit in the 18 digits of one amount in minor units, of
# any currency (so every sum the gateway keeps of them fits its 64-bit columns): 10**16
# in currency units for the currencies with cents.
FILE_SUM_LIMIT = Decimal(10) ** (currency.amount_digits_max - max(currency.EXPONENTS.values()))


@dataclass(frozen=True, slots=True)
class FileRule:
    """A file rule: why the file as a whole is refused with `reason`, or None. It sees the
    file's summary and whether its MsgId is already used (the shell looks that up)."""

    reason: Reason
    judge: Callable[[ParsedFile, bool], str | None]


def file_rule(reason: Reason) -> Callable[[Callable[[ParsedFile, bool], str | None]], FileRule]:
    def declare(judge: Callable[[ParsedFile, bool], str | None]) -> FileRule:
        declared = FileRule(reason, judge)
        _declared.append(declared)
        return declared

    return declare


@file_rule(Reason.FF01)
def readable(parsed: ParsedFile, msg_id_used: bool) -> str | None:
    # What the reader found (it stops at the first problem); too big is refused unparsed.
    # A total past the amounts' 18 digits is over a limit too (SPEC §6: FF01), whatever
    # CtrlSum says (AM10 is for a CtrlSum that differs from the sum).
    if parsed.failure is None:
        if parsed.amount_sum >= FILE_SUM_LIMIT:
            return f"the payments add up to {parsed.amount_sum}: a file's total must stay " \
                f"below {FILE_SUM_LIMIT:f}, the {currency.amount_digits_max} digits of an " \
                "amount in minor units"  # fmt: skip
        return None
    assert parsed.failure.reason is Reason.FF01, parsed.failure
    return parsed.failure.info


@file_rule(Reason.DU01)
def msg_id_unused(parsed: ParsedFile, msg_id_used: bool) -> str | None:
    if not msg_id_used:
        return None
    assert parsed.header is not None
    return f"MsgId {parsed.header.msg_id} was already used by a different file"


@file_rule(Reason.AM18)
def counts_declared(parsed: ParsedFile, msg_id_used: bool) -> str | None:
    header = parsed.header
    assert header is not None
    if (declared := declared_count(header.nb_of_txs)) is not None and declared != parsed.count:
        return f"GrpHdr/NbOfTxs is {header.nb_of_txs}, the file has {parsed.count}"
    for pmt in parsed.payment_infos:  # those whose totals differ (`totals_differ`)
        if pmt.count_differs():
            return f"PmtInf {pmt.pmt_inf_id} NbOfTxs is {pmt.nb_of_txs}, it has {pmt.count}"
    return None


@file_rule(Reason.AM10)
def sums_declared(parsed: ParsedFile, msg_id_used: bool) -> str | None:
    header = parsed.header
    assert header is not None
    declared = decimal_or_none(header.ctrl_sum)
    if declared is not None and declared != parsed.amount_sum:
        return f"GrpHdr/CtrlSum is {header.ctrl_sum}, the sum is {parsed.amount_sum}"
    for pmt in parsed.payment_infos:
        if pmt.sum_differs():
            return f"PmtInf {pmt.pmt_inf_id} CtrlSum is {pmt.ctrl_sum}, the sum is {pmt.amount_sum}"
    return None


def file_finding(parsed: ParsedFile, msg_id_used: bool) -> Finding | None:
    """The file-level finding that wins against the file read to its summary (None: the
    file is valid as a whole). `msg_id_used`: its MsgId is already used by this client —
    known from the group header alone, so a caller may look it up before the file is read
    on (and decide nothing of it: whatever else is wrong, DU01 or FF01 is the answer)."""
    for each in FILE_RULES:
        why = each.judge(parsed, msg_id_used)
        if why is not None:
            return Finding(each.reason, why)
    return None


# -- what the rules know ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """What the rules may know when a file arrives, read by the shell beforehand.

    The shell reads a big file's accounts and earlier payments chunk by chunk, so
    the two lookups below grow as the file is read, always before the rules see a
    transaction that needs them."""

    client_accounts: Mapping[str, Account]  # this client's own accounts only
    treasury_accounts: Mapping[str, Account]  # every treasury account a creditor names
    today: dt.date  # local business calendar date of receipt
    max_future_days: int
    recent_fingerprints: AbstractSet[int]  # same payment booked or pending in the window
    # SPEC §12: budget accounts (any client's), the classifier, the execution date (`due`)
    budget_accounts: AbstractSet[str] = frozenset()
    classifier: Classifier | None = None
    execution_day: Callable[[dt.date, bool], dt.date] | None = None


@dataclass(frozen=True, slots=True)
class PaymentInfo:
    """A payment information as the rules see it: worked out once for all its payments."""

    parsed: ParsedPmtInf
    debtor: Account | None  # the client's own account it names; None: unknown or not its
    requested_date: dt.date | None  # ReqdExctnDt, if it is a date
    debtor_bic_problem: str | None
    batch_booking: bool  # BtchBookg, true when absent (ISO's default)

    @classmethod
    def of(cls, pmt: ParsedPmtInf, ctx: Context) -> PaymentInfo:
        return cls(
            pmt,
            ctx.client_accounts.get(pmt.debtor_iban or ""),
            parse_date(pmt.requested_date),
            bic_problem(pmt.debtor_bic) if pmt.debtor_bic is not None else None,
            pmt.batch_booking is not False,
        )


class Candidate(NamedTuple):
    """A payment in front of the rules: its position in the chunk and what is known."""

    position: int  # in the chunk
    tx: ParsedTx
    facts: Facts
    pmt: PaymentInfo


# -- one value at a time ---------------------------------------------------------------------


# -- transaction rules, in precedence order --------------------------------------------------

Refused = Iterator[tuple[int, str]]  # (position in the chunk, why) for each refused payment


@dataclass(frozen=True, slots=True)
class Rule:
    """A transaction rule: the payments of a chunk it refuses, with `reason`."""

    reason: Reason
    judge: Callable[[Sequence[Candidate], Context], Refused]


def rule(reason: Reason) -> Callable[[Callable[[Sequence[Candidate], Context], Refused]], Rule]:
    def declare(judge: Callable[[Sequence[Candidate], Context], Refused]) -> Rule:
        declared = Rule(reason, judge)
        _declared.append(declared)
        return declared

    return declare


def not_clients_account(debtor: str | None, *, iban: bool = True) -> str:
    """AC02's text (also for a pending payment whose account is no longer the client's).
    An IBAN in small letters is never one configured: the text says how to write it."""
    small = iban and debtor is not None and debtor != debtor.upper()
    hint = " (an IBAN is written in capital letters)" if small else ""
    return f"DbtrAcct {debtor or '?'} is not an account of this client{hint}"


def not_treasury_account(creditor: str) -> str:
    """AC01's text for a treasury IBAN that takes no payments (also at a pending
    payment's execution, when its account has been taken out of the configuration)."""
    return f"CdtrAcct/IBAN {creditor} is not a treasury account"


@rule(Reason.AC02)
def debtor_account(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    # One answer for "unknown" and "someone else's": a client must not learn which.
    for i, _t, _f, pmt in chunk:
        if pmt.debtor is None:
            iban = pmt.parsed.debtor_iban
            yield i, not_clients_account(iban or pmt.parsed.debtor_other_id, iban=bool(iban))


def _with_status(chunk: Sequence[Candidate], ctx: Context, status: str) -> Refused:
    """The debtor's account, then a treasury creditor's, in `status` (closed or blocked)."""
    for i, t, f, pmt in chunk:
        assert pmt.debtor is not None
        if pmt.debtor.status == status:
            yield i, account_in_status("DbtrAcct", pmt.debtor.iban, status)
        elif f.internal:
            creditor = ctx.treasury_accounts.get(t.creditor_iban or "")
            if creditor is not None and creditor.status == status:
                yield i, account_in_status("CdtrAcct", creditor.iban, status)


@rule(Reason.AC04)
def accounts_closed(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    return _with_status(chunk, ctx, "closed")


@rule(Reason.AC06)
def accounts_blocked(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    return _with_status(chunk, ctx, "blocked")


@rule(Reason.AC01)
def creditor_account(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    for i, t, f, _pmt in chunk:
        if t.creditor_iban is None and t.creditor_other_id is None:
            yield i, "CdtrAcct missing: a credit transfer needs the creditor's IBAN"
        elif t.creditor_iban is None:
            yield i, f"CdtrAcct {t.creditor_other_id or '?'} is not an IBAN"
        elif f.iban_problem is not None:
            yield i, f"CdtrAcct/IBAN {t.creditor_iban} is invalid: {f.iban_problem}"
        elif f.internal and t.creditor_iban not in ctx.treasury_accounts:
            yield i, not_treasury_account(t.creditor_iban)


@rule(Reason.RC01)
def bics(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    for i, t, f, pmt in chunk:
        if f.bic_problem is not None:
            yield i, f"CdtrAgt/BIC {t.creditor_bic} is malformed"
        elif pmt.debtor_bic_problem is not None:
            yield i, f"DbtrAgt/BIC {pmt.parsed.debtor_bic} is malformed"


@rule(Reason.AM03)
def currency_allowed(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    for i, t, _f, pmt in chunk:
        assert pmt.debtor is not None
        if not t.amount:
            yield i, "only InstdAmt is supported, not EqvtAmt"
        elif not currency.is_supported(t.currency):
            yield i, f"InstdAmt/@Ccy {t.currency} is not supported"
        elif pmt.parsed.debtor_currency not in (None, pmt.debtor.currency):
            yield i, f"DbtrAcct/Ccy {pmt.parsed.debtor_currency} is not {pmt.debtor.currency}"


@rule(Reason.AM12)
def amount_valid(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    for i, _t, f, _pmt in chunk:
        if f.amount_minor is None:
            yield i, f"InstdAmt: {f.amount_problem}"  # the problem names the value


@rule(Reason.AM02)
def amount_max(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    for i, t, f, pmt in chunk:
        assert pmt.debtor is not None and f.amount_minor is not None
        limit = pmt.debtor.max_payment_minor
        # A payment in another currency is judged on its converted debit, at execution.
        if limit is not None and f.amount_minor > limit and t.currency == pmt.debtor.currency:
            shown = currency.format_minor(limit, t.currency)
            yield i, f"InstdAmt {t.amount} is above the maximum payment {shown}"


@rule(Reason.DT01)
def date_readable(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    for i, _t, _f, pmt in chunk:
        if pmt.requested_date is None:
            yield i, f"ReqdExctnDt {pmt.parsed.requested_date} is not a date"


@rule(Reason.CH03)
def date_not_too_far(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    for i, _t, _f, pmt in chunk:
        assert pmt.requested_date is not None
        if (pmt.requested_date - ctx.today).days > ctx.max_future_days:
            ahead = f"is more than {ctx.max_future_days} days ahead"
            yield i, f"ReqdExctnDt {pmt.parsed.requested_date} {ahead}"


@rule(Reason.AM05)
def not_a_duplicate(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    recent = ctx.recent_fingerprints
    for i, t, f, _pmt in chunk:
        if f.repeated:
            yield i, f"EndToEndId {t.end_to_end_id} repeats in the file"
        elif f.fingerprint is not None and f.fingerprint in recent:
            yield (
                i,
                (
                    f"EndToEndId {t.end_to_end_id}: the same payment was booked or is waiting "
                    f"in the last {duplicate_window_business_days} business days"
                ),
            )


@rule(Reason.RR05)
def budget_codes(chunk: Sequence[Candidate], ctx: Context) -> Refused:
    budgets, due, known = ctx.budget_accounts, ctx.execution_day, ctx.classifier
    if not budgets or known is None:
        return
    for i, t, f, pmt in chunk:
        assert pmt.debtor is not None and f.amount_minor is not None and pmt.requested_date
        expense, revenue = pmt.debtor.iban in budgets, f.internal and t.creditor_iban in budgets
        if expense or revenue:
            day = due(pmt.requested_date, f.internal) if due else max(pmt.requested_date, ctx.today)
            why = budget.problem(t.codes, f.amount_minor, t.currency, expense=expense,
                                 revenue=revenue, classifier=known, day=day)  # fmt: skip
            if why is not None:
                yield i, why


def findings(chunk: Sequence[Candidate], ctx: Context) -> dict[int, Finding]:
    """The first finding against each payment of `chunk` that breaks a rule, by position."""
    found: dict[int, Finding] = {}
    open_ = chunk
    for each in TRANSACTION_RULES:
        refused = {i: Finding(each.reason, why) for i, why in each.judge(open_, ctx)}
        if refused:
            found.update(refused)
            open_ = [c for c in open_ if c.position not in refused]
    return found


def window_start(today: dt.date) -> dt.date:
    """First booking date inside the duplicate-payment window."""
    return calendar.business_days_back(today, duplicate_window_business_days)


# Every rule declared above, applied in `Reason` order whatever the order they are declared
# in: the enum is the one place that says which finding wins (SPEC §6), and a rule is added
# by declaring it. A rule may rely on the ones before it (after FF01 the file was read
# whole; a transaction's debtor account is known). The ladder tests pin the order.
FILE_RULES: tuple[FileRule, ...] = tuple(
    sorted((r for r in _declared if isinstance(r, FileRule)), key=lambda r: PRECEDENCE[r.reason])
)
TRANSACTION_RULES: tuple[Rule, ...] = tuple(
    sorted((r for r in _declared if isinstance(r, Rule)), key=lambda r: PRECEDENCE[r.reason])
)
