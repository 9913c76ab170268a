"""A small, real gateway installation for the acceptance tests of the inbound pipeline.

`Installation.create(folder)` writes what an operator would: a configuration TOML,
authorized_keys files, a signing key, a spool and a SQLite database, with two
client institutions whose accounts cover every rule of SPEC §6 (limits, a blocked
and a closed account, a USD and a JPY account, the other client's treasury account
as an internal creditor). `Installation.submit(data)` drops one file into a
client's `in/`, runs one pass of the pipeline and returns the pain.002 the client
finds in `out/`, parsed, with the place the original was shelved.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree
from sqlalchemy import func, select

from gateway import announcements, db, samples
from gateway.clock import FixedClock
from gateway.environment import Environment, open_environment
from gateway.funding import fund
from gateway.keys import init_signing_key
from gateway.pipeline import PassResult, Pipeline
from gateway.samples import SampleBatch, SamplePmtInf, SampleTx, iban_lv
from gateway.settings import Settings, load
from ledger.schema import accounts as t_accounts
from ledger.schema import postings as t_postings

RIGA = ZoneInfo("Europe/Riga")
PAIN002 = "pain.002.001.03"
NS002 = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"}

CLIENT_A = "iestade-a"
CLIENT_B = "iestade-b"

# Client A's accounts.
A_MAIN = iban_lv("TREL", 9_100_000_000_001)  # EUR, well funded, no limits
A_LIMITS = iban_lv("TREL", 9_100_000_000_002)  # EUR, max_payment, daily_limit, overdraft
A_BLOCKED = iban_lv("TREL", 9_100_000_000_003)
A_CLOSED = iban_lv("TREL", 9_100_000_000_004)
A_USD = iban_lv("TREL", 9_100_000_000_005)
A_JPY = iban_lv("TREL", 9_100_000_000_006)
A_SMALL = iban_lv("TREL", 9_100_000_000_007)  # EUR, 100.00, no overdraft
# Client B's accounts (treasury accounts A may pay into, or must not debit).
B_MAIN = iban_lv("TREL", 9_100_000_000_101)
B_CLOSED = iban_lv("TREL", 9_100_000_000_102)
B_BLOCKED = iban_lv("TREL", 9_100_000_000_103)
# Accounts that exist nowhere.
TREL_MISSING = iban_lv("TREL", 9_100_000_009_999)
EXTERNAL = iban_lv("HABA", 1_234_567)  # a creditor at another bank
EXTERNAL_BIC = "HABALV22"

FUNDS = {  # initial balances (major units, as text)
    A_MAIN: "100000.00",
    A_LIMITS: "5000.00",
    A_USD: "1000.00",
    A_JPY: "100000",
    A_SMALL: "100.00",
    B_MAIN: "1000.00",
}

# Wednesday 25 November 2026, 10:00 in Riga: a business day, before both cut-offs.
DEFAULT_NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=RIGA)
TODAY = DEFAULT_NOW.date()

_key_counter = itertools.count(1)


def _public_key_line(seed: int, comment: str) -> str:
    """A well-formed OpenSSH ed25519 key line (never used to log in: no SFTP here)."""
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes([seed]) * 32
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def _account(iban: str, ccy: str, **extra: str) -> list[str]:
    lines = ["  [[client.account]]", f'  iban = "{iban}"', f'  currency = "{ccy}"']
    lines += [f'  {name} = "{value}"' for name, value in extra.items()]
    return lines


def write_config(base: Path, **gateway: object) -> Path:
    """The installation's TOML; `gateway` overrides keys of the [gateway] table."""
    keys = base / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    for seed, user in enumerate(("a-erp", "b-erp"), start=1):
        (keys / f"{user}.pub").write_text(f'from="127.0.0.1" {_public_key_line(seed, user)}\n')
    table: dict[str, object] = {
        "spool_dir": "spool",
        "database_url": "sqlite:///spool/ledger.sqlite3",
        "timezone": "Europe/Riga",
        "bic": "TRELLV22",
        "cutoff_internal": "18:00",
        "cutoff_external": "15:30",
        "max_future_days": 90,
        "max_file_bytes": 104857600,
        "max_transactions": 200000,
        **gateway,
    }
    lines = ["[gateway]"]
    for name, value in table.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, str):
            value = f'"{value}"'
        lines.append(f"{name} = {value}")
    lines += [
        "",
        "[sftp]",
        'listen = "127.0.0.1:0"',
        "",
        "[signing]",
        'key = "signing/gateway.key"',
        'certificate = "signing/gateway.crt"',
        "",
        "[[client]]",
        f'id = "{CLIENT_A}"',
        'name = "Budžeta iestāde A"',
        'registration_number = "90000000001"',
    ]
    lines += _account(A_MAIN, "EUR")
    lines += _account(
        A_LIMITS, "EUR", max_payment="1000.00", daily_limit="1500.00", overdraft="200.00"
    )
    lines += _account(A_BLOCKED, "EUR", status="blocked")
    lines += _account(A_CLOSED, "EUR", status="closed")
    lines += _account(A_USD, "USD")
    lines += _account(A_JPY, "JPY")
    lines += _account(A_SMALL, "EUR")
    lines += [
        "  [[client.user]]",
        '  name = "a-erp"',
        '  kind = "system"',
        '  mode = "manage"',
        '  authorized_keys = "keys/a-erp.pub"',
        "",
        "[[client]]",
        f'id = "{CLIENT_B}"',
        'name = "Budžeta iestāde B"',
        'registration_number = "90000000002"',
    ]
    lines += _account(B_MAIN, "EUR")
    lines += _account(B_CLOSED, "EUR", status="closed")
    lines += _account(B_BLOCKED, "EUR", status="blocked")
    lines += [
        "  [[client.user]]",
        '  name = "b-erp"',
        '  kind = "system"',
        '  mode = "manage"',
        '  authorized_keys = "keys/b-erp.pub"',
    ]
    path = base / "gateway.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_signing_key(settings: Settings) -> None:
    """A seal key whose certificate is valid from well before DEFAULT_NOW and the real time."""
    start = min(DEFAULT_NOW.astimezone(dt.UTC), dt.datetime.now(dt.UTC)) - dt.timedelta(days=60)
    init_signing_key(settings.signing.key, settings.signing.certificate, now=start, days=3650)


