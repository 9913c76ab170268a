"""A list of records that moves to a temporary file once it grows, so memory stays bounded.

Parsing a million-transaction file must not hold a million records in memory:
records are kept in chunks; past `chunks_in_memory_max` chunks, full chunks are
pickled to a temporary file and read back one at a time when iterated.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

T = TypeVar("T")

chunk_records_max = 10_000
chunks_in_memory_max = 4


class Spill(Generic[T]):
    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder
        self._chunks: list[list[T]] = []
        self._current: list[T] = []
        self._file: IO[bytes] | None = None
        self._offsets: list[int] = []
        self._spilled_count = 0
        self.count = 0

    def append(self, record: T) -> None:
        self._current.append(record)
        self.count += 1
        if len(self._current) >= chunk_records_max:
            self._seal_chunk()

    def _seal_chunk(self) -> None:
        if not self._current:
            return
        if self._file is None and len(self._chunks) < chunks_in_memory_max:
            self._chunks.append(self._current)
        else:
            if self._file is None:
                self._file = tempfile.TemporaryFile(dir=self._folder)  # noqa: SIM115 - closed in close()
                for chunk in self._chunks:  # move what is in memory out too
                    self._write(chunk)
                self._chunks = []
            self._write(self._current)
        self._current = []

    def _write(self, chunk: list[Any]) -> None:
        assert self._file is not None
        self._offsets.append(self._file.tell())
        pickle.dump(chunk, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self._spilled_count += len(chunk)

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def chunks(self) -> Iterator[list[T]]:
        """The records in order, a chunk at a time (each chunk read back when reached)."""
        self._seal_chunk()
        if self._file is not None:
            for offset in self._offsets:
                self._file.seek(offset)
                yield pickle.load(self._file)
        else:
            yield from self._chunks

    def __iter__(self) -> Iterator[T]:
        for chunk in self.chunks():
            yield from chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._chunks = []
        self._current = []

    def __enter__(self) -> Spill[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
