"""How the runs read a batch: `inbound.reader` with the answer's echo.

Every run that reads a pain.001 (a new file, a batch read ahead, a batch whose
signatures are complete, a cancellation looking into a waiting batch) reads it
through here: `transactions_max` from the settings, and `pain002_v03.original` as the
echo the reading child renders while it is ahead of the booking process (the reader's
module docstring). The module is light: `readahead` uses it before the database layer
is imported.
"""

from __future__ import annotations

from pathlib import Path

from gateway.inbound import reader
from gateway.outbound import pain002_v03
from gateway.settings import Settings


def read(path: Path, settings: Settings) -> reader.Reading:
    """The reading of the batch at `path`: in a child for a big file, else here."""
    return reader.read(path, transactions_max=settings.max_transactions, echo=pain002_v03.original)


def child(path: Path, settings: Settings) -> reader.Reader:
    """The reading of the batch at `path` in a child, whatever its size."""
    return reader.Reader(
        path, transactions_max=settings.max_transactions, echo=pain002_v03.original
    )