# -- reading what the client finds -----------------------------------------------------------


@dataclass
class TxAnswer:
    end_to_end_id: str
    instr_id: str | None
    status: str
    reasons: list[str]
    additional_info: list[str]
    acct_svcr_ref: str | None
    pmt_inf_id: str


@dataclass
class Answer:
    """One pain.002 as the client reads it from `out/`."""

    path: Path
    doc: Any  # lxml root element
    shelf: Path | None = None  # where the original went (archive/rejected/duplicates)
    outcome: Any = None

    @classmethod
    def read(cls, path: Path) -> Answer:
        return cls(path, etree.parse(str(path)).getroot())

    def _text(self, xpath: str) -> str | None:
        found = self.doc.xpath(xpath, namespaces=NS002)
        return found[0].text if found else None

    @property
    def msg_id(self) -> str | None:
        return self._text("//p:GrpHdr/p:MsgId")

    @property
    def original_msg_id(self) -> str | None:
        return self._text("//p:OrgnlGrpInfAndSts/p:OrgnlMsgId")

    @property
    def group_status(self) -> str | None:
        return self._text("//p:OrgnlGrpInfAndSts/p:GrpSts")

    @property
    def group_reasons(self) -> list[str]:
        return [
            e.text
            for e in self.doc.xpath(
                "//p:OrgnlGrpInfAndSts/p:StsRsnInf/p:Rsn/p:Cd", namespaces=NS002
            )
        ]

    @property
    def group_info(self) -> list[str]:
        return [
            e.text
            for e in self.doc.xpath(
                "//p:OrgnlGrpInfAndSts/p:StsRsnInf/p:AddtlInf", namespaces=NS002
            )
        ]

    def pmt_statuses(self) -> dict[str, str]:
        return {
            p.findtext("p:OrgnlPmtInfId", namespaces=NS002): p.findtext(
                "p:PmtInfSts", namespaces=NS002
            )
            for p in self.doc.xpath("//p:OrgnlPmtInfAndSts", namespaces=NS002)
        }

    def transactions(self) -> list[TxAnswer]:
        found = []
        for pmt in self.doc.xpath("//p:OrgnlPmtInfAndSts", namespaces=NS002):
            pmt_id = pmt.findtext("p:OrgnlPmtInfId", namespaces=NS002)
            for tx in pmt.findall("p:TxInfAndSts", namespaces=NS002):
                found.append(
                    TxAnswer(
                        end_to_end_id=tx.findtext("p:OrgnlEndToEndId", namespaces=NS002),
                        instr_id=tx.findtext("p:OrgnlInstrId", namespaces=NS002),
                        status=tx.findtext("p:TxSts", namespaces=NS002),
                        reasons=[
                            e.text for e in tx.findall("p:StsRsnInf/p:Rsn/p:Cd", namespaces=NS002)
                        ],
                        additional_info=[
                            e.text for e in tx.findall("p:StsRsnInf/p:AddtlInf", namespaces=NS002)
                        ],
                        acct_svcr_ref=tx.findtext("p:AcctSvcrRef", namespaces=NS002),
                        pmt_inf_id=pmt_id,
                    )
                )
        return found

    def tx(self, end_to_end_id: str) -> TxAnswer:
        matches = [t for t in self.transactions() if t.end_to_end_id == end_to_end_id]
        assert len(matches) == 1, f"{len(matches)} transactions {end_to_end_id!r} in {self.path}"
        return matches[0]

    def statuses(self) -> dict[str, str]:
        return {t.end_to_end_id: t.status for t in self.transactions()}


