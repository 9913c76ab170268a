"""Reading an inbound file in a child process, so parsing and booking run side by side.

The parse (lxml + XSD, copying each transaction into a record) is about half the
work of a big file. A forked child does it and sends the records through a pipe
while this process decides and books the chunks already received: on a 2-core
machine the two halves overlap. The child sends the file's `Digest` first (this
process needs it before anything else: is the file known?), then, in file order,
the group header, each payment information, `Chunk`s of transactions each with
what it says on its own (`facts.py`: amount in minor units, IBAN and BIC checks,
fingerprint — the work a transaction needs before any account is known; see below), and
the `ParsedFile` summary.

Which side is slower depends on the file: verbose records make the parse the longer
half, simple bookings with many treasury creditors the booking. So the line between the
two sides moves with the work. Whether each transaction repeats an EndToEndId of the file
is always worked out here (it needs the file in order). What a transaction says on its own
(`facts.facts`) and what an answer echoes of it as read (`Chunk.echoes`, rendered by the
function the caller passes: `pain002_v03.original`) are worked out here only while the
child is ahead — while what it has parsed waits for the booking process, in its queue or
unread in the pipe (`pipe.Sender.ahead`); otherwise the booking process works them out as it
takes the chunk (`_Decoder`) and renders the echo beside the outcome. Either side calls
the same functions with the same values, so the answer does not depend on who did it.

The module is light on purpose (lxml and the reader of pain.001 only; the rules
load in the child): `scan --once` starts reading the first waiting file before it
imports the database layer (`gateway.readahead`).

The child is kept to reading the file and writing the pipe:
- it closes every descriptor it inherited but the pipe (listening sockets, client
  connections, the database), so nothing of the daemon's stays open in it;
- it freezes the inherited heap (`gc.freeze`), so no object of the parent's is
  finalised in it, and leaves with `os._exit`, running no exit handlers;
- it ignores SIGTERM and SIGINT: stopping the daemon lets the file in hand finish.
The child runs at most `pipe.chunks_ahead_max` events (and a pipe of ~two chunks) ahead
of this process, so memory stays bounded (`pipe.Sender`). If this process goes away the
child's next write fails and it exits; `close` kills it if it is still there. A
child that ends without sending its summary (a crash in the parser, the OOM killer)
is reported as `ReaderFailed`: a defect of ours, never answered with a reason code
(retried, and set aside in quarantine/ the third time, as `filerun.fault_of_ours` says).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import gc
import hashlib
import os
import signal
import time
import traceback
from collections.abc import Callable, Generator, Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from gateway.errors import TransientError
from gateway.files import Digest, sha256_file
from gateway.inbound import pain001_v03, pipe
from gateway.inbound.facts import Facts, facts
from gateway.inbound.parsed import ParsedFile, ParsedHeader, ParsedPmtInf, ParsedTx

pipe_buffer_bytes = 1 << 20
_make_tx = ParsedTx._make
# A chunk's rows are made records only where their facts are worked out: whether each
# repeats an EndToEndId needs that field alone.
_E2E, _PMT_SEQ = (itemgetter(ParsedTx._fields.index(f)) for f in ("end_to_end_id", "pmt_seq"))
_make_facts = Facts._make
pipe_capacity_bytes = 1 << 20  # Linux's default pipe-max-size for unprivileged users
exit_wait_seconds = 5.0
inline_bytes_max = 1 << 20  # files up to this size are read in-process (`read`)

# What an answer echoes of a transaction as read, before and after its outcome, and the
# function that renders it from the transaction, its amount as sent and ReqdExctnDt.
Echo = tuple[str, str]
EchoOf = Callable[[ParsedTx, int | None, dt.date | None], Echo]


class Chunk(NamedTuple):
    """Transactions in file order, and beside each what it says on its own
    (`facts.facts`, worked out where the file is read)."""

    transactions: list[ParsedTx]
    facts: list[Facts]
    echoes: list[Echo] | None  # rendered by the child, when it was ahead (module docstring)


Incoming = ParsedHeader | ParsedPmtInf | Chunk | ParsedFile
feed_bytes = 1 << 16  # the file is read and parsed in blocks of this size


def blocks(path: Path) -> Iterator[bytes]:
    """The file's bytes, `feed_bytes` at a time: the read stage is where a file is opened."""
    with open(path, "rb") as handle:
        while block := handle.read(feed_bytes):
            yield block


class ReaderFailed(RuntimeError):
    """The reading child ended without a summary of the file."""


