"""A rendered message's compressed form: an ordinary zlib stream, whatever the number of
slices compressed side by side (gateway/outbound/deflate.py)."""

from __future__ import annotations

import io
import threading
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.outbound import deflate, outbox


def _rendered_by(write: Callable[[Any], None]) -> tuple[bytes, bytes]:
    copy = io.BytesIO()
    return outbox.render(write, copy), copy.getvalue()


def _rendered(pieces: list[bytes]) -> tuple[bytes, bytes]:
    def write(out: object) -> None:
        for piece in pieces:
            out.write(piece)  # type: ignore[attr-defined]

    return _rendered_by(write)


def test_a_message_of_many_slices_is_one_zlib_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices of 64 KiB, more than the threads and more than may be in flight at once:
    `zlib.decompress` (which checks the Adler-32 at its end) gives back every byte, in
    order, and the plain copy is the same bytes."""
    monkeypatch.setattr(deflate, "slice_bytes", 1 << 16)
    pieces = [b"<Ntry><Amt>%d.00</Amt></Ntry>" % n * 50 for n in range(2000)]
    body, copy = _rendered(pieces)
    plain = b"".join(pieces)
    assert len(plain) > 20 * deflate.slice_bytes
    assert zlib.decompress(body) == plain == copy
    assert not any(t.name.startswith("deflate") for t in threading.enumerate())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=40), st.integers(1, 5000))
def test_any_cut_into_slices_decompresses_to_what_was_written(
    pieces: list[bytes], slice_bytes: int
) -> None:
    """Empty messages, empty writes, slices cut anywhere (also mid-piece: a slice is
    whatever was held when it passed the size)."""
    old = deflate.slice_bytes
    deflate.slice_bytes = slice_bytes
    try:
        body, copy = _rendered(pieces)
    finally:
        deflate.slice_bytes = old
    assert zlib.decompress(body) == b"".join(pieces) == copy


def test_a_failed_render_lets_its_threads_go(monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that raises after some slices were handed to threads: the error reaches
    the caller and no compressing thread is left behind."""
    monkeypatch.setattr(deflate, "slice_bytes", 1 << 10)

    def write(out: object) -> None:
        for _ in range(50):
            out.write(b"x" * 1000)  # type: ignore[attr-defined]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        outbox.render(write)
    assert not any(t.name.startswith("deflate") for t in threading.enumerate())


def test_a_writer_that_fills_its_buffer_again_gets_what_it_wrote(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `write` is given is taken as it is then: a writer refilling one `bytearray`
    between writes (as a binary stream may) had the stream keep the buffer itself until
    its slice was cut, and the stored answer failed its Adler-32 (a reviewer)."""
    monkeypatch.setattr(deflate, "slice_bytes", 1 << 16)
    buf = bytearray()
    written: list[bytes] = []

    def write(out: object) -> None:
        for n in range(100):
            buf[:] = b"<Ntry><Amt>%05d.00</Amt></Ntry>" % n * 50
            out.write(buf)  # type: ignore[attr-defined]
            written.append(bytes(buf))

    body, copy = _rendered_by(write)
    assert zlib.decompress(body) == b"".join(written) == copy
