"""The Latvian holidays (and the TARGET closing days the ECB's rates follow, key
`xecb`) worked out by earlier processes, kept in the spool.

`ledger.calendar` imports the `holidays` package only for a year it does not know;
that import costs every short-lived command (`scan --once`, `eod`, …) a noticeable start-up. The
years one process worked out are written to `<spool>/cache/holidays-LV-<version>.json`
and handed to the next (`load` at start, `save` at close). The file is named after
the installed version of `holidays`, so an upgrade starts afresh; a file that cannot
be read is ignored (the years are worked out again), one that cannot be written is
skipped. The spool is the gateway's own: no client reaches `cache/`.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import secrets
from pathlib import Path

from gateway.rates import target
from ledger import calendar

cache_bytes_max = 1 << 16


def _path(spool_dir: Path) -> Path | None:
    try:
        version = importlib.metadata.version("holidays")
    except importlib.metadata.PackageNotFoundError:
        return None
    return spool_dir / "cache" / f"holidays-LV-{version}.json"


def _read(path: Path, key: str = "years") -> dict[int, list[dt.date]]:
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(cache_bytes_max + 1)[:cache_bytes_max])
        return {
            int(year): [dt.date.fromisoformat(day) for day in days]
            for year, days in data.get(key, {}).items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def load(spool_dir: Path) -> None:
    path = _path(spool_dir)
    if path is not None:
        calendar.remember(_read(path))
        target.remember(_read(path, "xecb"))


def save(spool_dir: Path) -> None:
    """Write the years this process knows, if the file lacks any of them."""
    path = _path(spool_dir)
    known, known_xecb = calendar.known_years(), target.known_years()
    if path is None or not (known or known_xecb):
        return
    stored, stored_xecb = _read(path), _read(path, "xecb")
    if set(known) <= set(stored) and set(known_xecb) <= set(stored_xecb):
        return
    text = json.dumps(
        {
            key: {str(y): sorted(d.isoformat() for d in days) for y, days in years.items()}
            for key, years in (
                ("years", {**stored, **known}),
                ("xecb", {**stored_xecb, **known_xecb}),
            )
        }
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        return
