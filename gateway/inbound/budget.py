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
    return [line.split(FIELD) for line in codes.split(LINE)] if codes else []


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
    at most `statement_chars_max` characters: lines that do not fit (20 long codes with
    big amounts) are counted at the end ("; +3 more"), never cut in the middle."""
    shown = [
        f"{x.side} {x.code} {_shown(x.amount, x.currency)}" for x in read(kept) if x.side == side
    ]
    text = "; ".join(shown)
    kept_lines = len(shown)
    while len(text) > statement_chars_max and kept_lines > 1:
        kept_lines -= 1
        text = "; ".join(shown[:kept_lines]) + f"; +{len(shown) - kept_lines} more"
    return text or None
