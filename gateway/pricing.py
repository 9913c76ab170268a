"""A payment priced on both sides and booked through the treasury's position accounts
(SPEC §13): the pure part, on the conversions of `gateway.fx`.

A payment instructed in one currency goes from an account in one currency to an account
(or, leaving the treasury, a clearing account) in another. Its route (`route`: worked
out once per day's rates and three currencies, kept on `DayRates.routes`) says which
side converts through which pair, its postings netted once, the rates it reads and its
`AddtlInf`; `price` puts a payment's amounts on it; `postings` books them through the
position account of each currency involved, so that every transfer balances in each of
its currencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from gateway import fx
from gateway.inbound.identifiers import iban_lv
from ledger import currency


class Priced(NamedTuple):
    """A payment's amount on each side: instructed, debited (debtor account's currency)
    and credited (the creditor account's currency; for an external payment, the
    instructed currency, booked against that currency's clearing account)."""

    instructed_minor: int
    debit_minor: int
    credit_minor: int
    route: Route

    @property
    def amounts(self) -> tuple[int, int, int]:
        """Its amounts as a route's legs name them (`_DEBITED`, `_CREDITED`, `_INSTRUCTED`)."""
        return self.debit_minor, self.credit_minor, self.instructed_minor

    @property
    def note(self) -> str | None:
        """The `AddtlInf` of a converted payment (SPEC §13: rate, rate date and debited
        amount): the debit side's conversion (`fx.Conversion.text`). None when only the
        creditor's account converts: nothing of the payer's is converted, and the credit
        side's rate would name the currency of an account that may be another client's
        (a client sees nothing that is not its own; the creditor account's statement
        shows the conversion)."""
        note = self.route.note
        assert note is not None, "not converted"
        return note.text(self.debit_minor) if self.route.debit is not None else None


# Who a leg of a route's postings names (`Route.legs`), beside the position accounts.
DEBTOR, CREDITOR = 0, 1
# What amount it moves (`Route.legs`): the debit, the credit, the instructed amount.
_DEBITED, _CREDITED, _INSTRUCTED = 0, 1, 2
# A leg of a route: who (DEBTOR, CREDITOR or a position account's IBAN), the currency,
# the sign, which amount.
Leg = tuple[int | str, str, int, int]


class Route(NamedTuple):
    """How a payment instructed in one currency goes from an account in `debit_ccy` to
    one in `credit_ccy` on a day's rates, for any amount: each side's pair (None: that
    account keeps the instructed currency), its postings netted once (`_legs`), the
    stored rates it reads, and its `AddtlInf` around the amount shown."""

    instructed: str
    debit_ccy: str
    credit_ccy: str
    debit: fx.Pair | None
    credit: fx.Pair | None
    # (DEBTOR, CREDITOR or a position account's IBAN; currency; sign; which amount)
    legs: tuple[Leg, ...]
    positions: tuple[Leg, ...]  # those of `legs` on the position accounts
    via: tuple[str, str]  # the position accounts of `debit_ccy` and `credit_ccy`
    quotes: tuple[fx.Quote, ...]
    note: fx.Note | None  # None: nothing is converted

    def price(self, amount_minor: int) -> Priced | fx.Overflow | fx.BelowMinorUnit:
        debit = credit = amount_minor
        if self.debit is not None:
            found = fx.converted_minor(amount_minor, self.instructed, self.debit_ccy, self.debit)
            if not isinstance(found, int):
                return found
            debit = found
        if self.credit is not None and self.credit_ccy == self.debit_ccy:
            credit = debit  # the debit side's pair, the same amount (as `_legs` nets them)
        elif self.credit is not None:
            found = fx.converted_minor(amount_minor, self.instructed, self.credit_ccy, self.credit)
            if not isinstance(found, int):
                return fx.creditor_side(found)
            credit = found
        return Priced(amount_minor, debit, credit, self)


def route(
    instructed: str, debit_ccy: str, credit_ccy: str, rates: fx.DayRates
) -> Route | fx.NoRate:
    """The route of a payment instructed in `instructed` from an account in `debit_ccy`
    to one in `credit_ccy` (worked out once per day's rates)."""
    key = (instructed, debit_ccy, credit_ccy)
    found = rates.routes.get(key)
    if found is not None:
        return found
    sides: list[fx.Pair | None] = []
    for target in (debit_ccy, credit_ccy):
        pair = None if target == instructed else fx.pair_on(instructed, target, rates)
        if isinstance(pair, fx.NoRate):
            if sides:  # the credit side's (the debit side's pair came first)
                pair = fx.creditor_side(pair)
            rates.routes[key] = pair
            return pair
        sides.append(pair)
    debit, credit = sides
    quotes = tuple(dict.fromkeys(q for side in sides if side is not None for q in side.quotes))
    shown, target = (debit, debit_ccy) if debit is not None else (credit, credit_ccy)
    note = None
    if shown is not None and shown.display is not None:
        note = fx.note_on(instructed, target, shown.display, rates.rate_date, shown.rate_name)
    legs = _legs(
        instructed, debit_ccy, credit_ccy, converted=(debit is not None, credit is not None)
    )
    # The debtor's debit first and the creditor's credit last (never netted: no other leg
    # names them); what lies between is on the position accounts.
    positions = legs[1:-1]
    assert legs[0][0] == DEBTOR and legs[-1][0] == CREDITOR, legs
    assert legs[0][1:3] == (debit_ccy, -1) and legs[-1][1:3] == (credit_ccy, 1), legs
    assert all(isinstance(leg[0], str) for leg in positions), legs
    found = Route(
        instructed, debit_ccy, credit_ccy, debit, credit, legs, positions,
        (position_ibans()[debit_ccy], position_ibans()[credit_ccy]), quotes, note,
    )  # fmt: skip
    rates.routes[key] = found
    return found


def price(
    amount_minor: int,
    instructed: str,
    debtor_currency: str,
    creditor_currency: str,
    rates: fx.DayRates,
) -> Priced | fx.Unconvertible:
    """Convert a payment on the debit side and, for a creditor account in a third
    currency, again on the credit side; both from the instructed amount."""
    assert amount_minor > 0, amount_minor
    found = route(instructed, debtor_currency, creditor_currency, rates)
    if isinstance(found, fx.NoRate):
        return found
    return found.price(amount_minor)


# -- postings through the position accounts -------------------------------------------------

# The treasury's currency position accounts, one per currency, created like the funding
# and clearing accounts (`gateway.environment`): bank code TREL, numbers 997... by currency.
POSITION_BASE = 9_970_000_000_000


@lru_cache(maxsize=1)
def position_ibans() -> dict[str, str]:
    """Currency → the IBAN of the treasury's position account in it."""
    return {
        code: iban_lv("TREL", POSITION_BASE + index)
        for index, code in enumerate(sorted(currency.EXPONENTS))
    }


class Posting(NamedTuple):
    """One line of a transfer: `amount_minor` is negative for a debit, positive for a credit."""

    iban: str
    currency: str
    amount_minor: int


def postings(priced: Priced, debtor_iban: str, creditor_iban: str) -> tuple[Posting, ...]:
    """The postings of a priced payment (its route's legs with its amounts), the
    debtor's first (its debit) and the creditor's last (its credit); they sum to zero in
    each currency. A run books the two ends per payment and the rest per route."""
    debit, credit = client_postings(priced, debtor_iban, creditor_iban)
    return (Posting(*debit), *position_postings(priced.route, priced.amounts), Posting(*credit))


def client_postings(
    priced: Priced, debtor_iban: str, creditor_iban: str
) -> tuple[tuple[str, str, int], tuple[str, str, int]]:
    """The debtor's debit in its account's currency and the credit in the creditor's
    (or the clearing account's), as (IBAN, currency, amount): the ends of the route's
    legs, which move the debited and the credited amount (`route` asserts it). Plain
    tuples: a run books them per payment."""
    route = priced.route
    return (
        (debtor_iban, route.debit_ccy, -priced.debit_minor),
        (creditor_iban, route.credit_ccy, priced.credit_minor),
    )


def add_amounts(totals: list[int], priced: Priced) -> None:
    """Add a payment's amounts to its route's `totals` (as `Priced.amounts`)."""
    totals[_DEBITED] += priced.debit_minor
    totals[_CREDITED] += priced.credit_minor
    totals[_INSTRUCTED] += priced.instructed_minor


def position_postings(route: Route, totals: Sequence[int]) -> tuple[Posting, ...]:
    """The route's postings on the position accounts for payments whose amounts add up
    to `totals` (as `Priced.amounts`): a leg moves a sign times one of the amounts, so
    the legs of many payments are the legs of their sums, and a run books them once per
    route (`decide.Bookings.add_converted`)."""
    return _moves(route.positions, totals, ())


def _moves(
    legs: Sequence[Leg], amounts: Sequence[int], accounts: Sequence[str]
) -> tuple[Posting, ...]:
    return tuple([
        Posting(accounts[who] if isinstance(who, int) else who, code, sign * amounts[which])
        for who, code, sign, which in legs
    ])  # fmt: skip


def _legs(
    instructed: str, debit_ccy: str, credit_ccy: str, *, converted: tuple[bool, bool]
) -> tuple[Leg, ...]:
    """A route's postings, netted: the debtor −debit (account currency); for a
    conversion, the position account of the account currency +debit and that of the
    instructed currency −instructed; on the credit side the mirror image; the creditor
    (or clearing account) +credit. A position account that would be both debited and
    credited (a payment from and to accounts in the same currency, instructed in
    another) is netted, for every amount: the amounts are named by what they equal (an
    unconverted side moves the instructed amount; two sides in one currency, the
    same converted amount)."""
    debit_converted, credit_converted = converted
    positions = position_ibans()
    debited = _DEBITED if debit_converted else _INSTRUCTED
    credited = _CREDITED if credit_converted else _INSTRUCTED
    if credit_converted and credit_ccy == debit_ccy:
        credited = debited  # the same pair, the same amount
    legs: list[Leg] = [(DEBTOR, debit_ccy, -1, debited)]
    if debit_converted:
        legs += [
            (positions[debit_ccy], debit_ccy, 1, debited),
            (positions[instructed], instructed, -1, _INSTRUCTED),
        ]
    if credit_converted:
        legs += [
            (positions[credit_ccy], credit_ccy, -1, credited),
            (positions[instructed], instructed, 1, _INSTRUCTED),
        ]
    legs.append((CREDITOR, credit_ccy, 1, credited))
    netted: dict[tuple[int | str, str, int], int] = {}
    for who, code, sign, which in legs:
        netted[who, code, which] = netted.get((who, code, which), 0) + sign
    # (Each amount appears once per account, so a netted leg moves it or nothing.)
    assert all(sign in (-1, 0, 1) for sign in netted.values())
    return tuple((who, code, sign, which) for (who, code, which), sign in netted.items() if sign)
