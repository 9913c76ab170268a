"""The SPEC §10 workloads: an installation to process each in, and its file.

- payroll: `BtchBookg` true, every creditor at a commercial bank, verbose records;
- erp: `BtchBookg` false, half the creditors treasury accounts (of another client),
  lean records.

Both the bench and the paired comparison of two source trees use these, so a file and
its installation are made the same way wherever they are measured.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from gateway import samples

DEBTOR = samples.iban_lv("TREL", 9_100_000_000_001)
PEERS = [samples.iban_lv("TREL", 9_200_000_000_000 + n) for n in range(50)]
WORKLOADS = ("payroll", "erp")


def write_config(folder: Path, database_url: str = "sqlite:///spool/ledger.sqlite3") -> Path:
    """An installation of one paying client and one with 50 accounts to be paid; its day
    never closes (cut-offs and end of day at 23:59:59), so the files book whenever run."""
    keys = folder / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    pub = keys / "bench.pub"
    if not pub.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "bench")], check=True
        )
    authorized = keys / "bench.authorized"
    authorized.write_text(f'from="127.0.0.1" {pub.read_text()}')
    peers = "".join(
        f'\n  [[client.account]]\n  iban = "{iban}"\n  currency = "EUR"' for iban in PEERS
    )
    config = folder / "gateway.toml"
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

[signing]
key = "signing/gateway.key"
certificate = "signing/gateway.crt"

[[client]]
id = "bench"
name = "Bench institution"
  [[client.account]]
  iban = "{DEBTOR}"
  currency = "EUR"
  [[client.user]]
  name = "bench-erp"
  kind = "system"
  mode = "manage"
  authorized_keys = "keys/bench.authorized"

[[client]]
id = "peers"
name = "Paid institution"{peers}
  [[client.user]]
  name = "peers-erp"
  kind = "system"
  mode = "manage"
  authorized_keys = "keys/bench.authorized"
"""
    )
    return config


def write_sample(workload: str, count: int, path: Path, day: dt.date) -> None:
    """The workload's file of `count` payments, executing on `day`."""
    if workload == "payroll":
        batch = samples.payroll(DEBTOR, count, execution_date=day, msg_id=f"BENCH-{count}")
    elif workload == "erp":
        batch = samples.erp_run(DEBTOR, count, PEERS, execution_date=day, msg_id=f"ERP-{count}")
    else:
        raise ValueError(f"unknown workload {workload!r}")
    with open(path, "wb") as out:
        samples.write(batch, out)