def _serve(path: Path, transactions_max: int, echo: EchoOf | None, write_fd: int) -> int:
    """The child's whole life: read `path`, send each event, return the exit code."""
    gc.freeze()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.closerange(3, write_fd)
    os.closerange(write_fd + 1, os.sysconf("SC_OPEN_MAX"))
    sender = pipe.Sender(write_fd)
    try:
        for item in _items(path, transactions_max, echo, sender.ahead):
            if not sender.send(pipe.frame(item)):
                return 0  # the reading process is gone: nothing left to do
        if not sender.finish():
            return 0
    except BaseException:
        # A bug in the reader (EX_SOFTWARE): the parent reports ReaderFailed; the
        # traceback goes straight to the inherited stderr (a raw write: a lock of
        # sys.stderr may have been held by another thread at the fork).
        with contextlib.suppress(OSError):
            os.write(2, traceback.format_exc().encode("utf-8", "replace"))
        return 70
    return 0


def _items(
    path: Path, transactions_max: int, echo: EchoOf | None, ahead: Callable[[], bool]
) -> Generator[Any, None, None]:
    """What reading `path` yields, as it crosses the pipe: its `Digest` first (the
    booking process needs it before anything else: is this file known?), then the
    reader's events, a chunk's as plain tuples (`_Decoder` makes them events again)."""

    yield sha256_file(path)
    events = pain001_v03.stream(blocks(path), transactions_max=transactions_max)
    yield from _checked(events, echo, ahead)


def _small_items(data: bytes, transactions_max: int) -> Generator[Any, None, None]:
    """`_items` of a small file already read whole (it is opened and read once)."""
    yield Digest(hashlib.sha256(data).hexdigest(), len(data))
    pieces = (data[at : at + feed_bytes] for at in range(0, len(data), feed_bytes))
    events = pain001_v03.stream(pieces, transactions_max=transactions_max)
    yield from _checked(events, None, _always)


def _always() -> bool:
    return True


def _checked(
    events: Iterator[Any], echo: EchoOf | None, ahead: Callable[[], bool]
) -> Iterator[Any]:
    """The events, each chunk as plain tuples (`_Decoder` makes them records again) with
    whether each transaction repeats an EndToEndId of the file and, if `ahead()` says so,
    their facts and echoes (else the booking process works them out)."""
    from gateway.inbound.facts import parse_date, repeats

    pmts: dict[int, ParsedPmtInf] = {}
    days: dict[int, dt.date | None] = {}  # each payment information's ReqdExctnDt, read once
    seen_e2e: set[str] = set()
    held: list[ParsedPmtInf] = []  # payment informations read, sent as one item before the next
    texts: dict[str, str] = {}
    for event in events:
        if isinstance(event, ParsedPmtInf):
            _share_texts(event, texts)
            pmts[event.seq] = event
            days[event.seq] = parse_date(event.requested_date)
            held.append(event)
            continue
        if held:
            yield held
            held = []
        if isinstance(event, list):
            repeated = repeats(map(_E2E, event), seen_e2e)
            forget_before(_PMT_SEQ(event[0]), pmts, days)
            if not ahead():
                yield (event, repeated, None, None)
                continue
            txs = list(map(_make_tx, event))
            said = list(map(facts, txs, [pmts[t.pmt_seq] for t in txs], repeated))
            echoes = None
            if echo is not None:
                echoes = [
                    echo(t, f.amount_sent, days[t.pmt_seq])
                    for t, f in zip(txs, said, strict=True)
                ]
            yield (event, repeated, list(map(tuple, said)), echoes)
        else:
            yield event


# Payment informations that repeat one another's debtor and date (an ERP writing one per
# payment) name them with one string each, not one per record: pickled together they
# cross the pipe once (pickle keeps one copy of an object sent twice), and so stay.
_REPEATED_TEXTS = (
    "requested_date", "debtor_name", "debtor_iban", "debtor_other_id", "debtor_currency",
    "debtor_bic", "ultimate_debtor", "nb_of_txs",
)  # fmt: skip
shared_texts_max = 4096


def _share_texts(record: ParsedPmtInf, texts: dict[str, str]) -> None:
    for name in _REPEATED_TEXTS:
        value = getattr(record, name)
        if value is None:
            continue
        same = texts.get(value)
        if same is not None:
            setattr(record, name, same)
        elif len(texts) < shared_texts_max:
            texts[value] = value


def forget_before(seq: int, *by_position: dict[int, Any]) -> None:
    """Let go of what is kept of the payment informations before position `seq` (each
    mapping by position, in file order): their transactions have all come by now."""
    for kept in by_position:
        while kept and (first := next(iter(kept))) < seq:
            del kept[first]


