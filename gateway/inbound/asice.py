"""Reading an ASiC-E container (`.asice`, `.sce`, Latvian eParaksts `.edoc`) safely.

A container is a zip whose first entry is the uncompressed `mimetype` file holding exactly
`application/vnd.etsi.asic-e+zip`, with one data file at its root (the batch), XAdES
signatures in `META-INF/signatures*.xml` and an optional `META-INF/manifest.xml`.

Containers come from clients and are hostile until read, so nothing here trusts the zip's
own bookkeeping: the number of entries is read from the end record before Python's
`zipfile` builds its directory (a small file can declare a million entries), every name is
checked before anything is read, and every entry is read through a counter that stops at
the limit, whatever sizes the headers claim (a zip bomb is refused after reading at most
the limit). Nothing is ever extracted to disk, so names only have to be refused, not
sanitised. A bad container is a value (`ContainerProblem`), never an exception: all of
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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from lxml import etree
from lxml.builder import ElementMaker

from gateway.inbound.route import container_bytes_max, meta_bytes_max

MIMETYPE = b"application/vnd.etsi.asic-e+zip"
SIGNATURES = re.compile(r"META-INF/signatures[^/]*\.xml")
MANIFEST = "META-INF/manifest.xml"

# The data file's limit comes from the caller (`route.container_data_bytes_max`).
signature_file_bytes_max = 1024 * 1024
signature_files_max = 32
entries_max = 64
name_chars_max = 255
central_directory_bytes_max = 256 * 1024
# Deflated pain.001 XML shrinks 20–40 times (repeated tags, similar payments); a ratio far
# beyond that is a bomb, refused as soon as the bytes read out outgrow it.
compression_ratio_max = 200
_chunk_bytes = 64 * 1024

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
    DATA_FILES = "not exactly one data file at the root"
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
    data: bytes
    data_sha256: bytes
    signatures: tuple[SignatureFile, ...]  # in name order; may be empty


def read_container(source: bytes | Path, *, data_bytes_max: int) -> Container | ContainerProblem:
    """Read a container from its bytes or its path. The file is not read whole: its size
    is checked first, then only the entries, each through a counter. Bad input is a
    `ContainerProblem`; only an I/O fault on `source` itself raises (OSError)."""
    if isinstance(source, bytes):
        return _read(io.BytesIO(source), len(source), data_bytes_max)
    # An OSError here is a fault of ours (the spool's disk), not the client's: it escapes.
    with source.open("rb") as stream:
        return _read(stream, os.fstat(stream.fileno()).st_size, data_bytes_max)


# --- the steps ------------------------------------------------------------------------


class _Refused(Exception):
    """Internal: unwinds to `_read`, which turns it into a ContainerProblem value."""

    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.refusal = refusal
        self.detail = detail


def _read(stream: BinaryIO, size: int, data_bytes_max: int) -> Container | ContainerProblem:
    try:
        if size > container_bytes_max(data_bytes_max):
            raise _Refused(
                Refusal.TOO_BIG,
                f"{size} bytes; a container may have at most "
                f"{container_bytes_max(data_bytes_max)}",
            )
        _check_end_record(stream, size)
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
            raise _Refused(Refusal.NOT_A_ZIP, f"not a zip file ({exc})") from exc
        with archive:
            return _contents(archive, data_bytes_max)
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


def _contents(archive: zipfile.ZipFile, data_bytes_max: int) -> Container:
    infos = archive.infolist()
    if len(infos) > entries_max:  # zipfile found more than the end record declared
        raise _Refused(Refusal.TOO_MANY_ENTRIES, f"{len(infos)} entries; at most {entries_max}")
    _check_mimetype(archive, infos)
    names = {"mimetype"}
    data_infos: list[zipfile.ZipInfo] = []
    signature_infos: list[zipfile.ZipInfo] = []
    meta_declared = 0
    for info in infos[1:]:
        _check_entry(info, names)
        if info.is_dir():
            continue
        if _is_meta(info):
            meta_declared += info.file_size
            if SIGNATURES.fullmatch(info.filename):
                signature_infos.append(info)
        elif "/" in info.filename:
            raise _Refused(Refusal.DATA_FILES, f"data file {info.filename!r} is not at the root")
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
    data_info = data_infos[0]
    data = _bounded(archive, data_info, data_bytes_max)
    signatures = tuple(
        SignatureFile(info.filename, _bounded(archive, info, signature_file_bytes_max))
        for info in sorted(signature_infos, key=lambda i: i.filename)
    )
    return Container(
        data_name=data_info.filename,
        data=data,
        data_sha256=hashlib.sha256(data).digest(),
        signatures=signatures,
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
    if info.is_dir():
        if info.file_size or info.compress_size > 2:  # an empty deflate stream is 2 bytes
            raise _Refused(Refusal.NOT_A_FILE, f"directory entry {name!r} has data")
        if name != "META-INF/":
            raise _Refused(Refusal.DATA_FILES, f"directory {name!r} in the container")
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


def _bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """The entry's bytes, read through a counter: refused as soon as they pass `limit` or
    outgrow `compression_ratio_max` times their compressed size, whatever the header says."""
    name = info.filename
    if info.file_size > limit:
        raise _Refused(Refusal.BOMB, f"{name!r} declares {info.file_size} bytes; at most {limit}")
    ratio_limit = max(info.compress_size, 1) * compression_ratio_max
    parts: list[bytes] = []
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
                parts.append(chunk)
    except (zipfile.BadZipFile, EOFError, zlib.error, ValueError, RuntimeError) as exc:
        # RuntimeError: zipfile's "password required"; the rest: a damaged entry or CRC.
        raise _Refused(Refusal.CORRUPT, f"entry {name!r} cannot be read ({exc})") from exc
    return b"".join(parts)


# --- writing (the signing side: `ekase-gateway sign`) ---------------------------------


def media_type(name: str) -> str:
    return "application/xml" if name.lower().endswith(".xml") else "application/octet-stream"


def write_container(
    data_name: str, data: bytes, signatures: Sequence[SignatureFile], *, moment: datetime
) -> bytes:
    """A container as DigiDoc writes them: `mimetype` first and stored, the data file at
    the root, the manifest, then the signatures. Entry times are `moment` (the signing
    time), so the same inputs give the same bytes."""
    problem = name_problem(data_name)
    if problem or "/" in data_name:
        raise ValueError(f"data file name {data_name!r} cannot be used in a container")
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    utc = moment.astimezone(UTC)
    stamp = (max(utc.year, 1980), utc.month, utc.day, utc.hour, utc.minute, utc.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:

        def put(name: str, content: bytes, method: int) -> None:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = method
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, content)

        put("mimetype", MIMETYPE, zipfile.ZIP_STORED)
        put(data_name, data, zipfile.ZIP_DEFLATED)
        put(MANIFEST, _manifest(data_name), zipfile.ZIP_DEFLATED)
        for signature in signatures:
            if not SIGNATURES.fullmatch(signature.name):
                raise ValueError(f"not a signatures file name: {signature.name!r}")
            put(signature.name, signature.xml, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _manifest(data_name: str) -> bytes:
    m = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
    E = ElementMaker(namespace=m, nsmap={"manifest": m})
    root = E("manifest", E("file-entry", {f"{{{m}}}full-path": "/",
                                          f"{{{m}}}media-type": MIMETYPE.decode()}),
             E("file-entry", {f"{{{m}}}full-path": data_name,
                              f"{{{m}}}media-type": media_type(data_name)}),
             {f"{{{m}}}version": "1.2"})
    etree.indent(root)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return data + b"\n"
