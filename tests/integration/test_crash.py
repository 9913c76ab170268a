"""Killing the gateway at any moment loses nothing and pays nothing twice (SPEC §7).

A real `ekase-gateway scan --once` process works through many uploads while the test
kills it with SIGKILL after random delays and starts it again, until a run finishes
on its own. Afterwards every upload has exactly one final answer in `out/` (sealed),
nothing is left in `in/` or `work/`, every booked payment was posted exactly once
(the ledger's postings per account equal what the answers report as booked), and the
ledger's invariants hold.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bench import workday
from gateway.environment import Environment, open_environment
from gateway.samples import SampleBatch, SamplePmtInf, SampleTx, iban_lv, to_bytes
from gateway.settings import load
from ledger.core import AccountKind
from ledger.schema import transfers
from tests.pipeline_fixtures import (
    A_MAIN,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    EXTERNAL_BIC,
    FUNDS,
    Answer,
    Installation,
)

REPO = Path(__file__).resolve().parents[2]
GATEWAY = REPO / ".venv" / "bin" / "ekase-gateway"
FILES = 40
KILLS_MAX = 25
TIME_BUDGET_SECONDS = 45.0


def make_files(rng: random.Random, day: str) -> dict[str, tuple[str, bytes, dict[str, Payment]]]:
    """MsgId -> (client, bytes, payments by EndToEndId). A few payments are invalid (AM12)
    and one file has a wrong CtrlSum (rejected whole), so not everything books."""
    files = {}
    for n in range(FILES):
        client, debtor = (CLIENT_B, B_MAIN) if n % 5 == 4 else (CLIENT_A, A_MAIN)
        msg_id = f"CRASH-{n:03d}"
        count = rng.randint(200, 1000) if client == CLIENT_A else rng.randint(50, 100)
        payments: dict[str, Payment] = {}
        txs = []
        for k in range(count):
            e2e = f"{msg_id}-{k:04d}"
            # No account can run short, whatever is drawn: at most 32 files x 1,000 x
            # 3.00 EUR from A (100,000.00), 8 x 100 x 1.20 EUR from B (1,000.00).
            cents = 0 if k % 97 == 13 else rng.randint(1, 120 if client == CLIENT_B else 300)
            if client == CLIENT_A and k % 10 == 3:
                creditor, bic = B_MAIN, None  # internal: credited to client B's account
            else:
                creditor, bic = iban_lv("HABA", n * 1000 + k), EXTERNAL_BIC
            txs.append(
                SampleTx(e2e, f"{cents // 100}.{cents % 100:02d}", creditor, creditor_bic=bic)
            )
            payments[e2e] = Payment(debtor, creditor, cents)
        total = sum(p.cents for p in payments.values())
        ctrl = total + (1 if n == 7 else 0)  # file 7: CtrlSum off by a cent -> AM10
        batch = SampleBatch(
            msg_id=msg_id,
            nb_of_txs=str(count),
            ctrl_sum=f"{ctrl // 100}.{ctrl % 100:02d}",
            payment_infos=[
                SamplePmtInf(
                    pmt_inf_id=f"{msg_id}-P1",
                    debtor_iban=debtor,
                    transactions=txs,
                    execution_date=day,
                )
            ],
        )
        files[msg_id] = (client, to_bytes(batch), payments)
    return files


class Payment:
    __slots__ = ("cents", "creditor", "debtor")

    def __init__(self, debtor: str, creditor: str, cents: int) -> None:
        self.debtor, self.creditor, self.cents = debtor, creditor, cents


def scan(config: Path, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(GATEWAY), "scan", "-c", str(config), "--once"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=environment,
    )


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_pays_nothing_twice(tmp_path: Path) -> None:
    """Operators may lose the process at any instant (power, OOM killer, kill -9): after
    restarts, each upload is answered exactly once and each payment is booked once."""
    assert GATEWAY.exists(), f"{GATEWAY} missing: install the package into .venv"
    seed = int(os.environ.get("EKASE_CRASH_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    # The scans run on a business morning whatever day it is (the bench's pinned clock,
    # one pin for every restart), and the payments are dated that day: what is killed
    # is always booking them. The cut-offs and the end of day are at the last second.
    moment = workday.morning()
    environment = workday.pinned(moment)
    late = "23:59:59"
    inst = Installation.create(
        tmp_path / "gw", cutoff_internal=late, cutoff_external=late, eod_time=late
    )
    config = inst.config
    spool = inst.env.spool
    inst.close()

    day = moment.date().isoformat()
    files = make_files(rng, day)
    for n, (msg_id, (client, data, _)) in enumerate(files.items()):
        target = spool.inbox(client) / f"{n:03d}-{msg_id}.xml"
        tmp = target.with_name("." + target.name + ".part")
        tmp.write_bytes(data)
        tmp.rename(target)

    kills, clean, started = 0, False, time.monotonic()
    while not clean:
        elapsed = time.monotonic() - started
        assert elapsed < TIME_BUDGET_SECONDS * 2, f"no clean run after {kills} kills (seed {seed})"
        process = scan(config, environment)
        if kills < KILLS_MAX and elapsed < TIME_BUDGET_SECONDS:
            try:
                # the first run is always cut short, however fast the machine
                process.wait(timeout=rng.uniform(0.25, 0.8 if kills == 0 else 1.5))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                kills += 1
                continue
        else:
            process.wait(timeout=120)
        stderr = process.stderr.read().decode() if process.stderr else ""
        tail = "\n".join(stderr.splitlines()[-12:])
        assert process.returncode == 0, f"scan failed (seed {seed}, {kills} kills):\n{tail}"
        clean = True
    assert kills > 0, f"the process was never killed (seed {seed}): make the files bigger"

    _check_outcome(config, files, seed)


def _check_outcome(
    config: Path, files: dict[str, tuple[str, bytes, dict[str, Payment]]], seed: int
) -> None:
    settings = load(config)
    env = open_environment(settings, need_sealer=False)
    try:
        spool = env.spool
        answers: dict[str, list[Answer]] = {}
        for client in (CLIENT_A, CLIENT_B):
            assert list(spool.inbox(client).iterdir()) == [], f"left in in/ (seed {seed})"
            assert list(spool.work(client).iterdir()) == [], f"left in work/ (seed {seed})"
            for path in sorted(spool.outbox(client).glob("*.xml")):
                assert path.with_name(path.name + ".sig").exists(), f"unsealed {path.name}"
                answer = Answer.read(path)
                answers.setdefault(answer.original_msg_id or "?", []).append(answer)
        assert sorted(answers) == sorted(files), f"answers for {sorted(answers)} (seed {seed})"
        per_file = {m: len(a) for m, a in answers.items() if len(a) != 1}
        assert per_file == {}, f"files with more than one answer: {per_file} (seed {seed})"

        expected: Counter[str] = Counter()
        booked = 0
        clearing = _clearing(env)
        for msg_id, (_, _, payments) in files.items():
            answer = answers[msg_id][0]
            if msg_id == "CRASH-007":
                assert answer.group_reasons == ["AM10"]
                continue
            statuses = answer.statuses()
            assert sorted(statuses) == sorted(payments), f"{msg_id}: not every payment listed"
            for e2e, status in statuses.items():
                payment = payments[e2e]
                if payment.cents == 0:
                    assert status == "RJCT"
                    continue
                assert status in ("ACSC", "PDNG"), (msg_id, e2e, status, answer.tx(e2e))
                if status == "ACSC":
                    booked += 1
                    expected[payment.debtor] -= payment.cents
                    internal = payment.creditor == B_MAIN
                    expected[payment.creditor if internal else clearing] += payment.cents

        # Batch-booked payments share a transfer, so count postings by account, not
        # transfers: every account must hold exactly its funding plus what was booked.
        with env.engine.connect() as conn:
            transfers_booked = conn.execute(
                select(func.count()).select_from(transfers).where(transfers.c.kind != "funding")
            ).scalar_one()
        assert transfers_booked <= booked
        assert transfers_booked > 0, "nothing was booked on a business day"
        funded = {iban: int(amount.replace(".", "")) for iban, amount in FUNDS.items()}
        for account in env.ledger.all_accounts():
            if account.kind.value == "funding":
                continue
            want = funded.get(account.iban, 0) + expected[account.iban]
            assert account.balance_minor == want, (account.iban, account.balance_minor, want)
        env.ledger.check_invariants()

        _check_shelves(spool.root, seed)
    finally:
        env.close()


def _clearing(env: Environment) -> str:
    with env.ledger.begin() as tx:
        account = tx.system_account(AccountKind.CLEARING, "EUR")
    assert account is not None
    return str(account.iban)


def _check_shelves(root: Path, seed: int) -> None:
    """Each upload lies exactly once in archive/ or rejected/, with its findings file
    beside it, and an accepted one with its seal."""
    originals: Counter[str] = Counter()
    missing = []
    for shelf in ("archive", "rejected", "duplicates"):
        for path in sorted((root / shelf).glob("*/*/*")):
            if path.name.startswith(".") or path.name.endswith(
                (".findings.txt", ".sig", ".receipt.json")
            ):
                continue
            originals[shelf] += 1
            beside = [path.name + ".findings.txt"] + (
                [path.name + ".sig"] if shelf == "archive" else []
            )
            missing += [n for n in beside if not path.with_name(n).exists()]
    assert originals == {"archive": FILES - 1, "rejected": 1}, (originals, seed)
    assert missing == [], f"missing beside the originals: {missing} (seed {seed})"
