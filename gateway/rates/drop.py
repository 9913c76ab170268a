"""The spool's `rates/` folder: ECB files dropped there are imported by the daemon.

    rates/            dropped files wait here (names starting with `.` or ending in
                      `.part`/`.tmp` are still being written and are left alone)
    rates/done/       imported, with `<name>.findings.txt` saying what changed
    rates/refused/    refused as a whole, with `<name>.findings.txt` saying why

A file whose last change is younger than `settle_seconds` may still be being copied
in and waits for the next pass. The findings are written before the file moves, so a
crash in between only imports the same file again (which changes nothing). A fault
of ours (the database) leaves the file where it is, to be tried again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.environment import Environment
from gateway.files import fsync_dir, write_atomically
from gateway.rates import store
from gateway.rates.ecb import Refused
from gateway.spool import complete_files

log = structlog.get_logger("gateway.rates")
files_per_pass_max = 100


@dataclass(frozen=True, slots=True)
class Dropped:
    """One dropped file, processed: what became of it and where it went."""

    name: str
    outcome: store.Imported | Refused
    moved_to: Path

    @property
    def imported(self) -> bool:
        return isinstance(self.outcome, store.Imported)

    @property
    def line(self) -> str:
        if isinstance(self.outcome, Refused):
            return f"{self.name}: refused: {self.outcome.problem}"
        return self.outcome.line(self.name)


def folder(env: Environment) -> Path:
    return env.settings.spool_dir / "rates"


def import_dropped(env: Environment, *, wall_now: float | None = None) -> list[Dropped]:
    """Import every settled file in `<spool>/rates/` and move it to `done/` or
    `refused/` beside its findings. A file is taken once its modification time is
    `settle_seconds` old by `wall_now` (the environment's clock unless given)."""
    base = folder(env)
    done, refused = base / "done", base / "refused"
    for place in (base, done, refused):
        place.mkdir(parents=True, exist_ok=True)
    if wall_now is None:
        wall_now = env.clock.wall()
    settled_before = wall_now - env.settings.settle_seconds
    results: list[Dropped] = []
    for path in complete_files(base, settled_before)[:files_per_pass_max]:
        outcome = store.import_file(
            env.engine, path, now=env.clock.now(), today=env.local_now().date()
        )
        shelf = done if isinstance(outcome, store.Imported) else refused
        result = Dropped(path.name, outcome, _free_name(shelf, path.name))
        write_atomically(_findings(result.moved_to), result.line + "\n", mode=0o444)
        os.replace(path, result.moved_to)
        fsync_dir(base)
        fsync_dir(shelf)
        if isinstance(outcome, Refused):
            log.warning("rates.refused", file=path.name, problem=outcome.problem)
        else:
            log.info(
                "rates.imported", file=path.name, first=str(outcome.first),
                last=str(outcome.last), added=outcome.added, corrected=outcome.corrected,
            )  # fmt: skip
        results.append(result)
    return results


def _free_name(shelf: Path, name: str) -> Path:
    """`name` in `shelf`, or `name.1`, `name.2` … if that is taken (the daily file
    is dropped under the same name every day)."""
    candidate = shelf / name
    number = 0
    while candidate.exists() or _findings(candidate).exists():
        number += 1
        candidate = shelf / f"{name}.{number}"
    return candidate


def _findings(path: Path) -> Path:
    return path.with_name(path.name + ".findings.txt")
