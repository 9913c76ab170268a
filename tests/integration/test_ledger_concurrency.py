"""Several processes posting to the same account at once: the ledger's locking under load.

Each worker is a separate OS process (multiprocessing, spawn) with its own engine,
as two daemons on one database would be. The debtor's balance covers only some of
the transfers they try, so the database must decide, under its locks, which fit.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from ledger.core import AccountKind, Refusal, Transfer, TransferKind
from ledger.engine import make_engine
from ledger.store import AccountSpec, Ledger, upgrade

DAY = dt.date(2026, 11, 25)
BOOKED_AT = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
WORKERS = 4
TRANSFERS_PER_WORKER = 60
FUNDED = 10_000
OVERDRAFT = 1_000
SOURCE, SHARED_SINK, FUND = "LV00CONC0000000000001", "LV00CONC0000000000002", "LV00CONCFUND"
worker_seconds_max = 120


def own_sink(worker: int) -> str:
    return f"LV00CONCSINK{worker:04d}"


def _request(key: str, debit: str, credit: str, amount: int) -> Transfer:
    return Transfer.between(
        idempotency_key=key,
        reference=key,
        kind=TransferKind.INTERNAL,
        debit_iban=debit,
        credit_iban=credit,
        currency="EUR",
        amount_minor=amount,
        booking_date=DAY,
        value_date=DAY,
    )


def _worker(url: str, worker: int, barrier: Any, results: Any) -> None:
    """One process: its own engine, then many transfers from the shared source account."""
    ledger = Ledger(make_engine(url))
    rng = random.Random(worker)
    outcomes: list[tuple[str, str, int, int | None, str | None]] = []
    try:
        barrier.wait(timeout=worker_seconds_max)
        for number in range(TRANSFERS_PER_WORKER):
            # Alternate between a sink every worker shares and this worker's own one.
            sink = SHARED_SINK if number % 2 else own_sink(worker)
            amount = rng.randint(50, 150)
            key = f"w{worker}-{number}"
            transfer_id, refusal = ledger.transfer(_request(key, SOURCE, sink, amount), BOOKED_AT)
            outcomes.append((key, sink, amount, transfer_id, refusal.value if refusal else None))
        results.put((worker, outcomes, None))
    except Exception as exc:  # report the fault to the parent instead of dying silently
        results.put((worker, outcomes, repr(exc)))
    finally:
        ledger.engine.dispose()


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return _sqlite_url(tmp_path)
    return str(request.getfixturevalue("pg_url"))


def test_concurrent_writers_never_overdraw_or_lose_postings(shared_url: str) -> None:
    """Two daemons booking against the same account at the same moment never take it below
    minus its overdraft, never lose a booking, and refuse only what did not fit."""
    engine = make_engine(shared_url)
    upgrade(engine)
    ledger = Ledger(engine)
    ledger.ensure_accounts(
        [
            AccountSpec(iban=FUND, currency="EUR", owner="treasury", kind=AccountKind.FUNDING),
            AccountSpec(iban=SOURCE, currency="EUR", owner="a", overdraft_minor=OVERDRAFT),
            AccountSpec(iban=SHARED_SINK, currency="EUR", owner="b"),
            *(AccountSpec(iban=own_sink(w), currency="EUR", owner="b") for w in range(WORKERS)),
        ]
    )
    assert ledger.transfer(_request("fund", FUND, SOURCE, FUNDED), BOOKED_AT)[1] is None

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(shared_url, w, barrier, results))
        for w in range(WORKERS)
    ]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=worker_seconds_max) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=worker_seconds_max)
            if process.is_alive():
                process.kill()
    faults = [(worker, fault) for worker, _, fault in reports if fault]
    assert not faults, faults
    outcomes = [outcome for _, worker_outcomes, _ in reports for outcome in worker_outcomes]
    assert len(outcomes) == WORKERS * TRANSFERS_PER_WORKER

    booked = [
        (key, sink, amount, tid) for key, sink, amount, tid, refusal in outcomes if not refusal
    ]
    refused = [(amount, refusal) for _, _, amount, _, refusal in outcomes if refusal]
    assert booked and refused, "the scenario must both book and refuse"
    assert {refusal for _, refusal in refused} == {Refusal.INSUFFICIENT_FUNDS.value}
    assert len({tid for *_, tid in booked}) == len(booked), "every booking has its own transfer"

    balance, _ = ledger.balance(SOURCE)
    assert balance == FUNDED - sum(amount for _, _, amount, _ in booked)
    assert balance >= -OVERDRAFT
    # The source only ever loses money, so whatever was refused still does not fit at the end.
    assert all(amount > balance + OVERDRAFT for amount, _ in refused)
    for sink in [SHARED_SINK, *(own_sink(w) for w in range(WORKERS))]:
        assert ledger.balance(sink)[0] == sum(a for _, s, a, _ in booked if s == sink), sink

    with engine.connect() as conn:
        postings, transfers = conn.execute(
            text(
                "SELECT COUNT(p.id), COUNT(DISTINCT t.id) FROM ledger_transfers t "
                "JOIN ledger_postings p ON p.transfer_id = t.id "
                "WHERE t.idempotency_key LIKE 'w%'"
            )
        ).one()
    assert (postings, transfers) == (2 * len(booked), len(booked))
    ledger.check_invariants()
    engine.dispose()


def test_concurrent_replay_of_one_key_returns_the_original(pg_url: str) -> None:
    """When two daemons retry the same transfer at the same moment on PostgreSQL, it is booked
    once and both are told the same transfer id (neither gets a database error)."""
    engine = make_engine(pg_url)
    upgrade(engine)
    ledger = Ledger(engine)
    ledger.ensure_accounts(
        [
            AccountSpec(iban=FUND, currency="EUR", owner="treasury", kind=AccountKind.FUNDING),
            AccountSpec(iban=SOURCE, currency="EUR", owner="a"),
            AccountSpec(iban=SHARED_SINK, currency="EUR", owner="b"),
        ]
    )
    assert ledger.transfer(_request("fund", FUND, SOURCE, FUNDED), BOOKED_AT)[1] is None
    request = _request("retry-me", SOURCE, SHARED_SINK, 700)
    application = f"replay-{uuid.uuid4().hex[:12]}"
    racer_url = f"{pg_url}&application_name={application}"
    answers: list[object] = []

    def racer() -> None:
        racer_engine = make_engine(racer_url)
        try:
            answers.append(Ledger(racer_engine).transfer(request, BOOKED_AT))
        except Exception as exc:
            answers.append(exc)
        finally:
            racer_engine.dispose()

    # Hold the source account's row lock so that both retries are in flight at once.
    holder = create_engine(pg_url)
    watcher = create_engine(pg_url.split("?")[0])
    threads = [threading.Thread(target=racer) for _ in range(2)]
    with holder.begin() as conn:
        conn.execute(
            text("SELECT id FROM ledger_accounts WHERE iban = :iban FOR UPDATE"), {"iban": SOURCE}
        )
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with watcher.connect() as watch:
                waiting = watch.execute(
                    text(
                        "SELECT COUNT(*) FROM pg_stat_activity "
                        "WHERE application_name = :app AND wait_event_type = 'Lock'"
                    ),
                    {"app": application},
                ).scalar_one()
            if waiting == 2:
                break
            time.sleep(0.02)
        assert waiting == 2, "both retries should be waiting for the account lock"
    for thread in threads:
        thread.join(timeout=30)
    holder.dispose()
    watcher.dispose()

    assert len(answers) == 2
    assert not [a for a in answers if isinstance(a, Exception)], answers
    assert answers[0] == answers[1]
    assert ledger.balance(SOURCE) == (FUNDED - 700, "EUR")
    assert len(ledger.entries(SHARED_SINK, DAY)) == 1
    ledger.check_invariants()
    engine.dispose()
