"""Debit/credit notifications (camt.054, SPEC §8): a client with `notifications = true`
learns of every execution run that touched its accounts, one file per account per run,
with exactly that run's entries; others get none, and nobody gets another's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.samples import SamplePmtInf, SampleTx
from tests.integration.test_statements import (
    CAMT053,
    CAMT054,
    DMCT_SENT,
    ESCT,
    CamtReport,
    Validate,
    camt_files,
    close_day,
    read_camt,
    refs,
    riga,
)
from tests.pipeline_fixtures import (
    A_MAIN,
    A_SMALL,
    A_USD,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    EXTERNAL,
    EXTERNAL_BIC,
    TODAY,
    Batch,
    Installation,
    write_config,
)

TOMORROW = dt.date(2026, 11, 26)


def create_with_notifications(base: Path) -> Installation:
    """The standard two-client installation, with `notifications = true` for client A only."""
    config = write_config(base)
    marker = 'registration_number = "90000000001"'
    source = config.read_text(encoding="utf-8")
    assert source.count(marker) == 1
    config.write_text(source.replace(marker, f"{marker}\nnotifications = true"), "utf-8")
    inst = Installation.open(base, config)
    assert [c.notifications for c in inst.settings.clients] == [True, False]
    return inst


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("notify-template")
    create_with_notifications(base).close()
    return base


@pytest.fixture
def inst(template: Path, tmp_path: Path) -> Iterator[Installation]:
    installation = Installation.copy_of(template, tmp_path / "gw")
    yield installation
    installation.close()


class Seen:
    """camt.054 files that appeared in a client's out/ since the last look."""

    def __init__(self, inst: Installation, validate: Validate) -> None:
        self.inst = inst
        self.validate = validate
        self.known: set[Path] = set()

    def new(self, client: str = CLIENT_A) -> list[CamtReport]:
        fresh = [p for p in camt_files(self.inst, CAMT054, client) if p not in self.known]
        self.known.update(fresh)
        for path in fresh:
            self.validate(path, CAMT054)
        return [read_camt(p) for p in fresh]


def transfers_booked_at(inst: Installation, iban: str, day: dt.date) -> set[str]:
    """References of the ledger transfers posted to the account on `day` (funding aside)."""
    with inst.env.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.reference FROM ledger_postings p "
                "JOIN ledger_transfers t ON t.id = p.transfer_id "
                "JOIN ledger_accounts a ON a.id = p.account_id "
                "WHERE a.iban = :iban AND p.booking_date = :day AND t.kind != 'funding'"
            ),
            {"iban": iban, "day": day},
        ).all()
    return {r[0] for r in rows}


def mixed_file() -> bytes:
    """Today: two batch-booked external payments and one internal from A_MAIN, a USD
    payment from A_USD; tomorrow: two external payments and one internal from A_MAIN."""
    later = SamplePmtInf(
        pmt_inf_id="MIX-P2",
        debtor_iban=A_MAIN,
        transactions=[
            SampleTx("T-1", "7.00", EXTERNAL, creditor_bic=EXTERNAL_BIC, remittance="Vēlāk 1"),
            SampleTx("T-2", "8.00", EXTERNAL, creditor_bic=EXTERNAL_BIC, remittance="Vēlāk 2"),
            SampleTx("T-3", "9.00", B_MAIN, remittance="Vēlāk iekšēji"),
        ],
        execution_date=TOMORROW.isoformat(),
        nb_of_txs="3",
        ctrl_sum="24.00",
    )
    dollars = SamplePmtInf(
        pmt_inf_id="MIX-P3",
        debtor_iban=A_USD,
        transactions=[SampleTx("U-1", "3.00", EXTERNAL, currency="USD", creditor_bic=EXTERNAL_BIC)],
        execution_date=TODAY.isoformat(),
        nb_of_txs="1",
        ctrl_sum="3.00",
    )
    return (
        Batch(msg_id="MIX", extra_pmts=[later, dollars])
        .tx("N-1", "10.00")
        .tx("N-2", "5.00")
        .tx("N-3", "3.00", creditor=B_MAIN)
        .build()
    )


