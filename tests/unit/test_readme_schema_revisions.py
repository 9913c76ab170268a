"""README's `db upgrade` example names the schema revisions this release
leaves (README, Operating: `database ready: … (ledger schema N, gateway schema M)`)."""

from __future__ import annotations

import re
from pathlib import Path

from gateway import migrations as gateway_migrations
from ledger import migrations as ledger_migrations

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_db_upgrade_example_names_this_releases_heads() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    found = re.findall(r"database ready: … \(ledger schema (\d{4}), gateway schema (\d{4})\)", text)
    assert found, "README no longer shows the db upgrade line"
    assert found == [(ledger_migrations.HEAD, gateway_migrations.HEAD)] * len(found)
