"""10,000 payments between two treasury accounts: mock-bank 0.9 (PyPI `mock-bank`, the
nearest open-source peer) against `scan --once`, by turns.

mock-bank: a fresh server each turn (`mock-bank --port 0`, its database in memory, bank
time pinned to 09:00 of the execution date) holding the two accounts, the debtor funded;
the time runs from POSTing the file to `/payments` to the answer of
`POST /_mock/advance?days=1`. The server is started and the accounts made before the clock
starts. Ours: `scan --once` of the same file in a fresh copy of a funded SQLite
installation, process start included.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import installation, workday
from bench.bigfiles import Scan, scan
from bench.databases import SQLite
from bench.workloads import BIG_FILE_CLIENTS, DEBTOR, PEERS
from gateway import samples

MOCK_BANK = Path(sys.executable).with_name("mock-bank")
payments = 10_000
funds_minor = 10**12
request_seconds_max = 600
start_seconds_max = 30


@dataclass(frozen=True, slots=True)
class MockBankTurn:
    seconds: float
    status: str  # its file status, the payments it accepted and the sum it booked


@dataclass(frozen=True, slots=True)
class Comparison:
    mock_bank: list[MockBankTurn]
    ours: list[Scan]


class Unavailable(Exception):
    """mock-bank cannot be run here; the message says why."""


class MockBank:
    """A mock-bank server of our own, on a free loopback port."""

    def __init__(self, day: dt.date) -> None:
        if not MOCK_BANK.exists():
            raise Unavailable(f"{MOCK_BANK} not found (make bench installs mock-bank 0.9)")
        self.proc = subprocess.Popen(
            [str(MOCK_BANK), "--port", "0", "--clock", f"{day.isoformat()}T09:00"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        banner = self.proc.stderr.readline()  # "mock-bank 0.9.0 listening on http://…:PORT/ …"
        found = re.search(r"listening on (http://[^/\s]+)/", banner)
        if found is None:
            self.close()
            raise Unavailable(f"mock-bank did not start: {banner.strip() or 'no output'}")
        self.base = found.group(1)

    def call(self, method: str, path: str, body: bytes = b"", kind: str = "json") -> Any:
        request = urllib.request.Request(
            self.base + path, data=body or None, method=method,
            headers={"Content-Type": f"application/{kind}"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=request_seconds_max) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise Unavailable(f"mock-bank answered {method} {path} with {exc.code}: "
                              f"{exc.read()[:500]!r}") from exc  # fmt: skip

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(start_seconds_max)


def mock_bank_turn(document: bytes, day: dt.date) -> MockBankTurn:
    bank = MockBank(day)
    try:
        for name, iban, balance in (("DEBTOR", DEBTOR, funds_minor), ("CREDITOR", PEERS[0], 0)):
            account = {"id": name, "iban": iban, "balance": balance}
            bank.call("POST", "/_mock/accounts", json.dumps(account).encode())
        started = time.perf_counter()
        answer = bank.call("POST", "/payments", document, kind="xml")
        bank.call("POST", "/_mock/advance?days=1")
        elapsed = time.perf_counter() - started
        debited = funds_minor - bank.call("GET", "/_mock/accounts/DEBTOR")["balance"]
    finally:
        bank.close()
    booked = f"{answer['accepted']:,} accepted, {debited / 100:,.2f} EUR booked"
    return MockBankTurn(elapsed, f"{answer['status']} ({booked})")


def measure(turns: int, folder: Path) -> Comparison:
    """By turns: mock-bank, ours, mock-bank, ours, …"""
    day = workday.today()
    folder.mkdir(parents=True, exist_ok=True)
    sample = folder / f"transfers-{payments}.xml"
    batch = samples.transfers(DEBTOR, PEERS[0], payments, msg_id="MB-10000", execution_date=day)
    sample.write_bytes(samples.to_bytes(batch))
    sqlite = SQLite()
    template = installation.prepare(
        folder / "template", sqlite, "transfers", BIG_FILE_CLIENTS, {DEBTOR: "1000000"}
    )
    result = Comparison([], [])
    for turn in range(1, turns + 1):
        result.mock_bank.append(mock_bank_turn(sample.read_bytes(), day))
        result.ours.append(scan(template, sqlite, folder / f"transfers_{turn}", sample))
    installation.remove(template, sqlite)
    sample.unlink()
    return result
