"""Reading an ASiC-E container (`.asice`, `.sce`, Latvian eParaksts `.edoc`) safely.

A container is a zip whose first entry is the uncompressed `mimetype` file holding exactly
`application/vnd.etsi.asic-e+zip`, with one data file (the batch; at the root or in a
folder, never in `META-INF/`), XAdES signatures in `META-INF/*signatures*.xml` (ETSI EN
319 162-1) and an optional `META-INF/manifest.xml`. Everything in it unzips to at most the
caller's `unzipped_bytes_max` (SPEC §11: `max_file_bytes` + 1 MiB), every entry counted
by the size its header declares, which is all `zipfile` ever reads of it.

Containers come from clients and are hostile until read, so nothing here trusts the zip's
own bookkeeping: the number of entries is read from the end record before Python's
`zipfile` builds its directory (a small file can declare a million entries), every name is
checked before anything is read, and every entry is read through a counter that stops at
the limit, whatever sizes the headers claim (a zip bomb is refused after reading at most
the limit). Nothing is extracted under a name the container gives (a big data file is
written to the caller's scratch file, `read_container`), so names only have to be
refused, not sanitised. A bad container is a value (`ContainerProblem`), never an exception: all of
them are SPEC §11's `DS0B` (container unreadable).
"""

from __future__ import annotations

import enum
import hashlib
import io
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gateway.files import write_new_from
from gateway.inbound.route import container_bytes_max, meta_bytes_max

MIMETYPE = b"application/vnd.etsi.asic-e+zip"
SIGNATURES = re.compile(r"META-INF/[^/]*signatures[^/]*\.xml")
MANIFEST = "META-INF/manifest.xml"

# The whole container's unzipped limit comes from the caller
# (`route.container_unzipped_bytes_max`).
signature_file_bytes_max = 1024 * 1024
signature_files_max = 32
entries_max = 64
name_chars_max = 255
central_directory_bytes_max = 256 * 1024
# Deflated pain.001 XML shrinks 20–40 times (repeated tags, similar payments); a ratio far
# beyond that is a bomb, refused as soon as the bytes read out outgrow it.
compression_ratio_max = 200
_chunk_bytes = 64 * 1024
# A data file declaring more than this is written to the caller's scratch file as it is
# read (`read_container`), not held in memory: a batch of a million payments is hundreds of MB.
in_memory_bytes_max = 16 << 20
head_bytes = 64  # of the data file kept in `Container.data_head`

_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_LOCATOR_BYTES = 20
_COMMENT_BYTES_MAX = 0xFFFF


class Refusal(enum.Enum):
    """Why a container is refused. Every one is SPEC §11 `DS0B` (container unreadable)."""

    TOO_BIG = "container too big"
    NOT_A_ZIP = "not a zip file"
    TOO_MANY_ENTRIES = "too many entries"
    MIMETYPE = "mimetype entry missing or wrong"
    UNSAFE_NAME = "unsafe entry name"
    DUPLICATE_NAME = "duplicate entry name"
    NOT_A_FILE = "entry is a symlink, device or directory with data"
    ENCRYPTED = "encrypted entry"
    COMPRESSION = "unsupported compression"
    DATA_FILES = "not exactly one data file"
    BOMB = "unzipped size or compression ratio above the limit"
    CORRUPT = "entry cannot be read"


@dataclass(frozen=True, slots=True)
class ContainerProblem:
    refusal: Refusal
    detail: str

    def describe(self) -> str:
        """One English line for the findings file and `AddtlInf`."""
        return f"container refused: {self.detail}"


@dataclass(frozen=True, slots=True)
class SignatureFile:
    name: str  # e.g. META-INF/signatures0.xml
    xml: bytes


