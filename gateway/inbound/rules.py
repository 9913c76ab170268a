"""The business rules of SPEC §6 as small pure functions, applied in precedence order.

File rules look at the whole file and reject it (FF01 comes from the reader).
Transaction rules look at one transaction against what the gateway knows when
the file arrives; each returns a `Finding` or None, and the first finding in
`reasons.Reason` order wins. Funds and daily limits are decided later, at
execution time (`execute.py`), because a pending payment is judged when it runs.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, NamedTuple

from schwifty import BIC
from schwifty import registry as schwifty_registry
from schwifty.exceptions import SchwiftyException

from gateway.inbound.findings import Finding
from gateway.inbound.pain001_v03 import ParsedFile, ParsedPmtInf, ParsedTx
from gateway.reasons import Reason
from ledger import calendar, currency
from ledger.core import Account

NOT_PROVIDED = "NOTPROVIDED"
TREASURY_BANK_CODE = "TREL"
duplicate_window_business_days = 5


# -- file level ------------------------------------------------------------------------------


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def file_findings(parsed: ParsedFile) -> Finding | None:
    """AM18 then AM10, for the group header and then each payment information."""
    header = parsed.header
    assert header is not None
    if header.nb_of_txs.isdigit() and int(header.nb_of_txs) != parsed.count:
        return Finding(
            Reason.AM18, f"GrpHdr/NbOfTxs is {header.nb_of_txs}, the file has {parsed.count}"
        )
    for pmt in parsed.payment_infos:
        if pmt.nb_of_txs is not None and int(pmt.nb_of_txs) != pmt.count:
            return Finding(
                Reason.AM18,
                f"PmtInf {pmt.pmt_inf_id} NbOfTxs is {pmt.nb_of_txs}, it has {pmt.count}",
            )
    declared = _decimal(header.ctrl_sum)
    if declared is not None and declared != parsed.amount_sum:
        return Finding(
            Reason.AM10, f"GrpHdr/CtrlSum is {header.ctrl_sum}, the sum is {parsed.amount_sum}"
        )
    for pmt in parsed.payment_infos:
        declared = _decimal(pmt.ctrl_sum)
        if declared is not None and declared != pmt.amount_sum:
            return Finding(
                Reason.AM10,
                f"PmtInf {pmt.pmt_inf_id} CtrlSum is {pmt.ctrl_sum}, the sum is {pmt.amount_sum}",
            )
    return None


# -- transaction level -----------------------------------------------------------------------


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
    # `debtor_side` per payment information (by its position in the file)
    debtor_sides: dict[int, Account | None] = field(default_factory=dict, compare=False)


class Checked(NamedTuple):
    """A transaction that passed, or the first finding against it."""

    finding: Finding | None
    amount_minor: int
    requested_date: dt.date | None
    internal: bool
    fingerprint: int | None


_IBAN_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}$")
_MOD97 = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})


@lru_cache(maxsize=256)
def iban_spec(country: str) -> Any:
    try:
        return schwifty_registry.get_iban_spec(country)
    except SchwiftyException:
        return None


def iban_problem(text: str) -> str | None:
    """Why `text` is not a valid IBAN, or None.

    The checks schwifty makes (shape, the country's length and BBAN format from
    schwifty's registry, ISO 7064 mod-97), done here without building an IBAN
    object per payment: a payroll file names 100,000 different creditors. A valid
    IBAN passes in one match of its country's whole pattern; anything else takes
    the checks one by one, which word the problem.
    """
    whole = _whole_iban(text[:2])
    if whole is not None and whole.match(text) is not None and _mod97(text) == 1:
        return None
    return _iban_problem_stepwise(text)


def _iban_problem_stepwise(text: str) -> str | None:
    """`iban_problem`, one check at a time (a test holds the two equal)."""
    if not _IBAN_SHAPE.match(text):
        return "not an IBAN"
    spec = iban_spec(text[:2])
    if spec is None:
        return f"unknown country code {text[:2]}"
    if len(text) != spec.iban_length:
        return f"an IBAN of {text[:2]} has {spec.iban_length} characters, not {len(text)}"
    if not spec.regex.match(text[4:]):
        return "the account part does not match the country's format"
    if _mod97(text) != 1:
        return "check digits do not match"
    return None


@lru_cache(maxsize=256)
def _whole_iban(country: str) -> re.Pattern[str] | None:
    """A country's whole IBAN in one pattern: the country, two check digits, and the
    BBAN as schwifty's registry describes it, of the country's length, in capitals
    and digits only (as `_IBAN_SHAPE` requires). None if the registry's pattern is
    not the anchored form this relies on: then the checks run one by one."""
    spec = iban_spec(country)
    bban = spec.regex.pattern if spec is not None else ""
    if not (country.isalpha() and country.isupper() and bban[:1] == "^" and bban[-1:] == "$"):
        return None
    rest = spec.iban_length - 4
    return re.compile(
        rf"{country}[0-9]{{2}}(?=[A-Z0-9]{{{rest}}}\Z)(?:{bban[1:-1]})\Z", re.ASCII
    )


def _mod97(iban: str) -> int:
    """ISO 7064 mod-97 of the IBAN rearranged (BBAN first, letters as two digits). The
    country, check digits and bank code repeat across a file: their digits are cached."""
    rest = iban[8:]
    if not rest.isdigit():
        rest = rest.translate(_MOD97)
    return int(_letters_as_digits(iban[4:8]) + rest + _letters_as_digits(iban[:4])) % 97


@lru_cache(maxsize=4096)
def _letters_as_digits(part: str) -> str:
    return part.translate(_MOD97)


@lru_cache(maxsize=4096)
def bic_problem(text: str) -> str | None:
    try:
        BIC(text)
    except SchwiftyException as exc:
        return str(exc)
    return None


def is_treasury_iban(iban: str) -> bool:
    return iban[:2] == "LV" and iban[4:8] == TREASURY_BANK_CODE


def fingerprint(debtor: str, creditor: str, amount_minor: int, ccy: str, e2e: str) -> int:
    """A payment's identity for AM05, as a signed 64-bit integer: indexing 100,000 new
    payments costs a third of what 32-character text would (two equal fingerprints of
    different payments are as likely as 1 in 10^19 per pair)."""
    raw = f"{debtor}|{creditor}|{amount_minor}|{ccy}|{e2e}".encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


@lru_cache(maxsize=1024)
def parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


class Facts(NamedTuple):
    """What one transaction says on its own, worked out once before any context is
    known (for a big file, in the reading child): the rules only look these up."""

    amount_minor: int | None  # None: InstdAmt is not an amount of its currency
    amount_problem: str | None  # why not (AM12 or AM03)
    iban_problem: str | None  # why CdtrAcct/IBAN is not a valid IBAN (AC01), if it is not
    bic_problem: str | None  # why CdtrAgt/BIC is malformed (RC01), if it is
    internal: bool  # the creditor is a treasury IBAN
    requested_date: dt.date | None  # the payment information's ReqdExctnDt, if it is a date
    fingerprint: int | None  # the AM05 identity, when the payment can have one


class _Unchecked(enum.Enum):
    IBAN = "the IBAN is checked by `facts`"


def facts(
    tx: ParsedTx, pmt: ParsedPmtInf, iban_checked: str | _Unchecked | None = _Unchecked.IBAN
) -> Facts:
    """What `tx` says on its own. `iban_checked` is `iban_problem(tx.creditor_iban)`
    when the caller has it (the reading child works it out: `reader.Chunk`)."""
    amount: int | None = None
    amount_problem = None
    try:
        amount = currency.to_minor(tx.amount, tx.currency)
    except currency.AmountError as exc:
        amount_problem = str(exc)
    iban = tx.creditor_iban
    print_ = None
    if (
        amount is not None
        and iban is not None
        and pmt.debtor_iban is not None
        and tx.end_to_end_id != NOT_PROVIDED
    ):
        print_ = fingerprint(pmt.debtor_iban, iban, amount, tx.currency, tx.end_to_end_id)
    return Facts(
        amount,
        amount_problem,
        (iban_problem(iban) if iban is not None else None)
        if iban_checked is _Unchecked.IBAN
        else iban_checked,
        bic_problem(tx.creditor_bic) if tx.creditor_bic is not None else None,
        iban is not None and is_treasury_iban(iban),
        parse_date(pmt.requested_date),
        print_,
    )


Rule = Callable[[ParsedTx, Facts, ParsedPmtInf, Context], Finding | None]


def debtor_account(tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context) -> Finding | None:
    # One answer for "unknown" and "someone else's": a client must not learn which.
    if pmt.debtor_iban is None or pmt.debtor_iban not in ctx.client_accounts:
        shown = pmt.debtor_iban or pmt.debtor_other_id or "?"
        return Finding(Reason.AC02, f"DbtrAcct {shown} is not an account of this client")
    return None


_STATUS_REASONS = {"closed": Reason.AC04, "blocked": Reason.AC06}


def _account_with_status(
    tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context, status: str
) -> Finding | None:
    """The debtor's account, then a treasury creditor's, in `status` (closed or blocked)."""
    assert pmt.debtor_iban is not None
    debtor = ctx.client_accounts[pmt.debtor_iban]
    if debtor.status == status:
        return Finding(_STATUS_REASONS[status], f"DbtrAcct {debtor.iban} is {status}")
    if f.internal:
        creditor = ctx.treasury_accounts.get(tx.creditor_iban or "")
        if creditor is not None and creditor.status == status:
            return Finding(_STATUS_REASONS[status], f"CdtrAcct {creditor.iban} is {status}")
    return None


def accounts_closed(tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context) -> Finding | None:
    return _account_with_status(tx, f, pmt, ctx, "closed")


def accounts_blocked(tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context) -> Finding | None:
    return _account_with_status(tx, f, pmt, ctx, "blocked")


def creditor_account(tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context) -> Finding | None:
    if tx.creditor_iban is None:
        return Finding(Reason.AC01, f"CdtrAcct {tx.creditor_other_id or '?'} is not an IBAN")
    if f.iban_problem is not None:
        return Finding(
            Reason.AC01, f"CdtrAcct/IBAN {tx.creditor_iban} is invalid: {f.iban_problem}"
        )
    if f.internal and tx.creditor_iban not in ctx.treasury_accounts:
        return Finding(Reason.AC01, f"CdtrAcct/IBAN {tx.creditor_iban} is not a treasury account")
    return None


def bics(tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context) -> Finding | None:
    if f.bic_problem is not None:
        return Finding(Reason.RC01, f"CdtrAgt/BIC {tx.creditor_bic} is malformed")
    if pmt.debtor_bic is not None and bic_problem(pmt.debtor_bic) is not None:
        return Finding(Reason.RC01, f"DbtrAgt/BIC {pmt.debtor_bic} is malformed")
    return None


def currency_allowed(tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context) -> Finding | None:
    if not tx.amount:
        return Finding(Reason.AM03, "only InstdAmt is supported, not EqvtAmt")
    if not currency.is_supported(tx.currency):
        return Finding(Reason.AM03, f"InstdAmt/@Ccy {tx.currency} is not supported")
    assert pmt.debtor_iban is not None
    debtor = ctx.client_accounts[pmt.debtor_iban]
    if tx.currency != debtor.currency:
        return Finding(
            Reason.AM03,
            f"InstdAmt/@Ccy {tx.currency} differs from DbtrAcct currency {debtor.currency}",
        )
    if pmt.debtor_currency is not None and pmt.debtor_currency != debtor.currency:
        return Finding(Reason.AM03, f"DbtrAcct/Ccy {pmt.debtor_currency} is not {debtor.currency}")
    return None


def amount_valid(tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context) -> Finding | None:
    if f.amount_minor is None:
        return Finding(Reason.AM12, f"InstdAmt {tx.amount}: {f.amount_problem}")
    return None


def amount_max(tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context) -> Finding | None:
    assert pmt.debtor_iban is not None and f.amount_minor is not None
    limit = ctx.client_accounts[pmt.debtor_iban].max_payment_minor
    if limit is not None and f.amount_minor > limit:
        shown = currency.format_minor(limit, tx.currency)
        return Finding(Reason.AM02, f"InstdAmt {tx.amount} is above the maximum payment {shown}")
    return None


def date_readable(tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context) -> Finding | None:
    if f.requested_date is None:
        return Finding(Reason.DT01, f"ReqdExctnDt {pmt.requested_date} is not a date")
    return None


def date_not_too_far(tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context) -> Finding | None:
    assert f.requested_date is not None
    if (f.requested_date - ctx.today).days > ctx.max_future_days:
        return Finding(
            Reason.CH03,
            f"ReqdExctnDt {pmt.requested_date} is more than {ctx.max_future_days} days ahead",
        )
    return None


# In precedence order (the order of `Reason`); the ladder test pins it.
TRANSACTION_RULES: tuple[Rule, ...] = (
    debtor_account,
    accounts_closed,
    accounts_blocked,
    creditor_account,
    bics,
    currency_allowed,
    amount_valid,
    amount_max,
    date_readable,
    date_not_too_far,
)


def debtor_side(pmt: ParsedPmtInf, ctx: Context) -> Account | None:
    """The debtor's account if nothing on the payment information's side can stop its
    payments (the debtor account, its status, DbtrAgt, DbtrAcct/Ccy, the date), else
    None. Worked out once per payment information and file."""
    if pmt.seq in ctx.debtor_sides:
        return ctx.debtor_sides[pmt.seq]
    debtor = ctx.client_accounts.get(pmt.debtor_iban or "")
    day = parse_date(pmt.requested_date)
    if (
        debtor is None
        or debtor.status in _STATUS_REASONS
        or (pmt.debtor_bic is not None and bic_problem(pmt.debtor_bic) is not None)
        or (pmt.debtor_currency is not None and pmt.debtor_currency != debtor.currency)
        or day is None
        or (day - ctx.today).days > ctx.max_future_days
    ):
        debtor = None
    ctx.debtor_sides[pmt.seq] = debtor
    return debtor


def passes(tx: ParsedTx, f: Facts, pmt: ParsedPmtInf, ctx: Context) -> bool:
    """True only if no rule of TRANSACTION_RULES has a finding: the usual payment in one
    step. False means "ask the rules", which alone word findings and keep precedence;
    a test holds this exactly equal to the rules (tests/unit/test_rules_ladder.py)."""
    debtor = debtor_side(pmt, ctx)
    if (
        debtor is None
        or f.amount_minor is None
        or f.iban_problem is not None
        or f.bic_problem is not None
        or tx.creditor_iban is None
        or tx.currency != debtor.currency
        or not tx.amount
        or not currency.is_supported(tx.currency)
        or (debtor.max_payment_minor is not None and f.amount_minor > debtor.max_payment_minor)
    ):
        return False
    if f.internal:
        creditor = ctx.treasury_accounts.get(tx.creditor_iban)
        return creditor is not None and creditor.status not in _STATUS_REASONS
    return True


def check(
    tx: ParsedTx,
    pmt: ParsedPmtInf,
    ctx: Context,
    seen_e2e: set[str],
    f: Facts | None = None,
) -> Checked:
    """Apply the rules to one transaction; `seen_e2e` carries in-file duplicates along.
    `f` is `facts(tx, pmt)`, when the caller has it already."""
    if f is None:
        f = facts(tx, pmt)
    repeated = tx.end_to_end_id != NOT_PROVIDED and tx.end_to_end_id in seen_e2e
    seen_e2e.add(tx.end_to_end_id)
    amount = f.amount_minor or 0
    if not passes(tx, f, pmt, ctx):
        for rule in TRANSACTION_RULES:
            finding = rule(tx, f, pmt, ctx)
            if finding is not None:
                return Checked(finding, amount, f.requested_date, f.internal, None)
    if repeated:
        finding = Finding(Reason.AM05, f"EndToEndId {tx.end_to_end_id} repeats in the file")
        return Checked(finding, amount, f.requested_date, f.internal, None)
    if f.fingerprint is not None and f.fingerprint in ctx.recent_fingerprints:
        finding = Finding(
            Reason.AM05,
            f"EndToEndId {tx.end_to_end_id}: the same payment was made in the last "
            f"{duplicate_window_business_days} business days",
        )
        return Checked(finding, amount, f.requested_date, f.internal, None)
    return Checked(None, amount, f.requested_date, f.internal, f.fingerprint)


def due_date(
    requested: dt.date,
    internal: bool,
    received_local: dt.datetime,
    cutoff_internal: dt.time,
    cutoff_external: dt.time,
) -> dt.date:
    """When a payment executes (SPEC §6): today if before its cut-off on a business day,
    otherwise the next business day; future dates on that business day (or the next)."""
    today = received_local.date()
    if requested > today:
        return calendar.business_day_on_or_after(requested)
    cutoff = cutoff_internal if internal else cutoff_external
    if calendar.is_business_day(today) and received_local.time() < cutoff:
        return today
    return calendar.next_business_day(today)


def window_start(today: dt.date) -> dt.date:
    """First booking date inside the duplicate-payment window."""
    return calendar.business_days_back(today, duplicate_window_business_days)
