"""Prometheus metrics of the daemon (SPEC §9), served with `/healthz` on `[metrics] listen`
(`metrics_http`).

    ekase_files_total{client,result}        files answered; result is the group status of
                                            the first answer (ACSC ACCP PART PDNG RJCT),
                                            DUPL for the same bytes uploaded again, TRIAL
                                            for a trial run (SPEC §15: nothing executed)
    ekase_payments_total{status,currency}   payments of accepted files, by each status they
                                            are answered with: their first answer's (ACSC,
                                            PDNG, RJCT), and ACSC or RJCT again for one that
                                            waited, when its day's run decides it
    ekase_amount_total{status,currency}     their amounts, in major units (1500.49)
    ekase_file_seconds                      histogram: claim to answer, per file
    ekase_waiting_files{client}             complete files waiting in in/        (on scrape)
    ekase_sftp_sessions                     SFTP sessions (channels) of logged-in users open now
    ekase_sftp_logins_refused_total         failed authentications, connections refused
                                            for repeated failures, logins and session
                                            channels over the session limit
    ekase_outbox_backlog                    answers committed but not yet in out/ (on scrape)
    ekase_eod_last_timestamp_seconds{account}  end of day (`eod_time`) of the latest business
                                            day the account has a camt.053 for   (on scrape)
    ekase_faults_total{kind}                passes stopped by a fault of ours (`faults.KINDS`:
                                            disk_full, io, database, signing_key, …)
    ekase_fault_waiting_files               claimed files waiting for that fault to clear
                                            (0 once a pass succeeds)
    ekase_quarantined_files{client}         files set aside for a person in quarantine/
                                            (on scrape)
    ekase_client_held{client}               1 while the client's own folder refuses us

Counters live in the daemon's memory and start at zero with it, as Prometheus expects.
What is on disk or in the database is read on each scrape, through a read-only engine
(`environment.make_reader_engine`), so it is right whichever process wrote it (`eod`
run by hand, a second daemon). Payments and amounts of a file come from its rows, once
it has been answered: one grouped query per accepted file, in the daemon only.

Other processes (`scan --once`, the CLI) never enable metrics: every recording call
is then a no-op, and `prometheus_client` is not even imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from gateway import faults
from gateway.settings import Settings
from gateway.statuses import GroupStatus
from ledger import currency

if TYPE_CHECKING:
    import datetime as dt

    from prometheus_client.core import Metric
    from sqlalchemy import Engine

log = structlog.get_logger("gateway.metrics")

# Claim-to-answer seconds: a small file takes a fraction of a second, 200,000 payments
# several seconds, a million about half a minute.
file_seconds_buckets = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
OTHER_CURRENCY = "other"  # a code we do not support, as a client wrote it: not a label value


class ProcessedFile(Protocol):
    """What `file_processed` needs of `inbound.process.Outcome`."""

    file_id: int
    shelf: str
    group_status: str


class Metrics:
    """The daemon's metrics in a registry of their own."""

    def __init__(self, settings: Settings, reader: Engine) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.process_collector import ProcessCollector

        self.reader = reader  # the caller's: it disposes of it
        self.registry = CollectorRegistry()
        registry = self.registry
        self.files = Counter(
            "ekase_files", "Files answered, by client and result (group status; DUPL: repeated)",
            ["client", "result"], registry=registry,
        )
        self.payments = Counter(
            "ekase_payments", "Payments of accepted files by first status and currency",
            ["status", "currency"], registry=registry,
        )
        self.amounts = Counter(
            "ekase_amount", "Amounts of those payments in major units (decimal)",
            ["status", "currency"], registry=registry,
        )
        self.file_seconds = Histogram(
            "ekase_file_seconds", "Seconds from claiming a file to its answer",
            buckets=file_seconds_buckets, registry=registry,
        )
        self.sftp_sessions = Gauge(
            "ekase_sftp_sessions", "SFTP sessions (channels) of logged-in users open now",
            registry=registry,
        )
        self.logins_refused = Counter(
            "ekase_sftp_logins_refused", "SFTP logins refused (failed, penalised, over the limit)",
            registry=registry,
        )
        self.faults = Counter(
            "ekase_faults", "Passes stopped by a fault of ours (disk, database, key), by kind",
            ["kind"], registry=registry,
        )
        for kind in faults.KINDS:
            self.faults.labels(kind)  # every kind from zero, so that increase() sees the first
        self.fault_waiting = Gauge(
            "ekase_fault_waiting_files",
            "Claimed files waiting, unanswered, for a fault of ours to clear",
            registry=registry,
        )
        self.held = Gauge(
            "ekase_client_held",
            "1 while a client's own folder refuses us: its answers and files wait",
            ["client"], registry=registry,
        )
        self.client_ids = tuple(c.id for c in settings.clients)
        for client_id in self.client_ids:  # every configured client's series from 0, so
            self.held.labels(client_id)  # that increase() sees a first file or hold too
            for result in (*GroupStatus, "DUPL", "TRIAL"):
                self.files.labels(client_id, result)
        registry.register(_OnScrape(settings, reader))
        ProcessCollector(registry=registry)

    def file_processed(
        self, engine: Engine, client: str, outcome: ProcessedFile, seconds: float
    ) -> None:
        result = _RESULT_OF_SHELF.get(outcome.shelf, outcome.group_status)
        # Rejected as a whole (no payments) or repeated (counted the first time): none.
        # Read before anything is counted, so a scrape sees the file and its payments; a
        # file whose payments cannot be read (the database gone) is counted all the same.
        try:
            totals = payment_totals(engine, outcome.file_id) if outcome.shelf == "archive" else []
        finally:
            self.files.labels(client, result).inc()
            self.file_seconds.observe(seconds)
        self.count_payments(totals)

    def count_payments(self, totals: Iterable[PaymentTotal]) -> None:
        for status, code, count, total in totals:
            label = code if code is not None and currency.is_supported(code) else OTHER_CURRENCY
            self.payments.labels(status, label).inc(count)
            if label != OTHER_CURRENCY:
                self.amounts.labels(status, label).inc(float(currency.format_minor(total, label)))