@dataclass(frozen=True, slots=True)
class Container:
    data_name: str
    data_sha256: bytes
    data_size: int
    data_head: bytes  # its first `head_bytes` (`route.claims_container`)
    signatures: tuple[SignatureFile, ...]  # in name order; may be empty
    # The data file's bytes: held (a bytearray, `_bounded`), or written to the scratch
    # file `read_container` was given (`data_path`).
    data: bytes | bytearray | None = None
    data_path: Path | None = None

    def digest(self, algorithm: str) -> bytes:
        """The data file's digest by `algorithm` (a `hashlib` name)."""
        if algorithm == "sha256":
            return self.data_sha256
        if self.data is not None:
            return hashlib.new(algorithm, self.data).digest()
        assert self.data_path is not None
        with self.data_path.open("rb") as handle:
            return hashlib.file_digest(handle, algorithm).digest()


def read_container(
    source: bytes | Path, *, unzipped_bytes_max: int, scratch: Path | None = None
) -> Container | ContainerProblem:
    """Read a container from its bytes or its path. The file is not read whole: its size
    is checked first, then only the entries, each through a counter. With `scratch`, a
    data file of more than `in_memory_bytes_max` is written there as it is read (a file
    left there is replaced; the caller removes it when done). Bad input is a
    `ContainerProblem` (and no scratch file); only an I/O fault on `source` itself or
    `scratch` raises (OSError)."""
    try:
        if isinstance(source, bytes):
            found = _read(io.BytesIO(source), len(source), unzipped_bytes_max, scratch)
        else:
            # An OSError here is a fault of ours (the spool's disk), not the client's.
            with source.open("rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                found = _read(stream, size, unzipped_bytes_max, scratch)
    except BaseException:
        if scratch is not None:
            scratch.unlink(missing_ok=True)
        raise
    if isinstance(found, ContainerProblem) and scratch is not None:
        scratch.unlink(missing_ok=True)
    return found


# --- the steps ------------------------------------------------------------------------


class _Refused(Exception):
    """Internal: unwinds to `_read`, which turns it into a ContainerProblem value."""

    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.refusal = refusal
        self.detail = detail


def _read(
    stream: BinaryIO, size: int, unzipped_bytes_max: int, scratch: Path | None
) -> Container | ContainerProblem:
    try:
        if size > container_bytes_max(unzipped_bytes_max):
            raise _Refused(
                Refusal.TOO_BIG,
                f"{size} bytes; a container may have at most "
                f"{container_bytes_max(unzipped_bytes_max)}",
            )
        _check_end_record(stream, size)
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
            raise _Refused(Refusal.NOT_A_ZIP, f"not a zip file ({exc})") from exc
        with archive:
            return _contents(archive, unzipped_bytes_max, scratch)
    except _Refused as refused:
        return ContainerProblem(refused.refusal, refused.detail)


def _check_end_record(stream: BinaryIO, size: int) -> None:
    """Read the entry count and directory size from the end-of-central-directory record,
    before `zipfile` builds one object per declared entry. Zip64 (for more than 65,535
    entries or 4 GiB) is far beyond every container limit and refused outright."""
    tail_bytes = min(size, _EOCD.size + _COMMENT_BYTES_MAX + _ZIP64_LOCATOR_BYTES)
    stream.seek(size - tail_bytes)
    tail = stream.read(tail_bytes)
    # The same search as zipfile's: at the very end (no comment), else the last signature.
    at = len(tail) - _EOCD.size
    if at < 0 or tail[at : at + 4] != _EOCD_SIGNATURE:
        at = tail.rfind(_EOCD_SIGNATURE)
    if at < 0 or len(tail) - at < _EOCD.size:
        raise _Refused(Refusal.NOT_A_ZIP, "not a zip file (no end of central directory)")
    _, _, _, _, entries, cd_bytes, _, _ = _EOCD.unpack_from(tail, at)
    if at >= _ZIP64_LOCATOR_BYTES and tail[at - _ZIP64_LOCATOR_BYTES :].startswith(
        _ZIP64_LOCATOR_SIGNATURE
    ):
        raise _Refused(Refusal.TOO_MANY_ENTRIES, "zip64 archive (beyond every container limit)")
    if entries > entries_max:
        raise _Refused(Refusal.TOO_MANY_ENTRIES, f"{entries} entries; at most {entries_max}")
    if cd_bytes > central_directory_bytes_max:
        raise _Refused(Refusal.TOO_MANY_ENTRIES, f"central directory of {cd_bytes} bytes")
    stream.seek(0)


def data_file_size(path: Path) -> int | None:
    """A glance at a container without reading it: the size its one data file declares,
    or None when it does not have exactly one (`read_container` judges it in full)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return None
    if len(infos) > entries_max:
        return None
    data = [i for i in infos[1:] if not i.is_dir() and not _is_meta(i)]
    return data[0].file_size if len(data) == 1 else None


def _is_meta(info: zipfile.ZipInfo) -> bool:
    return info.filename.startswith("META-INF/")


def _contents(archive: zipfile.ZipFile, unzipped_bytes_max: int, scratch: Path | None) -> Container:
    infos = archive.infolist()
    if len(infos) > entries_max:  # zipfile found more than the end record declared
        raise _Refused(Refusal.TOO_MANY_ENTRIES, f"{len(infos)} entries; at most {entries_max}")
    _check_mimetype(archive, infos)
    names = {"mimetype"}
    data_infos: list[zipfile.ZipInfo] = []
    signature_infos: list[zipfile.ZipInfo] = []
    meta_declared = 0
    declared = sum(info.file_size for info in infos)
    if declared > unzipped_bytes_max:
        raise _Refused(
            Refusal.BOMB, f"it unzips to {declared} bytes; at most {unzipped_bytes_max}"
        )
    for info in infos[1:]:
        _check_entry(info, names)
        if info.is_dir():
            continue
        if _is_meta(info):
            meta_declared += info.file_size
            if SIGNATURES.fullmatch(info.filename):
                signature_infos.append(info)
        else:
            data_infos.append(info)
    if len(data_infos) != 1:
        found = ", ".join(repr(i.filename) for i in data_infos) or "none"
        raise _Refused(Refusal.DATA_FILES, f"expected exactly one data file, found {found}")
    if len(signature_infos) > signature_files_max:
        raise _Refused(
            Refusal.TOO_MANY_ENTRIES,
            f"{len(signature_infos)} signature files; at most {signature_files_max}",
        )
    if meta_declared > meta_bytes_max:
        raise _Refused(Refusal.BOMB, f"META-INF declares {meta_declared} bytes")
    info = data_infos[0]
    if scratch is not None and info.file_size > in_memory_bytes_max:
        sha256, size, head = _extract(archive, info, unzipped_bytes_max, scratch)
        return Container(info.filename, sha256, size, head,
                         _signature_files(archive, signature_infos), data_path=scratch)  # fmt: skip
    data = _bounded(archive, info, unzipped_bytes_max)
    return Container(info.filename, hashlib.sha256(data).digest(), len(data),
                     bytes(data[:head_bytes]), _signature_files(archive, signature_infos),
                     data=data)  # fmt: skip


def _extract(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, scratch: Path
) -> tuple[bytes, int, bytes]:
    """The entry written to `scratch` (read-only; not synced) through `_blocks`: its
    SHA-256, size and first `head_bytes`."""
    sha256, head = hashlib.sha256(), bytearray()
    size = 0

    def blocks() -> Iterator[bytes]:
        nonlocal size
        for block in _blocks(archive, info, limit):
            sha256.update(block)
            size += len(block)
            if len(head) < head_bytes:
                head.extend(block[: head_bytes - len(head)])
            yield block

    scratch.unlink(missing_ok=True)
    write_new_from(scratch, blocks(), mode=0o444, sync=False)
    return sha256.digest(), size, bytes(head)


def _signature_files(
    archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]
) -> tuple[SignatureFile, ...]:
    return tuple(
        SignatureFile(info.filename, bytes(_bounded(archive, info, signature_file_bytes_max)))
        for info in sorted(infos, key=lambda i: i.filename)
    )


def _check_mimetype(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    first = infos[0] if infos else None
    if first is None or first.filename != "mimetype" or first.header_offset != 0:
        raise _Refused(Refusal.MIMETYPE, "the first entry is not 'mimetype'")
    if first.compress_type != zipfile.ZIP_STORED:
        raise _Refused(Refusal.MIMETYPE, "the 'mimetype' entry is compressed")
    _check_entry(first, set())
    if first.file_size != len(MIMETYPE):
        raise _Refused(Refusal.MIMETYPE, f"mimetype is {first.file_size} bytes, not {MIMETYPE!r}")
    content = _bounded(archive, first, len(MIMETYPE))
    if content != MIMETYPE:
        raise _Refused(Refusal.MIMETYPE, f"mimetype is {content[:64]!r}, not {MIMETYPE!r}")


def _check_entry(info: zipfile.ZipInfo, seen: set[str]) -> None:
    name = info.filename
    problem = name_problem(name)
    if problem:
        raise _Refused(Refusal.UNSAFE_NAME, f"entry name {name[:80]!r}: {problem}")
    if name in seen:
        raise _Refused(Refusal.DUPLICATE_NAME, f"entry {name!r} appears twice")
    seen.add(name)
    if info.flag_bits & 0x1:
        raise _Refused(Refusal.ENCRYPTED, f"entry {name!r} is encrypted")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if stat.S_ISLNK(kind):
        raise _Refused(Refusal.NOT_A_FILE, f"entry {name!r} is a symbolic link")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _Refused(Refusal.NOT_A_FILE, f"entry {name!r} is not a regular file")
    # a folder's own entry (META-INF/, or the data file's folder) holds nothing: an empty
    # deflate stream is 2 bytes
    if info.is_dir() and (info.file_size or info.compress_size > 2):
        raise _Refused(Refusal.NOT_A_FILE, f"directory entry {name!r} has data")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _Refused(Refusal.COMPRESSION, f"entry {name!r} uses compression method "
                       f"{info.compress_type}")


def name_problem(name: str) -> str | None:
    if not name or len(name) > name_chars_max:
        return "empty or too long"
    if "\\" in name:
        return "backslash"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "absolute path"
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        return "control character"
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "empty, '.' or '..' path component"
    if len(parts) > 2:
        return "nested too deep"
    return None


def _blocks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> Iterator[bytes]:
    """The entry's bytes, read through a counter: refused as soon as they pass `limit` or
    outgrow `compression_ratio_max` times their compressed size, whatever the header says."""
    name = info.filename
    if info.file_size > limit:
        raise _Refused(Refusal.BOMB, f"{name!r} declares {info.file_size} bytes; at most {limit}")
    ratio_limit = max(info.compress_size, 1) * compression_ratio_max
    total = 0
    try:
        with archive.open(info) as entry:
            # Ask for one byte more than the limit: that byte is what tells "exactly at
            # the limit" from "more" (zipfile itself stops at the size the header claims).
            while chunk := entry.read(min(_chunk_bytes, limit + 1 - total)):
                total += len(chunk)
                if total > limit:
                    raise _Refused(Refusal.BOMB, f"{name!r} unzips to more than {limit} bytes")
                if total > ratio_limit:
                    raise _Refused(
                        Refusal.BOMB,
                        f"{name!r} unzips more than {compression_ratio_max} times its size",
                    )
                yield chunk
    except (zipfile.BadZipFile, EOFError, zlib.error, ValueError, RuntimeError) as exc:
        # RuntimeError: zipfile's "password required"; the rest: a damaged entry or CRC.
        raise _Refused(Refusal.CORRUPT, f"entry {name!r} cannot be read ({exc})") from exc


def _bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytearray:
    """`_blocks` in one buffer of the size the header declares (at most `limit`), not
    gathered and joined: what is read is held once, never twice."""
    buffer = bytearray(min(info.file_size, limit))
    total = 0
    for block in _blocks(archive, info, limit):
        start, total = total, total + len(block)
        buffer[start:total] = block  # past the declared size, it grows
    del buffer[total:]  # short of it (zipfile's CRC check would say so)
    return buffer
