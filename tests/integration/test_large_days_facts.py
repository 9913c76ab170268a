"""Large-payment days (SPEC §14) kept as facts, not read back from texts, on SQLite and
PostgreSQL: a payment held on its day that then waits for an exchange rate (its PDNG
text now names the rate) is still a held payment — it executes on its next day and is
not held a second time; and a batch waiting for signatures (SPEC §11) that arrived by
the deadline counts as announced for its day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from gateway import db
from gateway import migrations as gateway_migrations
from gateway.funding import fund
from gateway.rates import store
from gateway.testpki import Pki
from ledger import migrations as ledger_migrations
from ledger.engine import make_engine
from tests.pipeline_fixtures import (
    A_MAIN,
    A_SMALL,
    A_USD,
    CLIENT_A,
    RIGA,
    Batch,
    Installation,
    write_config,
)
from tests.rates_fixtures import some_days
from tests.signature_fixtures import configure, make_pki_files, signed

TUESDAY = dt.date(2024, 11, 19)
WEDNESDAY = dt.date(2024, 11, 20)
THURSDAY = dt.date(2024, 11, 21)
FRIDAY = dt.date(2024, 11, 22)


def at(day: dt.date, clock: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(clock), RIGA)


def import_rates(inst: Installation, first: dt.date, last: dt.date) -> None:
    days = {
        day: {code: Decimal(rate) for code, rate in rates.items()}
        for day, rates in some_days(first, last).items()
    }
    outcome = store.store(inst.env.engine, days, source="ecb", form="test", now=inst.clock.now())
    assert isinstance(outcome, store.Imported), outcome


def row_of(inst: Installation, e2e: str) -> sa.Row[tuple[str, str, dt.date]]:
    p = db.payments.c
    with inst.env.engine.connect() as conn:
        return conn.execute(
            sa.select(p.status, p.additional_info, p.due_date).where(p.end_to_end_id == e2e)
        ).one()


def test_a_held_payment_that_waits_for_a_rate_is_not_held_again(
    tmp_path: Path, database_url: str
) -> None:
    """Wednesday 14:00 the USD account pays 700,000.01 EUR, nothing announced: held for
    Thursday. Thursday 09:00 it is not held again but needs Wednesday's EUR/USD rate,
    which has not come: it waits, and a further pain.002 says so. At 10:00 650,000.00 EUR from
    the EUR account executes (the held one has not). At 11:00 the rate is there: the
    held payment executes — were it judged afresh it would take Thursday above the limit
    and be held a second time, to Friday."""
    now = at(WEDNESDAY, "14:00")
    inst = Installation.create(tmp_path / "gw", now=now, database_url=database_url)
    try:
        fund(inst.env, A_MAIN, "3000000.00", key="facts-eur")
        fund(inst.env, A_USD, "1000000.00", key="facts-usd")
        import_rates(inst, TUESDAY - dt.timedelta(days=7), TUESDAY)
        big = Batch(execution_date=WEDNESDAY.isoformat(), msg_id="LF-BIG", debtor=A_USD)
        answer = inst.submit(big.tx("HELD-FX", "700000.01").build(), name="big.xml")
        assert answer.statuses() == {"HELD-FX": "PDNG"}
        assert answer.tx("HELD-FX").additional_info == [
            f"large-payment day not announced by 12:30 on {TUESDAY}; executes {THURSDAY}"
        ]

        inst.clock.set(at(THURSDAY, "09:00"))
        inst.run()
        [waits] = inst.new_answers()  # still waiting, now for the rate: the client is told
        assert waits.statuses() == {"HELD-FX": "PDNG"}
        waiting = (
            f"no EUR/USD rate for {WEDNESDAY}: executes once it is stored, rejected if none by "
            f"the end of {FRIDAY}"
        )
        assert waits.tx("HELD-FX").additional_info == [waiting]
        assert row_of(inst, "HELD-FX") == ("PDNG", waiting, THURSDAY)

        inst.clock.set(at(THURSDAY, "10:00"))
        other = Batch(execution_date=THURSDAY.isoformat(), msg_id="LF-EUR")
        inst.drop(other.tx("SAME-DAY", "650000.00").build(), "eur.xml")
        inst.run()  # the new file, and the pending payments again
        statuses = {k: v for a in inst.new_answers() for k, v in a.statuses().items()}
        assert statuses == {"SAME-DAY": "ACSC"}  # HELD-FX is not held a second time
        assert row_of(inst, "HELD-FX") == ("PDNG", waiting, THURSDAY)

        import_rates(inst, WEDNESDAY, WEDNESDAY)
        usd = inst.balance(A_USD)
        inst.clock.set(at(THURSDAY, "11:00"))
        inst.run()
        [done] = inst.new_answers()
        assert done.statuses() == {"HELD-FX": "ACSC"}
        assert row_of(inst, "HELD-FX")[0] == "ACSC"
        assert inst.balance(A_USD) < usd
    finally:
        inst.close()


FRI, MON, TUE = dt.date(2026, 11, 13), dt.date(2026, 11, 16), dt.date(2026, 11, 17)


def signing(tmp_path: Path, database_url: str) -> tuple[Installation, Pki]:
    """Friday 11:00; A_SMALL (funded with 1,000,000.00) needs one signature."""
    base = tmp_path / "gw"
    config = write_config(base, database_url=database_url)
    when = at(FRI, "11:00").astimezone(dt.UTC)
    pki, files = make_pki_files(tmp_path / "pki", when)
    signatories = {"First": ("first", "first")}
    configure(config, files, client_id=CLIENT_A, iban=A_SMALL, level=1, signatories=signatories)
    inst = Installation.open(base, config, now=when, funded=False)
    fund(inst.env, A_MAIN, "3000000.00", key="facts-main")
    fund(inst.env, A_SMALL, "1000000.00", key="facts-small")
    return inst, pki


def wait(inst: Installation, e2e: str, amount: str, clock: str) -> bytes:
    """A_SMALL's batch for Monday, dropped at `clock` on Friday: it waits for a signature."""
    inst.clock.set(at(FRI, clock))
    data = Batch(execution_date=MON.isoformat(), msg_id=f"LF-{e2e}", debtor=A_SMALL)
    built = data.tx(e2e, amount).build()
    inst.drop(built, f"{e2e}.xml")
    inst.run()
    [answer] = inst.new_answers()
    assert answer.statuses() == {e2e: "PDNG"}
    assert "0 of 1 signature" in " ".join(answer.group_info)
    return built