# A file's result but its group status: what it is (the same bytes again, a trial run).
_RESULT_OF_SHELF = {"duplicates": "DUPL", "trials": "TRIAL"}
PaymentTotal = tuple[str, str | None, int, int]  # status, currency, count, sum (minor units)


def payment_totals(engine: Engine, file_id: int) -> list[PaymentTotal]:
    """(status, currency, count, sum in minor units) of one file's payments."""
    from sqlalchemy import func, select

    from gateway import db

    p = db.payments.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(p.status, p.currency, func.count(), func.coalesce(func.sum(p.amount_minor), 0))
            .where(p.file_id == file_id)
            .group_by(p.status, p.currency)
        ).all()
    return [(str(s), c, int(n), int(total)) for s, c, n, total in rows]


class _OnScrape:
    """The series read afresh on every scrape: waiting files, outbox backlog, end of day."""

    def __init__(self, settings: Settings, reader: Engine) -> None:
        self.settings = settings
        self.reader = reader

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        from gateway.spool import Spool

        spool = Spool(self.settings.spool_dir)
        waiting = GaugeMetricFamily(
            "ekase_waiting_files", "Complete files waiting in in/, per client", labels=["client"]
        )
        quarantined = GaugeMetricFamily(
            "ekase_quarantined_files",
            "Files set aside for a person in quarantine/ (our code failed on them)",
            labels=["client"],
        )
        for client in self.settings.clients:
            files = faults.listed(spool.waiting, client.id)
            if files is not None:  # not for a client whose in/ refuses: the daemon holds it
                waiting.add_metric([client.id], len(files))
            set_aside = faults.listed(spool.quarantined, client.id)
            if set_aside is not None:
                quarantined.add_metric([client.id], len(set_aside))
        yield waiting
        yield quarantined
        try:
            backlog, eod = self._from_database()
        except Exception as exc:  # the database is down: the other series still count
            log.warning("metrics.database_unavailable", error=str(exc))
            return
        yield GaugeMetricFamily(
            "ekase_outbox_backlog", "Answers committed but not yet delivered into out/",
            value=backlog,
        )
        last = GaugeMetricFamily(
            "ekase_eod_last_timestamp_seconds",
            "End of day of the latest business day stated (camt.053), per account",
            labels=["account"],
        )
        for iban, moment in eod:
            last.add_metric([iban], moment.timestamp())
        yield last

    def _from_database(self) -> tuple[int, list[tuple[str, dt.datetime]]]:
        import datetime as dt

        from sqlalchemy import func, select

        from gateway import db

        o, s = db.outbox.c, db.statements.c
        zone = self.settings.timezone
        with self.reader.connect() as conn:
            backlog = conn.execute(
                select(func.count()).where(o.delivered_at.is_(None))
            ).scalar_one()
            rows = conn.execute(
                select(s.iban, func.max(s.business_date))
                .where(s.message.like("camt.053%"))
                .group_by(s.iban)
                .order_by(s.iban)
            ).all()
        eod = [
            (str(iban), dt.datetime.combine(day, self.settings.eod_time, zone))
            for iban, day in rows
            if day is not None
        ]
        return int(backlog), eod


