"""SIGKILL while signatures arrive (SPEC §11): no signature is lost and no batch executes
twice.

Batches debiting a two-level account arrive with both signatories' containers (in any
order: a container may come first and be the submission itself). A real `scan --once` is
killed after random delays and started again until a run ends on its own. Then every
batch has executed exactly once (one final answer, each payment booked once), each has
exactly its two signatures recorded, and nothing is left in in/, work/ or awaiting/.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import func, select

from bench import workday
from gateway import db
from gateway.environment import open_environment
from gateway.funding import fund
from gateway.samples import SampleBatch, SamplePmtInf, SampleTx, iban_lv, to_bytes
from gateway.settings import load
from tests.pipeline_fixtures import (
    A_MAIN,
    CLIENT_A,
    EXTERNAL_BIC,
    FUNDS,
    Answer,
    make_signing_key,
    write_config,
)
from tests.signature_fixtures import configure, make_pki_files, signed

REPO = Path(__file__).resolve().parents[2]
GATEWAY = REPO / ".venv" / "bin" / "ekase-gateway"
BATCHES = 16
PAYMENTS = 500
KILLS_MAX = 15
TIME_BUDGET_SECONDS = 30.0


def _batch(msg_id: str, day: str) -> bytes:
    txs = [
        SampleTx(f"{msg_id}-{n}", "0.01", iban_lv("HABA", 10_000 + n), creditor_bic=EXTERNAL_BIC)
        for n in range(PAYMENTS)
    ]
    total = f"{PAYMENTS / 100:.2f}"
    pmt = SamplePmtInf(
        pmt_inf_id=f"{msg_id}-P", debtor_iban=A_MAIN, transactions=txs, execution_date=day,
        nb_of_txs=str(PAYMENTS), ctrl_sum=total,
    )  # fmt: skip
    return to_bytes(SampleBatch(msg_id=msg_id, payment_infos=[pmt], nb_of_txs=str(PAYMENTS),
                                ctrl_sum=total))  # fmt: skip


def test_sigkill_while_signatures_arrive(tmp_path: Path, database_url: str) -> None:
    seed = int(os.environ.get("EKASE_CRASH_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    late = "23:59:59"
    config = write_config(
        tmp_path / "gw", cutoff_internal=late, cutoff_external=late, eod_time=late,
        database_url=database_url,
    )  # fmt: skip
    # The scans run on a business morning whatever day it is (the bench's pinned clock,
    # one pin for every restart): a batch complete with its signatures always executes.
    moment = workday.morning()
    environment = workday.pinned(moment)
    now = moment.astimezone(dt.UTC)
    pki, files = make_pki_files(tmp_path / "pki", now)
    configure(
        config, files, client_id=CLIENT_A, iban=A_MAIN, level=2,
        signatories={"First": ("first", "first"), "Second": ("second", "second")},
    )  # fmt: skip
    settings = load(config)
    make_signing_key(settings)
    env = open_environment(settings, need_sealer=False)
    try:
        for iban, amount in FUNDS.items():
            fund(env, iban, amount, key=f"setup:{iban}")
    finally:
        env.close()
    inbox = settings.spool_dir / "clients" / CLIENT_A / "in"
    day = moment.date().isoformat()
    uploads = []
    for n in range(BATCHES):
        msg_id = f"SIGN-{n:02d}"
        data = _batch(msg_id, day)
        uploads += [(f"{msg_id}.xml", data),
                    (f"{msg_id}-first.asice", signed(f"{msg_id}.xml", data, pki.first, now)),
                    (f"{msg_id}-second.asice", signed(f"{msg_id}.xml", data, pki.second, now))]
    rng.shuffle(uploads)
    for name, data in uploads:
        tmp = inbox / f".{name}.part"
        tmp.write_bytes(data)
        tmp.rename(inbox / name)

    kills, started = 0, time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        assert elapsed < TIME_BUDGET_SECONDS * 3, f"no clean run after {kills} kills (seed {seed})"
        process = subprocess.Popen(
            [str(GATEWAY), "scan", "-c", str(config), "--once"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            env=environment,
        )  # fmt: skip
        if kills < KILLS_MAX and elapsed < TIME_BUDGET_SECONDS:
            try:
                process.wait(timeout=rng.uniform(0.2, 0.8 if kills == 0 else 1.2))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                kills += 1
                continue
        else:
            process.wait(timeout=180)
        stderr = process.stderr.read().decode() if process.stderr else ""
        assert process.returncode == 0, f"scan failed (seed {seed}):\n{stderr[-2000:]}"
        break
    assert kills > 0, f"never killed (seed {seed})"
    print(f"{kills} kills (seed {seed})")
    _check(settings.config_path, seed)


def _check(config: Path, seed: int) -> None:
    settings = load(config)
    env = open_environment(settings, need_sealer=False)
    try:
        spool = env.spool
        assert list(spool.inbox(CLIENT_A).iterdir()) == [], seed
        assert list(spool.work(CLIENT_A).iterdir()) == [], seed
        awaiting = settings.spool_dir / "awaiting" / CLIENT_A
        assert [p for p in awaiting.iterdir() if not p.name.startswith(".")] == [], seed
        # One final report per batch; a plain upload after its own container executed
        # gets that report again (same bytes, same MsgId: SPEC §6), not a second run.
        finals: dict[str, set[str | None]] = {}
        for path in sorted(spool.outbox(CLIENT_A).glob("*.xml")):
            answer = Answer.read(path)
            # the batch's own reports list its payments; the completing container's answer
            # gives the group's status alone
            if answer.group_status != "PDNG" and answer.statuses():
                finals.setdefault(answer.original_msg_id or "?", set()).add(answer.msg_id)
                assert set(answer.statuses().values()) == {"ACSC"}, (path.name, seed)
        counts = {m: len(ids) for m, ids in finals.items()}
        assert counts == {f"SIGN-{n:02d}": 1 for n in range(BATCHES)}, (counts, seed)
        with env.engine.connect() as conn:
            states = conn.execute(select(db.awaiting.c.state)).scalars().all()
            assert states == ["executed"] * BATCHES, (states, seed)
            s = db.signatures.c
            per_batch = conn.execute(
                select(s.awaiting_id, func.count(), func.min(s.signatory), func.max(s.signatory))
                .where(s.reason.is_(None))
                .group_by(s.awaiting_id)
            ).all()
            assert sorted(r[1:] for r in per_batch) == [(2, "First", "Second")] * BATCHES, seed
            total = conn.execute(select(func.count()).select_from(db.signatures)).scalar()
            assert total == 2 * BATCHES, (total, seed)
            p = db.payments.c
            booked = conn.execute(
                select(func.count()).where(p.status == "ACSC", p.msg_id.like("SIGN-%"))
            ).scalar()
            assert booked == BATCHES * PAYMENTS, (booked, seed)
    finally:
        env.close()
