"""What the demo tells a newcomer about time (SPEC §2): the cut-offs, and what each sample
uploaded now will get — booked now (ACSC) or waiting (PDNG) until when, and why.

The answer is worked out with the gateway's own rule (`inbound.decide.Clock.due`, the
one the file run uses), never a copy of it. What it cannot know in advance is what the
ledger says at the time (funds, limits): the demo's accounts are funded for its samples.
The payments of `partly-invalid.xml` that are wrong on purpose are named with the
reason code they demonstrate; a payment in another currency than its account's waits
while the rates of the day are not stored (`pricing.price`, the run's own pricing, on the
rates the demo read). A test runs the real pipeline on the samples and holds every
line printed here to the answers it gives.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway import fx, pricing
from gateway.inbound import decide, facts
from gateway.reasons import Reason
from gateway.samples import SampleBatch, SampleTx
from gateway.settings import Settings
from gateway.statuses import TxStatus, derive
from gateway.text import time_of_day
from ledger import calendar, currency

# The sample payments that are wrong on purpose, and the reason each demonstrates.
REJECTED_ON_PURPOSE = {
    "PART-BAD-IBAN": Reason.AC01,
    "PART-ZERO": Reason.AM12,
    "PART-CURRENCY": Reason.AM03,
}


@dataclass(frozen=True, slots=True)
class Expected:
    """What the first answer to a sample upload says of one payment."""

    end_to_end_id: str
    internal: bool  # to a treasury account (the internal cut-off applies)
    status: TxStatus
    why: str | None  # PDNG: why it waits and when it executes; RJCT: the reason code
    executes: dt.date | None  # when it is booked: today (ACSC) or later (PDNG)


@dataclass(frozen=True, slots=True)
class Exchange:
    """What the demo knows for converting: each account's currency, today's rates."""

    currencies: Mapping[str, str]  # IBAN → currency, of the demo's accounts
    rates: fx.DayRates
    wait_days: int  # `fx_wait_days`

    def _sides(self, debtor_iban: str, tx: SampleTx) -> tuple[str, str]:
        """The currencies of the debtor's and the creditor's accounts."""
        return (self.currencies.get(debtor_iban, tx.currency),
                self.currencies.get(tx.creditor_iban, tx.currency))  # fmt: skip

    def converts(self, debtor_iban: str, tx: SampleTx) -> bool:
        debtor, creditor = self._sides(debtor_iban, tx)
        return not tx.currency == debtor == creditor

    def waits(self, debtor_iban: str, tx: SampleTx, due: dt.date) -> str | None:
        """Why a payment due now (on `due`) waits for a rate, and until when, if it does."""
        if not self.converts(debtor_iban, tx):
            return None
        debtor, creditor = self._sides(debtor_iban, tx)
        minor = currency.to_minor(tx.amount, tx.currency)
        priced = pricing.price(minor, tx.currency, debtor, creditor, self.rates)
        if not isinstance(priced, fx.NoRate):
            return None
        return fx.waiting_text(priced, due, self.wait_days)


def expected(
    settings: Settings,
    batches: Mapping[str, SampleBatch],
    now: dt.datetime,
    exchange: Exchange | None = None,
) -> dict[str, list[Expected]]:
    """Per sample, what each of its payments gets if the sample is uploaded at `now`."""
    local = now.astimezone(settings.timezone)
    clock = decide.Clock(
        local, local, settings.cutoff_internal, settings.cutoff_external, settings.eod_time
    )
    found: dict[str, list[Expected]] = {}
    for name, batch in batches.items():
        payments = found[name] = []
        for pmt in batch.payment_infos:
            requested = dt.date.fromisoformat(pmt.execution_date)
            for tx in pmt.transactions:
                internal = facts.is_treasury_iban(tx.creditor_iban)
                reason = REJECTED_ON_PURPOSE.get(tx.end_to_end_id)
                if reason is not None:
                    payments.append(
                        Expected(tx.end_to_end_id, internal, TxStatus.RJCT, reason.value, None)
                    )
                    continue
                due = clock.due(requested, internal)
                waits = (
                    exchange.waits(pmt.debtor_iban, tx, due.day) if exchange is not None else None
                )
                if not clock.now_or_later(due):
                    why = due.why
                    if exchange is not None and exchange.converts(pmt.debtor_iban, tx) and \
                            not exchange.rates.quotes:  # fmt: skip
                        why = f"{why}; then it waits for its exchange rate (none is stored yet)"
                    payments.append(
                        Expected(tx.end_to_end_id, internal, TxStatus.PDNG, why, due.day)
                    )
                elif waits is not None:
                    payments.append(
                        Expected(tx.end_to_end_id, internal, TxStatus.PDNG, waits, None)
                    )
                else:
                    payments.append(
                        Expected(tx.end_to_end_id, internal, TxStatus.ACSC, None, clock.today)
                    )
    return found


def _what(payment: Expected) -> str:
    if payment.status == TxStatus.ACSC:
        return "ACSC, booked now"
    if payment.status == TxStatus.RJCT:
        return f"RJCT {payment.why} (wrong on purpose)"
    return f"PDNG: {payment.why}"


def render(
    settings: Settings,
    batches: Mapping[str, SampleBatch],
    now: dt.datetime,
    exchange: Exchange | None = None,
    uploaded: Mapping[str, str] | None = None,
    path_text: Callable[[Path], str] = str,
) -> list[str]:
    """The lines the demo prints about time (pure: the test injects `now`). `uploaded`:
    the samples already uploaded (a reused demo), with what they were answered; `path_text`:
    how a path is printed."""
    local = now.astimezone(settings.timezone)
    day = local.date()
    kind = "a business day" if calendar.is_business_day(day) else "not a business day"
    lines = [
        f"Time: it is {local:%H:%M} on {local:%A} {day} in {settings.timezone} ({kind}).",
        f"Cut-offs: payments to a treasury account (internal) "
        f"{time_of_day(settings.cutoff_internal)}, to other banks (external) "
        f"{time_of_day(settings.cutoff_external)}; the day's books close "
        f"at {time_of_day(settings.eod_time)}. A payment due today that arrives later waits (PDNG) "
        "for the next business day.",
        "Uploaded now, the samples get:",
    ]
    if exchange is not None:
        rates = exchange.rates
        known = "stored" if rates.quotes else "not stored yet"
        lines[-1:-1] = [
            f"Rates: a payment in another currency than its account's executes at the ECB "
            f"rates of {rates.rate_date} ({known}; drop the ECB's eurofxref-daily.xml into "
            f"{path_text(settings.spool_dir / 'rates')}/ to add them)."
        ]
    for name, payments in expected(settings, batches, now, exchange).items():
        if uploaded and name in uploaded:
            lines.append(
                f"  {name}.xml: uploaded before ({uploaded[name]}): the same bytes again get "
                "that answer once more, and nothing executes again"
            )
            continue
        group = derive(Counter(p.status.value for p in payments))
        lines.append(f"  {name}.xml: {group.value}")
        shown: dict[str, list[str]] = {}
        for p in payments:
            kind = (
                "" if p.status == TxStatus.RJCT else " (internal)" if p.internal else " (external)"
            )
            label = p.end_to_end_id + kind
            shown.setdefault(_what(p), []).append(label)
        lines += [f"    {', '.join(labels)}: {what}" for what, labels in shown.items()]
    return lines
