"""A rendered message compressed for the outbox: one zlib stream, its slices compressed
side by side.

A new file's answer is rendered once its last payment is decided (a pain.002 gives its
counts before its transactions), and a 100,000-payment answer is ~35 MB: compressing it
in one stream is work the whole file waits for, on one core, while the reading child
that used the other has ended. zlib's deflate runs without Python's lock, so the
rendered bytes are cut into slices of `slice_bytes`, each compressed on its own by a
thread while the writer renders the next, and the slices joined in order.

Each slice is raw deflate ended by a full flush (the last by the stream's end): it
refers to nothing before it and ends on a byte boundary, so their concatenation is one
deflate stream. The zlib header and the Adler-32 of the whole message go around it: the
result is an ordinary zlib stream, read by `zlib.decompress` like any other. A message
of less than one slice is compressed here in one piece, as before.
"""

from __future__ import annotations

import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

compress_level = 3  # fast; reports are regular XML and shrink ~10x anyway
slice_bytes = 4 << 20
threads_max = 2
slices_in_flight_max = 3  # plain bytes held: this many slices and the one being filled
_ZLIB_HEADER = zlib.compress(b"", compress_level)[:2]  # as zlib writes it at this level


class Copy(Protocol):
    """Where a renderer's plain bytes may go as well (`outbox.PlainCopy`)."""

    def write(self, data: bytes, /) -> int: ...


def _deflated(data: bytes, last: bool) -> bytes:
    """One slice: raw deflate that stands alone in the stream (module docstring)."""
    z = zlib.compressobj(compress_level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return z.compress(data) + z.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


class Compressor:
    """A write-only binary stream: what the writers give it, compressed (`finish`), and
    as it is into `copy` too if asked."""

    def __init__(self, copy: Copy | None = None) -> None:
        self._copy = copy
        self._adler = zlib.adler32(b"")
        self._held: list[bytes] = []  # written, not yet in a slice
        self._held_bytes = 0
        self._slices: deque[Future[bytes]] = deque()  # being compressed, in order
        self._done: list[bytes] = []  # compressed, in order
        self._pool: ThreadPoolExecutor | None = None

    def write(self, data: bytes) -> int:
        """Take `data` (kept as bytes of its own: a writer may fill its buffer again)."""
        if type(data) is not bytes:
            data = bytes(data)
        self._adler = zlib.adler32(data, self._adler)
        if self._copy is not None:
            self._copy.write(data)
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes >= slice_bytes:
            self._cut()
        return len(data)

    def _cut(self) -> None:
        """The bytes held become a slice, compressed by a thread."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(threads_max, thread_name_prefix="deflate")
        while len(self._slices) >= slices_in_flight_max:
            self._done.append(self._slices.popleft().result())
        self._slices.append(self._pool.submit(_deflated, b"".join(self._held), False))
        self._held, self._held_bytes = [], 0

    def finish(self) -> bytes:
        """The zlib stream of everything written."""
        last = _deflated(b"".join(self._held), True)
        self._held = []
        self._done.extend(s.result() for s in self._slices)
        self._slices.clear()
        self.close()
        return b"".join([_ZLIB_HEADER, *self._done, last, self._adler.to_bytes(4, "big")])

    def close(self) -> None:
        """Let the threads go (a render that failed leaves its slices unread)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def compressed(data: bytes) -> bytes:
    """A message already rendered whole, compressed for the outbox as `Compressor`
    compresses one written piece by piece: a zlib stream at `compress_level`."""
    return zlib.compress(data, compress_level)