# -- the recording API (a no-op unless the daemon enabled metrics) -----------------------------

_active: Metrics | None = None


def enable(settings: Settings, reader: Engine) -> Metrics:
    global _active
    from prometheus_client import disable_created_metrics

    disable_created_metrics()  # type: ignore[no-untyped-call,unused-ignore]  # no *_created
    _active = Metrics(settings, reader)
    return _active


def enabled() -> bool:
    return _active is not None


def disable() -> None:
    global _active
    _active = None


_forward: Callable[[tuple[Any, ...]], None] | None = None


def forward(send: Callable[[tuple[Any, ...]], None]) -> None:
    """In a daemon's worker process: hand each processed file, and each day's run of
    payments, to the daemon, which counts them (`from_worker`, `gateway.workers`)."""
    global _forward
    _forward = send


def file_processed(engine: Engine, client: str, outcome: ProcessedFile, seconds: float) -> None:
    """A file has been answered and shelved (`filerun`)."""
    if _forward is not None:
        _forward(("file", client, outcome.file_id, outcome.shelf, outcome.group_status, seconds))
        return
    if _active is None:
        return
    try:
        _active.file_processed(engine, client, outcome, seconds)
    except Exception as exc:  # counting must never fail a file that is already answered
        log.warning("metrics.file_failed", client=client, error=str(exc))


def payments_decided(totals: list[PaymentTotal]) -> None:
    """Payments that waited, executed or refused by their day's run (`pending`)."""
    if _forward is not None:
        _forward(("payments", totals))
    elif _active is not None:
        _active.count_payments(totals)


@dataclass(slots=True)
class _Processed:
    file_id: int
    shelf: str
    group_status: str


FORWARDED = ("file", "payments")  # what a worker sends for the daemon to count


def from_worker(kind: str, *values: Any) -> None:
    """What a worker process counted (`forward`), counted in the daemon: a file's payments
    are read through the metrics' own read-only engine."""
    if _active is None:
        return
    if kind == "payments":
        _active.count_payments(values[0])
        return
    client, file_id, shelf, group_status, seconds = values
    file_processed(_active.reader, client, _Processed(file_id, shelf, group_status), seconds)


def sftp_session_opened() -> None:
    if _active is not None:
        _active.sftp_sessions.inc()


def sftp_session_closed() -> None:
    if _active is not None:
        _active.sftp_sessions.dec()


def login_refused() -> None:
    if _active is not None:
        _active.logins_refused.inc()


def fault(kind: str) -> None:
    """A pass stopped on a fault of ours (the daemon retries it)."""
    if _active is not None:
        _active.faults.labels(kind).inc()


def clients_held(held: Iterable[str]) -> None:
    """The clients whose own folder refuses us now (every other configured one: 0)."""
    if _active is not None:
        now = set(held)
        for client_id in _active.client_ids:
            _active.held.labels(client_id).set(1 if client_id in now else 0)


def fault_waiting(files: int) -> None:
    """The files the faults of ours being waited out hold, in every worker (0: none)."""
    if _active is not None:
        _active.fault_waiting.set(files)
