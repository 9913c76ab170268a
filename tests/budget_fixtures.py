"""A gateway installation with budget accounts (SPEC §12), for the budget-code tests.

The pipeline fixtures' installation with `budget = true` on client A's main account
(A_MAIN) and client B's (B_MAIN), and the shipped classifier
(`gateway/data/classification.csv`) copied beside the configuration. A_LIMITS stays a
non-budget account: codes on it are carried, not required.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from tests.pipeline_fixtures import (
    A_MAIN,
    B_MAIN,
    DEFAULT_NOW,
    Installation,
    write_config,
)

SHIPPED_CLASSIFIER = Path(__file__).parents[1] / "gateway" / "data" / "classification.csv"
BUDGET_ACCOUNTS = (A_MAIN, B_MAIN)


def budget_installation(
    base: Path,
    database_url: str | None = None,
    *,
    now: dt.datetime = DEFAULT_NOW,
    need_sealer: bool = False,
    notifications: bool = False,
) -> Installation:
    base.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHIPPED_CLASSIFIER, base / "classification.csv")
    extra: dict[str, object] = {"classification": "classification.csv"}
    if database_url is not None:
        extra["database_url"] = database_url
    config = write_config(base, **extra)
    text = config.read_text(encoding="utf-8")
    for iban in BUDGET_ACCOUNTS:
        line = f'  iban = "{iban}"\n'
        assert text.count(line) == 1
        text = text.replace(line, line + "  budget = true\n")
    if notifications:  # camt.054 for client A
        marker = 'registration_number = "90000000001"'
        text = text.replace(marker, f"{marker}\nnotifications = true")
    config.write_text(text, encoding="utf-8")
    return Installation.open(base, config, now=now, need_sealer=need_sealer)