def held_text() -> str:
    return f"large-payment day not announced by 12:30 on {FRI}; executes {TUE}"


def test_a_batch_awaiting_signatures_by_the_deadline_counts_as_announced(
    tmp_path: Path, database_url: str
) -> None:
    """Friday 11:00 A_SMALL's batch of 400,000.00 EUR for Monday arrives and waits for a
    signature: known to the treasury by Friday 12:30, it announces Monday. Friday 13:00
    another of 200,000.00 waits too, but arrived late: it announces nothing. On Monday
    (neither signed yet) A_MAIN's 1,100,000.00 EUR fits exactly within the 700,000.00
    threshold plus 400,000.00 announced; a cent more waits."""
    inst, _ = signing(tmp_path, database_url)
    try:
        wait(inst, "SIGN-EARLY", "400000.00", "11:00")
        wait(inst, "SIGN-LATE", "200000.00", "13:00")
        inst.clock.set(at(MON, "09:00"))
        main = Batch(execution_date=MON.isoformat(), msg_id="LF-M")
        answer = inst.submit(main.tx("FITS", "1100000.00").tx("OVER", "0.01").build())
        assert answer.statuses() == {"FITS": "ACSC", "OVER": "PDNG"}
        assert answer.tx("OVER").additional_info == [held_text()]
        with inst.env.engine.connect() as conn:
            states = conn.execute(sa.select(db.awaiting.c.state)).scalars().all()
        assert states == ["waiting", "waiting"]
    finally:
        inst.close()


def test_a_batch_signed_after_the_deadline_is_announced_once(
    tmp_path: Path, database_url: str
) -> None:
    """The batch that waited at the deadline is signed Friday 15:00: its payment is now
    pending for Monday (its file keeps its 11:00 arrival) and counts as such, not twice.
    Monday 08:00 it executes (400,000.00 of the 1,100,000.00 Monday may take); at 09:00
    700,000.00 more fits exactly and a cent more waits."""
    inst, pki = signing(tmp_path, database_url)
    try:
        data = wait(inst, "SIGN-EARLY", "400000.00", "11:00")
        inst.clock.set(at(FRI, "15:00"))
        inst.drop(signed("SIGN-EARLY.xml", data, pki.first, inst.clock.now()), "early.asice")
        inst.run()
        assert {s for a in inst.new_answers() for s in a.statuses().values()} == {"PDNG"}
        assert row_of(inst, "SIGN-EARLY")[::2] == ("PDNG", MON)
        inst.clock.set(at(MON, "08:00"))
        inst.run()
        [done] = inst.new_answers()
        assert done.statuses() == {"SIGN-EARLY": "ACSC"}
        inst.clock.set(at(MON, "09:00"))
        main = Batch(execution_date=MON.isoformat(), msg_id="LF-M")
        answer = inst.submit(main.tx("FITS", "700000.00").tx("OVER", "0.01").build())
        assert answer.statuses() == {"FITS": "ACSC", "OVER": "PDNG"}
        assert answer.tx("OVER").additional_info == [held_text()]
    finally:
        inst.close()


def test_the_upgrade_keeps_a_payment_held_before_it_held(
    tmp_path: Path, database_url: str
) -> None:
    """A database of revision 0008 with a payment held on Monday for Tuesday (known then
    only by its text) and one pending for another reason: after the upgrade the first
    was held on Monday, the second never was."""
    engine = make_engine(database_url)
    try:
        for package, head in ((ledger_migrations, None), (gateway_migrations, "0008")):
            assert package.__file__ is not None
            config = ledger_migrations.alembic_config(
                engine, Path(package.__file__).parent, package.VERSION_TABLE
            )
            command.upgrade(config, head or "head")
        with engine.begin() as conn:
            conn.execute(
                sa.insert(db.files).values(
                    id=1, client_id=CLIENT_A, sha256="ab", size_bytes=10, original_name="a.xml",
                    received_at=at(FRI, "14:00"), processed_at=at(FRI, "14:00"), msg_id="M",
                    accepted_msg_id="M", message="pain.001.001.03", group_status="ACCP",
                    nb_of_txs=2, reports=1,
                )
            )  # fmt: skip
            for seq, info, due in ((0, held_text(), TUE), (1, "after the cut-off", MON)):
                conn.execute(
                    sa.insert(db.payments).values(
                        file_id=1, seq=seq, pmt_seq=0, pmt_inf_id="P", msg_id="M",
                        batch_booking=True, end_to_end_id=f"E{seq}", amount_minor=1,
                        currency="EUR", due_date=due, kind="external", status="PDNG",
                        additional_info=info, report_no=1,
                    )
                )  # fmt: skip
        gateway_migrations.run_upgrade(engine)
        p = db.payments.c
        with engine.connect() as conn:
            held = conn.execute(sa.select(p.seq, p.large_day_held_on).order_by(p.seq)).all()
        assert [tuple(r) for r in held] == [(0, MON), (1, None)]
    finally:
        engine.dispose()