def test_one_notification_per_account_per_run_with_exactly_that_runs_entries(
    inst: Installation, assert_valid: Validate
) -> None:
    """A client that asked for notifications gets, for the run that executed its file,
    one camt.054 per account touched holding exactly the entries booked in that run, and
    for the later run that executes the file's future-dated payments one more per
    account, holding only those; a pass with nothing executed sends nothing."""
    seen = Seen(inst, assert_valid)
    arrival = inst.submit(mixed_file())
    assert arrival.statuses() == {
        "N-1": "ACSC",
        "N-2": "ACSC",
        "N-3": "ACSC",
        "U-1": "ACSC",
        "T-1": "PDNG",
        "T-2": "PDNG",
        "T-3": "PDNG",
    }
    first = {n.iban: n for n in seen.new()}
    assert set(first) == {A_MAIN, A_USD}
    for iban, notification in first.items():
        got = {e.acct_svcr_ref for e in notification.entries}
        assert got == transfers_booked_at(inst, iban, TODAY), iban
        assert notification.owner == "Budžeta iestāde A"
    assert len(first[A_MAIN].entries) == 1  # the batch of N-1, N-2 and N-3 (SPEC §6)
    assert {d.end_to_end_id for d in first[A_MAIN].details()} == {"N-1", "N-2", "N-3"}
    assert {d.end_to_end_id for d in first[A_USD].details()} == {"U-1"}

    inst.clock.set(riga(TODAY, "14:00"))
    inst.run()
    assert seen.new() == [], "a pass that executed nothing notifies nothing"

    close_day(inst, TODAY)
    inst.clock.set(riga(TOMORROW, "09:00"))
    inst.run()
    second = seen.new()
    assert [n.iban for n in second] == [A_MAIN]
    (later,) = second
    assert {e.acct_svcr_ref for e in later.entries} == transfers_booked_at(inst, A_MAIN, TOMORROW)
    assert len(later.entries) == 1  # the batch of T-1, T-2 and T-3
    assert all(e.booking_date == TOMORROW and not e.credit for e in later.entries)
    assert later.seq == first[A_MAIN].seq + 1
    assert seen.new(CLIENT_B) == []


def test_notification_of_a_later_run_carries_payment_details_and_codes(
    inst: Installation, assert_valid: Validate
) -> None:
    """The notification of the run that executes future-dated payments tells the client
    which payments they were, like the arrival run's: the batch entry has a Btch and a
    TxDtls per payment with its AcctSvcrRef and EndToEndId; SEPA payments are ESCT and
    the internal one DMCT, and the entry of the mixed batch says OTHR."""
    seen = Seen(inst, assert_valid)
    inst.submit(mixed_file())
    seen.new()
    close_day(inst, TODAY)
    inst.clock.set(riga(TOMORROW, "09:00"))
    inst.run()
    executed = inst.new_answers()
    acct_refs = {}
    for answer in executed:
        acct_refs |= refs(answer)
    assert set(acct_refs) >= {"T-1", "T-2", "T-3"}
    (later,) = seen.new()
    (batch,) = later.entries
    assert batch.code == ("PMNT", "ICDT", "OTHR")
    assert batch.batch is not None and batch.batch[2] == 3
    assert {d.end_to_end_id: (d.acct_svcr_ref, d.code) for d in batch.details} == {
        "T-1": (acct_refs["T-1"], ESCT),
        "T-2": (acct_refs["T-2"], ESCT),
        "T-3": (acct_refs["T-3"], DMCT_SENT),
    }
    (internal,) = [d for d in batch.details if d.end_to_end_id == "T-3"]
    assert internal.counterparty_iban == B_MAIN


def test_clients_without_notifications_get_none_and_nobody_gets_anothers(
    inst: Installation, assert_valid: Validate
) -> None:
    """Client B (no `notifications`) gets no camt.054, not even when A's internal payment
    credits B's account or B pays A; A's notifications name only A's accounts; nothing
    of either lands in the other's out/."""
    seen = Seen(inst, assert_valid)
    inst.submit(mixed_file())
    b_pays = inst.submit(
        Batch(msg_id="B-PAYS", debtor=B_MAIN).tx("B-1", "6.00", creditor=A_SMALL).build(),
        client=CLIENT_B,
    )
    assert b_pays.group_status == "ACSC"
    inst.clock.set(riga(TOMORROW, "09:00"))
    inst.run()
    close_day(inst, TOMORROW)
    assert camt_files(inst, CAMT054, CLIENT_B) == []
    a_accounts = {a.iban for a in inst.settings.client(CLIENT_A).accounts}
    b_accounts = {a.iban for a in inst.settings.client(CLIENT_B).accounts}
    mine = seen.new()
    assert mine and {n.iban for n in mine} <= a_accounts
    # B's payment into A_SMALL is an execution touching A's account: A is told of it.
    small = [n for n in mine if n.iban == A_SMALL]
    assert len(small) == 1 and [e.credit for e in small[0].entries] == [True]
    assert small[0].details()[0].counterparty_iban == B_MAIN
    for client, own in ((CLIENT_A, a_accounts), (CLIENT_B, b_accounts)):
        for path in camt_files(inst, CAMT053, client) + camt_files(inst, CAMT054, client):
            assert read_camt(path).iban in own, (client, path.name)
