"""The SPEC §10 workloads: the installations to process them in, and their files.

- payroll: `BtchBookg` true, every creditor at a commercial bank, verbose records;
- erp: `BtchBookg` false, half the creditors treasury accounts (of another client),
  lean records;
- erp-coded: the same run from a budget account, each payment split over two EKK codes
  (SPEC §12), measured against erp for what the codes cost;
- small files: 50 clients of one account each, whose files are 20 payments of an ERP run,
  the internal half paid to the other clients (bench/smallfiles.py);
- transfers: payments between two treasury accounts, the file mock-bank reads too
  (bench/mockbank.py).

The bench and the paired comparison of two source trees use these, so a file and its
installation are made the same way wherever they are measured.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway import samples

SQLITE_URL = "sqlite:///spool/ledger.sqlite3"
DEBTOR = samples.iban_lv("TREL", 9_100_000_000_001)
PEERS = [samples.iban_lv("TREL", 9_200_000_000_000 + n) for n in range(50)]
WORKLOADS = ("payroll", "erp")
CLASSIFIER = Path(__file__).resolve().parent.parent / "gateway" / "data" / "classification.csv"


@dataclass(frozen=True, slots=True)
class Client:
    """A client of the installation: its id (and `<id>-erp`, its system user) and accounts."""

    id: str
    ibans: tuple[str, ...]
    budget: tuple[str, ...] = ()  # its budget accounts (SPEC §12)
    daily_limit: str | None = None  # of each of its accounts

    @property
    def registration_number(self) -> str:
        """Eleven digits of its own: its first account number's two leading and nine last."""
        number = self.ibans[0][-13:]
        return number[:2] + number[-9:]


# One paying client and one with 50 accounts to be paid.
BIG_FILE_CLIENTS = (Client("bench", (DEBTOR,)), Client("peers", tuple(PEERS)))
# The same, the paying account a budget account (erp-coded).
BUDGET_CLIENTS = (Client("bench", (DEBTOR,), (DEBTOR,)), Client("peers", tuple(PEERS)))
# The same, the paying account with a daily limit far above a day's payments (busy day:
# the limit is judged against the day's debits, which it must read).
LIMITED_CLIENTS = (
    Client("bench", (DEBTOR,), daily_limit="1000000000.00"), Client("peers", tuple(PEERS))
)
SMALL_FILE_CLIENTS = tuple(
    Client(f"c{n:02d}", (samples.iban_lv("TREL", 9_300_000_000_000 + n),)) for n in range(1, 51)
)


def _client_table(client: Client) -> str:
    accounts = "".join(
        f'\n  [[client.account]]\n  iban = "{iban}"\n  currency = "EUR"'
        + ("\n  budget = true" if iban in client.budget else "")
        + (f'\n  daily_limit = "{client.daily_limit}"' if client.daily_limit else "")
        for iban in client.ibans
    )
    return f"""
[[client]]
id = "{client.id}"
name = "Institution {client.id}"
registration_number = "{client.registration_number}"{accounts}
  [[client.user]]
  name = "{client.id}-erp"
  kind = "system"
  mode = "manage"
  authorized_keys = "keys/bench.authorized"
"""


def write_config(
    folder: Path,
    database_url: str = SQLITE_URL,
    clients: Sequence[Client] = BIG_FILE_CLIENTS,
) -> Path:
    """An installation of `clients` whose day never closes (cut-offs and end of day at
    23:59:59), so the files book whenever run; its SFTP server on a free loopback port."""
    keys = folder / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    pub = keys / "bench.pub"
    if not pub.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "bench")], check=True
        )
    authorized = keys / "bench.authorized"
    authorized.write_text(f'from="127.0.0.1" {pub.read_text()}')
    config = folder / "gateway.toml"
    classification = ""
    if any(c.budget for c in clients):
        shutil.copy(CLASSIFIER, folder / "classification.csv")
        classification = 'classification = "classification.csv"'
    config.write_text(
        f"""
[gateway]
spool_dir = "spool"
database_url = "{database_url}"
max_transactions = 2000000
max_file_bytes = 1073741824
cutoff_external = "23:59:59"
cutoff_internal = "23:59:59"
eod_time = "23:59:59"
{classification}
# A run of 100,000 payments is far above a large-payment day (SPEC §14): it would
# mostly wait for the next business day. The bench measures booking, not that rule.
large_day_threshold = "1000000000000.00"

[sftp]
listen = "127.0.0.1:0"

[signing]
key = "signing/gateway.key"
certificate = "signing/gateway.crt"
"""
        + "".join(_client_table(client) for client in clients)
    )
    return config


def write_sample(workload: str, count: int, path: Path, day: dt.date) -> None:
    """The workload's file of `count` payments, executing on `day`."""
    if workload == "payroll":
        batch = samples.payroll(DEBTOR, count, execution_date=day, msg_id=f"BENCH-{count}")
    elif workload in ("erp", "erp-coded"):
        batch = samples.erp_run(
            DEBTOR, count, PEERS, execution_date=day, msg_id=f"ERP-{count}",
            coded=workload == "erp-coded",
        )  # fmt: skip
    else:
        raise ValueError(f"unknown workload {workload!r}")
    with open(path, "wb") as out:
        samples.write(batch, out)


def clients_for(workload: str) -> tuple[Client, ...]:
    return BUDGET_CLIENTS if workload == "erp-coded" else BIG_FILE_CLIENTS
