"""Helpers for the pull side's acceptance tests (SPEC §15): what the client finds in
`out/` besides pain.002, read the way its system would."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.outbound import statements
from tests.pipeline_fixtures import RIGA, Installation


def riga(day: dt.date, clock: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(clock), RIGA)


def close_day(inst: Installation, day: dt.date) -> list[statements.StatementResult]:
    """End of `day` at 18:30 Riga: the statements of every client account."""
    inst.clock.set(riga(day, "18:30"))
    return statements.write_statements(inst.env, day)


@dataclass
class Found:
    """One message in `out/`: its name, its message type and its root element."""

    path: Path
    message: str
    doc: Any

    def text(self, path: str) -> str | None:
        """The text at `path` (local names joined by '/'), searched anywhere."""
        steps = "/".join(f"*[local-name()='{s}']" for s in path.split("/"))
        found = self.doc.xpath(f"//{steps}")
        return found[0].text if found else None

    def texts(self, path: str) -> list[str]:
        steps = "/".join(f"*[local-name()='{s}']" for s in path.split("/"))
        return [e.text for e in self.doc.xpath(f"//{steps}")]


class Out:
    """The messages that appear in a client's `out/`, a call at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: set[Path] = set(folder.glob("*.xml"))

    def new(self) -> list[Found]:
        fresh = sorted(p for p in self.folder.glob("*.xml") if p not in self.seen)
        self.seen.update(fresh)
        found = []
        for path in fresh:
            doc = etree.parse(str(path)).getroot()
            namespace = etree.QName(doc).namespace or ""
            found.append(Found(path, namespace.rsplit(":", 1)[-1], doc))
        return found
