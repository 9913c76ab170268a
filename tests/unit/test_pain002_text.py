"""`transaction_text` writes the usual payment in one step: it must write exactly what
the three parts (`transaction_head`, `transaction_status`, `transaction_tail`) write,
for every input, plain or not."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.outbound import pain002_v03 as p
from gateway.reasons import Reason
from gateway.statuses import TxStatus


def three_parts(*args: object) -> str:
    (instr, e2e, status, reason, info, ref, amount, ccy, day, name, iban) = args
    return (
        p.transaction_head(instr, e2e)  # type: ignore[arg-type]
        + p.transaction_status(status, reason, info, ref)  # type: ignore[arg-type]
        + p.transaction_tail(amount, ccy, day, name, iban)  # type: ignore[arg-type]
    )


# Texts near the edges the one step must notice: markup, spaces at either end,
# the `|` it joins with, control and non-BMP characters, lengths around the limits.
edgy = st.sampled_from(
    ["", " ", "a", "a ", " a", "a|b", "a |b", "a| b", "&", "<x>", '"q"', "a\tb", "é", "\x00",
     "\U0001f600", "x" * 35, "x" * 36, "y" * 140, "y" * 141, "|", "x|", "|x"]
)  # fmt: skip
text = st.one_of(edgy, st.text(max_size=40), st.text(max_size=150))
optional_text = st.one_of(st.none(), text)
iban = st.one_of(
    st.none(),
    st.sampled_from(["LV80BANK0000435195001", "LV80bank0000435195001", "LV8", "lv80BANK0000"]),
    st.from_regex(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}", fullmatch=True),
    st.text(max_size=40),
)
reasons = st.one_of(st.none(), st.sampled_from(list(Reason)))
statuses = st.sampled_from(list(TxStatus))
amounts = st.one_of(st.none(), st.integers(-5, 10**18))
currencies = st.one_of(st.none(), st.sampled_from(["EUR", "JPY", "XXX", "USD"]))
days = st.one_of(st.none(), st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)))


def _agree(*args: object) -> None:
    try:
        expected: str | Exception = three_parts(*args)
    except ValueError as exc:  # a rejected transaction without a reason
        expected = exc
    try:
        got: str | Exception = p.transaction_text(*args)  # type: ignore[arg-type]
    except ValueError as exc:
        got = exc
    if isinstance(expected, Exception):
        assert isinstance(got, ValueError) and str(got) == str(expected)
    else:
        assert got == expected


@settings(max_examples=1500, deadline=None)
@given(
    st.tuples(
        optional_text, text, statuses, reasons, optional_text, optional_text,
        amounts, currencies, days, optional_text, iban,
    )
)  # fmt: skip
def test_one_step_writes_what_the_three_parts_write(args: tuple[object, ...]) -> None:
    _agree(*args)


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(st.none(), edgy),
    edgy,
    st.sampled_from([TxStatus.ACSC, TxStatus.PDNG]),
    st.one_of(st.none(), edgy),
    st.integers(0, 10**12),
    st.sampled_from(["EUR", "USD"]),
    st.one_of(edgy, st.text(max_size=40)),
    st.sampled_from(["LV80BANK0000435195001", "LV80bank0000435195001", "LV8 0"]),
)
def test_the_usual_payment_near_the_edges(
    instr: str | None, e2e: str, status: TxStatus, ref: str | None, amount: int, ccy: str,
    name: str, iban: str,
) -> None:  # fmt: skip
    _agree(instr, e2e, status, None, None, ref, amount, ccy, dt.date(2026, 12, 1), name, iban)


def test_the_usual_payment_takes_the_one_step() -> None:
    """The fast path is taken (not only agreed with): the plain payment is written
    without calling the three parts."""
    args = (None, "E2E-1", TxStatus.ACSC, None, None, "EK1", 12345, "EUR",
            dt.date(2026, 12, 1), "Darbinieks", "LV80BANK0000435195001")  # fmt: skip
    calls: list[object] = []
    original = p.transaction_head

    def counted(*a: object) -> str:
        calls.append(a)
        return original(*a)  # type: ignore[arg-type]

    p.transaction_head = counted  # type: ignore[assignment]
    try:
        text = p.transaction_text(*args)  # type: ignore[arg-type]
    finally:
        p.transaction_head = original  # type: ignore[assignment]
    assert calls == []
    assert text == three_parts(*args)
    assert '<InstdAmt Ccy="EUR">123.45</InstdAmt>' in text


EDGY = [
    "", " ", "a", "a ", " a", "a|b", "a |b", "a| b", "&", "<x>", "x>", '"q"', "a\tb", "é",
    "\x00", "\U0001f600", "x" * 35, "x" * 36, "y" * 140, "y" * 141, "|", "x|", "|x", None,
]  # fmt: skip
PLAIN = (None, "E2E-1", TxStatus.ACSC, None, None, "EK1", 12345, "EUR",
         dt.date(2026, 12, 1), "Darbinieks", "LV80BANK0000435195001")  # fmt: skip
DEVIATIONS = {
    0: EDGY,  # InstrId
    1: [e for e in EDGY if e is not None],  # EndToEndId
    2: list(TxStatus),
    3: [None, Reason.AC01],
    4: [None, "why"],
    5: EDGY,  # AcctSvcrRef
    6: [None, -1, 0, 5, 99, 100, 10**17],
    7: [None, "EUR", "JPY", "XXX"],
    8: [None, dt.date(1, 1, 1)],
    9: EDGY,  # Cdtr/Nm
    10: [None, "LV80bank0000435195001", "LV8", "LV80BANK0000435195001 ", "LV80BANK000043519500"],
}


def test_every_single_deviation_from_the_usual_payment() -> None:
    """Each field of the plain payment replaced, one at a time, by each awkward value
    (and each status and reason): the one step agrees with the three parts."""
    for field, values in DEVIATIONS.items():
        for value in values:
            args = list(PLAIN)
            args[field] = value
            for status in TxStatus:
                args[2] = value if field == 2 else status
                _agree(*args)