# -- the installation ------------------------------------------------------------------------


@dataclass
class Installation:
    base: Path
    config: Path
    settings: Settings
    env: Environment
    clock: FixedClock
    pipeline: Pipeline
    _seen: set[Path] = field(default_factory=set)

    @classmethod
    def create(
        cls,
        base: Path,
        *,
        now: dt.datetime = DEFAULT_NOW,
        need_sealer: bool = False,
        funded: bool = True,
        **gateway: object,
    ) -> Installation:
        config = write_config(base, **gateway)
        return cls.open(base, config, now=now, need_sealer=need_sealer, funded=funded)

    @classmethod
    def open(
        cls,
        base: Path,
        config: Path,
        *,
        now: dt.datetime = DEFAULT_NOW,
        need_sealer: bool = False,
        funded: bool = True,
    ) -> Installation:
        """The installation of a configuration already written (and perhaps edited): its
        signing key, its environment on a fixed clock at `now`, `FUNDS` booked."""
        settings = load(config)
        make_signing_key(settings)
        inst = cls._on_clock(base, settings, now, need_sealer)
        if funded:
            for iban, amount in FUNDS.items():
                fund(inst.env, iban, amount, key=f"setup:{iban}")
        return inst

    @classmethod
    def copy_of(
        cls,
        template: Path,
        base: Path,
        *,
        now: dt.datetime = DEFAULT_NOW,
        need_sealer: bool = False,
    ) -> Installation:
        """A fresh copy of an installation made once by `create` (much faster than creating)."""
        shutil.copytree(template, base, dirs_exist_ok=True)
        return cls._on_clock(base, load(base / "gateway.toml"), now, need_sealer)

    @classmethod
    def _on_clock(
        cls, base: Path, settings: Settings, now: dt.datetime, need_sealer: bool
    ) -> Installation:
        """The installation of `settings`, its environment on a fixed clock at `now`."""
        clock = FixedClock(now.astimezone(dt.UTC))
        env = open_environment(settings, clock=clock, need_sealer=need_sealer)
        return cls(base, settings.config_path, settings, env, clock, Pipeline(env))

    def close(self) -> None:
        """Close the environment, once the ledger's invariants and the gateway's kept
        totals were found to hold."""
        self.env.ledger.check_invariants()
        with self.env.engine.connect() as conn:
            announcements.check_days(conn)
            db.check_references(conn)
        self.env.close()

    # -- spool -------------------------------------------------------------------------------

    @property
    def spool(self) -> Path:
        return self.settings.spool_dir

    def inbox(self, client: str = CLIENT_A) -> Path:
        return self.env.spool.inbox(client)

    def outbox(self, client: str = CLIENT_A) -> Path:
        return self.env.spool.outbox(client)

    def drop(self, data: bytes, name: str, client: str = CLIENT_A) -> Path:
        """Upload a file the way the SFTP server leaves it: whole, under its final name."""
        path = self.inbox(client) / name
        tmp = path.with_name(f".{name}.part")
        tmp.write_bytes(data)
        # It arrived "now" in the test's world: the gateway takes the receipt time from it.
        stamp = self.clock.now().timestamp()
        os.utime(tmp, (stamp, stamp))
        tmp.rename(path)
        return path

    def run(self) -> PassResult:
        return self.pipeline.run_once()

    def new_answers(self, client: str = CLIENT_A) -> list[Answer]:
        """pain.002 files that appeared in `out/` since the last call, oldest first."""
        fresh = sorted(
            p for p in self.outbox(client).glob(f"*_{PAIN002}_*.xml") if p not in self._seen
        )
        self._seen.update(fresh)
        return [Answer.read(p) for p in fresh]

    def submit(self, data: bytes, name: str = "batch.xml", client: str = CLIENT_A) -> Answer:
        """Run one file through and return the one pain.002 it produced."""
        before = set(self.shelf_files(client))
        self.drop(data, name, client)
        result = self.run()
        outcomes = [o for o in result.outcomes]
        answers = self.new_answers(client)
        assert len(answers) == 1, f"expected one answer, got {[a.path.name for a in answers]}"
        assert len(outcomes) == 1, f"expected one processed file, got {len(outcomes)}"
        answer = answers[0]
        answer.outcome = outcomes[0]
        # This upload's own shelf entry: a repeated upload shares its number with the
        # file it repeats, so it is found as the one that appeared, not by number.
        new = [p for p in self.shelf_files(client) if p not in before]
        assert len(new) == 1, f"expected one newly shelved file, got {new}"
        assert new[0].name.startswith(f"{outcomes[0].file_id:08d}__"), new[0]
        assert new[0].parts[-4] == outcomes[0].shelf, new[0]
        answer.shelf = new[0]
        return answer

    def shelf_files(self, client: str = CLIENT_A) -> list[Path]:
        """Every upload of `client` shelved so far (archive, rejected, duplicates), without
        the sidecars beside them."""
        return sorted(
            p
            for k in ("archive", "rejected", "duplicates")
            for p in (self.spool / k / client).glob("*/*")
            if not p.name.endswith((".findings.txt", ".sig", ".receipt.json"))
        )

    def shelved(self, file_id: int, client: str = CLIENT_A, kind: str | None = None) -> Path:
        """Where file `file_id` was shelved (a repeated upload is shelved in duplicates/
        under the number of the file it repeats)."""
        kinds = (kind,) if kind else ("archive", "rejected", "duplicates")
        found = [
            p
            for k in kinds
            for p in (self.spool / k / client).glob(f"*/{file_id:08d}__*")
            if not p.name.endswith((".findings.txt", ".sig", ".receipt.json"))
        ]
        assert len(found) == 1, f"file {file_id} shelved {len(found)} times: {found}"
        return found[0]

    def left_in(self, client: str = CLIENT_A) -> list[Path]:
        """Anything still waiting in in/ or work/ (should be nothing after a pass)."""
        return list(self.inbox(client).iterdir()) + list(self.env.spool.work(client).iterdir())

    # -- ledger ------------------------------------------------------------------------------

    def balance(self, iban: str) -> int:
        return self.env.ledger.balance(iban)[0]

    def balances(self) -> dict[str, int]:
        return {a.iban: a.balance_minor for a in self.env.ledger.all_accounts()}

    def posting_sums(self) -> dict[str, int]:
        """Sum of postings per account IBAN, straight from the postings table."""
        with self.env.engine.connect() as conn:
            rows = conn.execute(
                select(t_accounts.c.iban, func.coalesce(func.sum(t_postings.c.amount_minor), 0))
                .select_from(
                    t_accounts.outerjoin(t_postings, t_postings.c.account_id == t_accounts.c.id)
                )
                .group_by(t_accounts.c.iban)
            ).all()
        return {iban: int(total) for iban, total in rows}

    def clearing(self, ccy: str = "EUR") -> str:
        from ledger.core import AccountKind

        with self.env.ledger.begin() as tx:
            account = tx.system_account(AccountKind.CLEARING, ccy)
        assert account is not None
        return account.iban


