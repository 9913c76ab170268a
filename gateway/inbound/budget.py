"""Budget classification codes on a payment (SPEC §12): the RR05 check and the lines kept.

A payment from a budget account carries `EKK` lines (expense or financing codes), a
payment to a budget account `IKK` lines (revenue or financing codes); each side's
amounts add up to the instructed amount, at most `code_lines_max` lines a side, every
code valid on the execution date. `problem` says what is wrong with the first side that
is wrong (EKK before IKK), in a few words for `AddtlInf`; the rule in `rules.py` calls
it. Codes on a payment that needs none are not judged: they are kept as sent.

A payment's codes travel and are kept as the one text the reader makes of them
(`ParsedTx.codes`, `gw_payments.budget_codes`): `split` and `read` take it apart,
`addtl_tx_inf` is what statements carry (`EKK 2221 120.00; EKK 2222 30.00`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

from gateway.inbound.classifier import Classifier, Kind
from ledger import currency

code_lines_max = 20  # per side and payment
statement_chars_max = 500  # camt TxDtls/AddtlTxInf is Max500Text
EXPENSE_SIDE = "EKK"  # the payer's economic classification
REVENUE_SIDE = "IKK"  # the payee's revenue classification
SIDE_KINDS: dict[str, frozenset[Kind]] = {
    EXPENSE_SIDE: frozenset({Kind.EXPENSE, Kind.FINANCING}),
    REVENUE_SIDE: frozenset({Kind.REVENUE, Kind.FINANCING}),
}


FIELD, LINE = "\x1f", "\x1e"  # separators of `ParsedTx.codes`
CodeLine = list[str]  # [Tp, Cd, Amt, Ccy] as sent


class Line(NamedTuple):
    """One code line as kept: side (EKK/IKK), code, amount and currency as sent."""

    side: str
    code: str
    amount: str
    currency: str


def join(lines: Iterable[tuple[str, str, str, str]]) -> str | None:
    """The text `ParsedTx.codes` holds for these (Tp, Cd, Amt, Ccy) lines."""
    text = LINE.join(FIELD.join(line) for line in lines)
    return text or None


def split(codes: str | None) -> list[CodeLine]:
    """The code lines as sent, without the counts of lines not kept (`not_kept`)."""
    lines = [line.split(FIELD) for line in codes.split(LINE)] if codes else []
    return [line for line in lines if len(line) != len(NOT_KEPT_FIELDS)]


# The reader keeps `code_lines_max` + 1 lines of a type (so that too many are refused, not
# cut short) and counts those after them in a line `Tp␟+n`: what a statement says is more.
NOT_KEPT_FIELDS = ("side", "count")


def not_kept(codes: str | None, side: str) -> int:
    """How many of `side`'s lines the reader counted but did not keep."""
    lines = [line.split(FIELD) for line in codes.split(LINE)] if codes else []
    return sum(int(n[1:]) for tp, n in (x for x in lines if len(x) == 2) if tp == side)


@lru_cache(maxsize=4096)
def _code_problem(classifier: Classifier, side: str, code: str, day: dt.date) -> str | None:
    """What is wrong with `code` on `side` on `day` (asked once per code and day)."""
    if not code:
        return f"{side} line without Cd"
    entry = classifier.on(code, day)
    if entry is None:
        return f"{side} {classifier.why_not(code, day)}"
    if entry.kind not in SIDE_KINDS[side]:
        allowed = " or ".join(sorted(k.value for k in SIDE_KINDS[side]))
        article = "an" if entry.kind is Kind.EXPENSE else "a"
        return f"{side} {code} is {article} {entry.kind.value} code, not {allowed}"
    return None


def _side(
    side: str, lines: Sequence[CodeLine], amount_minor: int, ccy: str,
    classifier: Classifier, day: dt.date,
) -> str | None:  # fmt: skip
    total = count = 0
    for line in lines:
        if line[0] != side:
            continue
        count += 1
        if len(line) != len(Line._fields):
            return f"{side} line unreadable"
        _tp, code, amount, line_ccy = line
        why = _code_problem(classifier, side, code, day)
        if why is not None:
            return why
        if not amount:
            return f"{side} {code} without Amt"
        if line_ccy != ccy:
            return f"{side} {code} Amt in {line_ccy}, not the instructed {ccy}"
        try:
            total += currency.to_minor(amount, ccy)
        except currency.AmountError as exc:
            return f"{side} {code} Amt: {exc}"  # the problem names the value
    if not count:
        return f"{side} code lines missing"
    if count > code_lines_max:
        return f"more than {code_lines_max} {side} code lines"
    if total != amount_minor:
        difference = currency.format_minor(abs(total - amount_minor), ccy)
        more = "more" if total > amount_minor else "less"
        return (
            f"{side} lines add up to {currency.format_minor(total, ccy)}, {difference} {more} "
            f"than InstdAmt {currency.format_minor(amount_minor, ccy)}"
        )
    return None


def problem(
    codes: str | None, amount_minor: int, ccy: str, *, expense: bool,
    revenue: bool, classifier: Classifier, day: dt.date,
) -> str | None:  # fmt: skip
    """What is wrong with a payment's codes (`ParsedTx.codes`; None: nothing).
    `expense`: it is paid from a budget account; `revenue`: it is paid to one; `day`:
    its execution date."""
    lines = split(codes)
    for side, needed in ((EXPENSE_SIDE, expense), (REVENUE_SIDE, revenue)):
        if needed:
            found = _side(side, lines, amount_minor, ccy, classifier, day)
            if found is not None:
                return found
    return None


def _shown(amount: str, ccy: str) -> str:
    try:
        return currency.format_minor(currency.to_minor(amount, ccy), ccy)
    except (currency.AmountError, KeyError):
        return amount


def read(kept: str | None) -> list[Line]:
    """The lines of a payment's kept codes (those with all four fields)."""
    return [Line(*line) for line in split(kept) if len(line) == len(Line._fields)]


def addtl_tx_inf(kept: str | None, side: str) -> str | None:
    """`EKK 2221 120.00; EKK 2222 30.00`: one side's lines as statements carry them, in
    at most `statement_chars_max` characters. Lines that do not fit (20 long codes with
    big amounts), lines not kept, and lines without a code or an amount (carried as sent
    where no rule judged them) are counted at the end ("; +3 more"), never cut short."""
    lines = [x for x in read(kept) if x.side == side]
    shown = [f"{x.side} {x.code} {_shown(x.amount, x.currency)}" for x in lines
             if x.code and x.amount]  # fmt: skip
    hidden = len(lines) - len(shown) + not_kept(kept, side)

    def joined(count: int) -> str:
        more = len(shown) - count + hidden
        return "; ".join([*shown[:count], *([f"+{more} more"] if more else [])])

    count = len(shown)
    text = joined(count)
    while len(text) > statement_chars_max and count > 1:
        count -= 1
        text = joined(count)
    return text or None
