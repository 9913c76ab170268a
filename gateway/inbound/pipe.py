"""The pipe between the reading child and the booking process (`reader.py`): how an item
crosses it, and the child's writing side."""

from __future__ import annotations

import contextlib
import fcntl
import marshal
import os
import pickle
import queue
import struct
import sys
import termios
import threading
from typing import Any

chunks_ahead_max = 16  # events the child may have parsed and not yet written (~8 MB)
ahead_events = 1  # the child is ahead while this many events wait (`Sender.ahead`)

# How an item crosses the pipe: a frame of its kind, its length and its bytes. A chunk
# (`_checked`: lists and tuples of plain values) goes by `marshal`, which writes and reads
# such values faster than pickle; every other event (records with dates and
# decimals) by pickle — and a chunk holding anything marshal cannot write, too.
_FRAME = struct.Struct("<cI")
_MARSHAL, _PICKLE = b"m", b"p"
CUT_OFF = object()  # what `unframe` reads from a pipe that ends mid-frame or at once


def frame(item: Any) -> bytes:
    data, kind = b"", _PICKLE
    if type(item) is tuple:  # a chunk: records are of types of their own
        with contextlib.suppress(ValueError):
            data, kind = marshal.dumps(item), _MARSHAL
    if kind is _PICKLE:
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    return _FRAME.pack(kind, len(data)) + data


def unframe(pipe: Any) -> Any:
    """The next item from `pipe`, or `CUT_OFF` if the writer ended before it was whole."""
    head = pipe.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return CUT_OFF
    kind, size = _FRAME.unpack(head)
    data = pipe.read(size)
    if len(data) < size or kind not in (_MARSHAL, _PICKLE):
        return CUT_OFF
    return marshal.loads(data) if kind == _MARSHAL else pickle.loads(data)


class Sender:
    """The child's writing side: a thread writes the framed events (`frame`) into the pipe, so
    the parser can run up to `chunks_ahead_max` events ahead of a reader that is not
    reading yet (`scan --once` forks the child before it has loaded the database
    layer: `gateway.readahead`) — a pipe holds about two chunks. Memory stays bounded:
    the queue holds at most that many events."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=chunks_ahead_max)
        self._gone = threading.Event()
        self._thread = threading.Thread(target=self._write_all, daemon=True)
        self._thread.start()

    def _write_all(self) -> None:
        while (data := self._queue.get()) is not None:
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError:  # EPIPE: the reading process is gone
                self._gone.set()
                return
        os.close(self._fd)

    def ahead(self) -> bool:
        """Whether what was parsed here waits for the booking process to take it: events
        in the queue, and what was written still unread in the pipe (counted as one)."""
        waiting = self._queue.qsize()
        if waiting < ahead_events:
            unread = fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0")
            waiting += int.from_bytes(unread, sys.byteorder) > 0
        return waiting >= ahead_events

    def send(self, data: bytes) -> bool:
        """Queue `data` for the pipe; False once the reading process has gone."""
        while not self._gone.is_set():
            try:
                self._queue.put(data, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def finish(self) -> bool:
        """Wait until everything queued is written; False if the reader went away."""
        while not self._gone.is_set():
            try:
                self._queue.put(None, timeout=0.5)
                break
            except queue.Full:
                continue
        self._thread.join()  # returns at once if the reader went away
        return not self._gone.is_set()