class _Decoder:
    """The events again from what crossed the pipe: a chunk's records, with their facts
    worked out here when the child was not ahead of the booking process (they need each
    transaction's payment information, which passed before its chunks)."""

    def __init__(self) -> None:
        self.pmts: dict[int, ParsedPmtInf] = {}

    def __call__(self, item: Any) -> list[Incoming]:
        """The events of one item that crossed the pipe, in file order."""
        if type(item) is list:  # payment informations, each before its transactions
            for record in item:
                self.pmts[record.seq] = record
            return item
        if type(item) is not tuple:  # a record of its own type (the summary among them)
            return [item]
        rows, repeated, said, echoes = item
        txs = list(map(_make_tx, rows))
        forget_before(txs[0].pmt_seq, self.pmts)
        if said is None:
            pmts = [self.pmts[t.pmt_seq] for t in txs]
            return [Chunk(txs, list(map(facts, txs, pmts, repeated)), None)]
        return [Chunk(txs, list(map(_make_facts, said)), echoes)]


def read(path: Path, *, transactions_max: int, echo: EchoOf | None = None) -> Reading:
    """The reading of `path`: by a child process (`Reader`) for a big file, so that
    parsing and booking run side by side; in this process (`InlineRead`) for a small
    one, where starting a child would cost more than the parse. `echo`: what the
    child may render for the answer while it is ahead (module docstring)."""
    if path.stat().st_size <= inline_bytes_max:
        return InlineRead(path, transactions_max=transactions_max)
    return Reader(path, transactions_max=transactions_max, echo=echo)


class InlineRead:
    """A small file read in this process, with `Reader`'s interface and events."""

    def __init__(self, path: Path, *, transactions_max: int) -> None:
        self._items = _small_items(path.read_bytes(), transactions_max)
        self._digest: Digest | None = None

    def digest(self) -> Digest:
        if self._digest is None:
            self._digest = next(self._items)
        return self._digest

    def __iter__(self) -> Iterator[Incoming]:
        self.digest()
        decoded = _Decoder()
        for item in self._items:
            yield from decoded(item)

    def close(self) -> None:
        self._items.close()

    def __enter__(self) -> InlineRead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Reader:
    """`with Reader(path, transactions_max=…) as reader: for event in reader: …`"""

    def __init__(
        self, path: Path, *, transactions_max: int, echo: EchoOf | None = None
    ) -> None:
        pain001_v03.schema()  # compiled once here, not again in every child
        try:
            read_fd, write_fd = os.pipe()
        except OSError as exc:
            raise TransientError(f"cannot start the reader: {exc}") from exc
        with contextlib.suppress(OSError):  # a bigger pipe lets the child run a chunk ahead
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, pipe_capacity_bytes)
        try:
            pid = os.fork()
        except OSError as exc:  # EAGAIN at the task limit, ENOMEM: not the file's fault
            os.close(read_fd)
            os.close(write_fd)
            raise TransientError(f"cannot start the reader: {exc}") from exc
        if pid == 0:  # the child
            code = 70
            try:
                os.close(read_fd)
                code = _serve(path, transactions_max, echo, write_fd)
            finally:
                os._exit(code)
        os.close(write_fd)
        self._pid: int | None = pid
        self._exit_code: int | None = None
        self._pipe = os.fdopen(read_fd, "rb", buffering=pipe_buffer_bytes)
        self._digest: Digest | None = None

    def _receive(self) -> Any:
        item = pipe.unframe(self._pipe)
        if item is pipe.CUT_OFF:
            raise ReaderFailed(f"the reader ended without finishing the file ({self._wait()})")
        return item

    def digest(self) -> Digest:
        """The file's SHA-256 and size, as the child read it (before it parsed it)."""
        if self._digest is None:
            first = self._receive()
            if not isinstance(first, Digest):
                raise ReaderFailed(f"the reader sent {type(first).__name__} before the digest")
            self._digest = first
        return self._digest

    def __iter__(self) -> Iterator[Incoming]:
        self.digest()  # sent first
        decoded = _Decoder()
        while True:
            for event in decoded(self._receive()):
                yield event
                if isinstance(event, ParsedFile):
                    return

    def _wait(self, timeout: float = exit_wait_seconds) -> str:
        """Reap the child; how it ended, for messages."""
        deadline = time.monotonic() + timeout
        while self._pid is not None:
            try:
                pid, status = os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: it has ended, how is unknown
                self._pid = None
                break
            if pid:
                self._pid = None
                self._exit_code = os.waitstatus_to_exitcode(status)
            elif time.monotonic() >= deadline:
                return "still running"
            else:
                time.sleep(0.005)
        code = self._exit_code
        return f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"

    def close(self) -> None:
        self._pipe.close()  # a child still writing gets a broken pipe and ends
        if self._pid is None:
            return
        if self._wait(timeout=exit_wait_seconds) == "still running":
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            self._wait(timeout=60)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Reading = Reader | InlineRead  # what `read` gives
