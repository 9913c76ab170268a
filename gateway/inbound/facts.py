"""What one transaction says on its own, before any rule looks at it (SPEC §6).

Worked out from the transaction, its payment information and the EndToEndIds before
it in the file — by the reading child beside the parse while it is ahead of the booking
process, else by the booking process as it takes the transactions (`reader.py`) — so
that the rules get each transaction with its `Facts`. Nothing here knows an account or
the database: the rules (`rules.py`) judge the facts against what the gateway knows.

The module is light on purpose: the reading child imports it (lxml and schwifty, no
database layer, no calendar).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from gateway.inbound.identifiers import bic_problem, iban_problem
from gateway.inbound.parsed import ParsedPmtInf, ParsedTx
from ledger import currency

NOT_PROVIDED = "NOTPROVIDED"
TREASURY_BANK_CODE = "TREL"


class Facts(NamedTuple):
    """What one transaction says on its own (and where it stands in its file), worked
    out once before the rules look at it."""

    amount_minor: int | None  # None: InstdAmt is not an amount of its currency
    amount_problem: str | None  # why not (AM12 or AM03)
    amount_sent: int | None  # InstdAmt as sent, when it can be echoed (zero included)
    iban_problem: str | None  # why CdtrAcct/IBAN is not a valid IBAN (AC01), if it is not
    bic_problem: str | None  # why CdtrAgt/BIC is malformed (RC01), if it is
    internal: bool  # the creditor is a treasury IBAN
    fingerprint: int | None  # the AM05 identity, when the payment can have one
    repeated: bool  # its EndToEndId came earlier in the file (not NOTPROVIDED)


def is_treasury_iban(iban: str) -> bool:
    return iban[:2] == "LV" and iban[4:8] == TREASURY_BANK_CODE


def fingerprint(debtor: str, creditor: str, amount_minor: int, ccy: str, e2e: str) -> int:
    """A payment's identity for AM05, as a signed 64-bit integer: indexing 100,000 new
    payments costs a third of what 32-character text would (two equal fingerprints of
    different payments are as likely as 1 in 10^19 per pair)."""
    raw = f"{debtor}|{creditor}|{amount_minor}|{ccy}|{e2e}".encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


# xs:date (ISODate): a calendar date, optionally with a time zone (`2026-12-15+02:00`,
# `2026-12-15Z`, as JAXB-based ERPs write them); the date is the day meant, whatever the zone.
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))?")


@lru_cache(maxsize=1024)
def parse_date(text: str) -> dt.date | None:
    """ReqdExctnDt as a date, if it is an ISODate (xs:date) of a day that exists."""
    found = _ISO_DATE.fullmatch(text)
    if found is None:
        return None
    try:
        return dt.date(*map(int, found.groups()))
    except ValueError:
        return None


def repeats(e2e_ids: Iterable[str], seen_e2e: set[str]) -> list[bool]:
    """Whether each of the transactions with these EndToEndIds repeats one that came
    earlier in the file (not NOTPROVIDED); `seen_e2e` carries the file's EndToEndIds
    along (and gets these)."""
    found = []
    for e2e in e2e_ids:
        found.append(e2e != NOT_PROVIDED and e2e in seen_e2e)
        seen_e2e.add(e2e)
    return found


def facts(tx: ParsedTx, pmt: ParsedPmtInf, repeated: bool) -> Facts:
    """What `tx` of `pmt` says on its own; `repeated`: whether its EndToEndId came earlier
    in the file (`repeats`)."""
    amount: int | None = None
    sent: int | None = None
    amount_problem = None
    try:
        amount = sent = currency.to_minor(tx.amount, tx.currency)
    except currency.AmountError as exc:
        amount_problem = str(exc)
        sent = _zero(tx.amount, tx.currency)
    iban = tx.creditor_iban
    e2e = tx.end_to_end_id
    print_ = None
    if amount is not None and iban is not None and pmt.debtor_iban and e2e != NOT_PROVIDED:
        print_ = fingerprint(pmt.debtor_iban, iban, amount, tx.currency, e2e)
    return Facts(
        amount,
        amount_problem,
        sent,
        iban_problem(iban) if iban is not None else None,
        bic_problem(tx.creditor_bic) if tx.creditor_bic is not None else None,
        iban is not None and is_treasury_iban(iban),
        print_,
        repeated,
    )


def _zero(text: str, ccy: str) -> int | None:
    """0 for a zero amount of the currency (refused, but echoed as sent), else None."""
    try:
        return 0 if currency.to_minor(text, ccy, allow_zero=True) == 0 else None
    except currency.AmountError:
        return None