@dataclass
class Batch:
    """A convenient pain.001 builder: one payment information, totals that add up."""

    debtor: str = A_MAIN
    msg_id: str | None = None
    execution_date: str = TODAY.isoformat()
    transactions: list[SampleTx] = field(default_factory=list)
    group_nb: str | None = None
    group_sum: str | None = None
    pmt_nb: str | None = None
    pmt_sum: str | None = None
    extra_pmts: list[SamplePmtInf] = field(default_factory=list)
    batch_booking: bool | None = None  # BtchBookg (absent: ISO's default, true)

    def tx(self, e2e: str, amount: str, creditor: str = EXTERNAL, **kw: Any) -> Batch:
        if creditor[:2] != "LV" or creditor[4:8] != "TREL":
            kw.setdefault("creditor_bic", EXTERNAL_BIC)
        self.transactions.append(SampleTx(e2e, amount, creditor, **kw))
        return self

    def build(self) -> bytes:
        msg_id = self.msg_id or f"MSG-{next(_key_counter):06d}"
        pmt = SamplePmtInf(
            pmt_inf_id=f"{msg_id}-P1",
            debtor_iban=self.debtor,
            transactions=self.transactions,
            execution_date=self.execution_date,
            batch_booking=self.batch_booking,
            nb_of_txs=self.pmt_nb or str(len(self.transactions)),
            ctrl_sum=self.pmt_sum or str(_sum(self.transactions)),
        )
        pmts = [pmt, *self.extra_pmts] if self.transactions else list(self.extra_pmts)
        every = [t for p in pmts for t in p.transactions]
        return samples.to_bytes(
            SampleBatch(
                msg_id=msg_id,
                payment_infos=pmts,
                nb_of_txs=self.group_nb or str(len(every)),
                ctrl_sum=self.group_sum or str(_sum(every)),
            )
        )


def _sum(transactions: list[SampleTx]) -> Decimal:
    return sum((Decimal(t.amount) for t in transactions), Decimal())


def batch(*transactions: tuple[str, str], **kw: Any) -> bytes:
    """A one-PmtInf batch from A_MAIN: (EndToEndId, amount) pairs to the external creditor."""
    b = Batch(**kw)
    for e2e, amount in transactions:
        b.tx(e2e, amount)
    return b.build()


def iter_files(folder: Path, pattern: str = "*") -> Iterator[Path]:
    yield from sorted(p for p in folder.rglob(pattern) if p.is_file())


def _status_kib(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise LookupError(name)


def peak_rss_growth(call: Callable[[], object]) -> int:
    """How far the resident set rose above its level at the start while `call` ran (bytes).

    Linux lets a process reset its high-water mark (/proc/self/clear_refs), which also
    counts libxml2's own buffers; elsewhere tracemalloc's Python-only peak is used."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        import tracemalloc

        tracemalloc.start()
        try:
            call()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    before = _status_kib("VmRSS")
    call()
    return (_status_kib("VmHWM") - before) * 1024
