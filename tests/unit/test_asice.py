"""Reading ASiC-E containers: a good one hands back the batch's bytes; every hostile or
broken one is refused as a value (SPEC §11 DS0B), never an exception, and without
reading more than the limit."""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import warnings
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway import asice_writer
from gateway.inbound import asice, route
from gateway.inbound.asice import Container, ContainerProblem, Refusal, SignatureFile

NOW = datetime(2026, 11, 25, 10, 15, 1, tzinfo=UTC)
LIMIT = 1024 * 1024  # unzipped_bytes_max for these tests
BATCH = b'<?xml version="1.0" encoding="UTF-8"?>\n<Document>\r\n  <x a="1"/></Document>\n'
SIG = b"<asic:XAdESSignatures xmlns:asic='http://uri.etsi.org/02918/v1.2.1#'/>"


@dataclass(frozen=True)
class Entry:
    name: str
    data: bytes = b""
    method: int = zipfile.ZIP_DEFLATED
    mode: int = stat.S_IFREG | 0o644


MIMETYPE_ENTRY = Entry("mimetype", asice.MIMETYPE, zipfile.ZIP_STORED)


def build(*entries: Entry) -> bytes:
    """A zip with exactly these entries, in this order, whatever they are."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, date_time=(2026, 11, 25, 10, 15, 0))
            info.compress_type = entry.method
            info.external_attr = entry.mode << 16
            archive.writestr(info, entry.data)
    return buffer.getvalue()


def good(*extra: Entry, data: bytes = BATCH, name: str = "batch.xml") -> bytes:
    return build(MIMETYPE_ENTRY, Entry(name, data),
                 Entry("META-INF/manifest.xml", b"<manifest/>"),
                 Entry("META-INF/signatures0.xml", SIG), *extra)


def refused(blob: bytes, limit: int = LIMIT) -> ContainerProblem:
    result = asice.read_container(blob, unzipped_bytes_max=limit)
    assert isinstance(result, ContainerProblem), result
    return result


def test_good_container_hands_back_the_batch_bytes_and_signatures() -> None:
    """The data file's exact bytes (line endings and all) and its SHA-256 come back, so the
    pain.001 reader decides what they are and the batch is matched by digest."""
    result = asice.read_container(good(), unzipped_bytes_max=LIMIT)
    assert result == Container(
        data_name="batch.xml",
        data_sha256=hashlib.sha256(BATCH).digest(),
        data_size=len(BATCH),
        data_head=BATCH[: asice.head_bytes],
        signatures=(SignatureFile("META-INF/signatures0.xml", SIG),),
        data=BATCH,
    )
    assert result.digest("sha512") == hashlib.sha512(BATCH).digest()


def test_a_big_data_file_is_written_to_the_scratch_file_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data file above `in_memory_bytes_max` goes to the caller's scratch file as it is
    read (a million payments are 345 MB): the same bytes, digests and head as if held."""
    monkeypatch.setattr(asice, "in_memory_bytes_max", 16)
    scratch = tmp_path / "claim.data.xml"
    scratch.write_bytes(b"left by a stopped run")
    result = asice.read_container(good(), unzipped_bytes_max=LIMIT, scratch=scratch)
    assert isinstance(result, Container)
    assert (result.data, result.data_path) == (None, scratch)
    assert scratch.read_bytes() == BATCH and stat.S_IMODE(scratch.stat().st_mode) == 0o444
    assert (result.data_size, result.data_head) == (len(BATCH), BATCH[: asice.head_bytes])
    assert result.data_sha256 == hashlib.sha256(BATCH).digest()
    assert result.digest("sha384") == hashlib.sha384(BATCH).digest()
    small = asice.read_container(good(data=b"<a/>"), unzipped_bytes_max=LIMIT, scratch=scratch)
    assert isinstance(small, Container) and small.data == b"<a/>" and small.data_path is None


@pytest.mark.parametrize("limit", [20, LIMIT])
def test_a_refused_container_leaves_no_scratch_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """Refused while its data file is written (too big) or after (a signature file too
    big): nothing of it stays in the scratch file."""
    monkeypatch.setattr(asice, "in_memory_bytes_max", 16)
    monkeypatch.setattr(asice, "signature_file_bytes_max", 8)
    scratch = tmp_path / "claim.data.xml"
    problem = asice.read_container(good(), unzipped_bytes_max=limit, scratch=scratch)
    assert isinstance(problem, ContainerProblem) and problem.refusal is Refusal.BOMB
    assert not scratch.exists()


def test_data_file_that_is_not_a_pain001_is_still_handed_back() -> None:
    """What the data file is, is the pain.001 reader's call (FF01), not the container's."""
    result = asice.read_container(good(data=b"%PDF-1.4 not xml", name="invoice.pdf"),
                                  unzipped_bytes_max=LIMIT)
    assert isinstance(result, Container)
    assert (result.data_name, result.data) == ("invoice.pdf", b"%PDF-1.4 not xml")


def test_signatures_are_every_signatures_file_in_name_order() -> None:
    blob = build(MIMETYPE_ENTRY, Entry("META-INF/signatures1.xml", b"<b/>"), Entry("b.xml", BATCH),
                 Entry("META-INF/signatures0.xml", b"<a/>"), Entry("META-INF/other.xml", b"x"))
    result = asice.read_container(blob, unzipped_bytes_max=LIMIT)
    assert isinstance(result, Container)
    assert [s.name for s in result.signatures] == ["META-INF/signatures0.xml",
                                                   "META-INF/signatures1.xml"]


def test_a_container_unzipping_to_exactly_the_limit_is_read_and_one_byte_more_is_refused() -> None:
    """SPEC §11: "unzipped size ≤ max_file_bytes + 1 MiB" — every entry counted, the
    data file and META-INF alike (the data file alone was held to it: META-INF could
    unzip to 8 MiB more, an outside review)."""
    others = len(asice.MIMETYPE) + len(b"<manifest/>") + len(SIG)
    at_limit = good(data=b"x" * (1000 - others))
    assert isinstance(asice.read_container(at_limit, unzipped_bytes_max=1000), Container)
    problem = refused(good(data=b"x" * (1001 - others)), limit=1000)
    assert problem.refusal is Refusal.BOMB and "unzips to 1001 bytes" in problem.detail
    junk = good(Entry("META-INF/junk.bin", b"j" * 1000), data=b"<Document/>")
    assert refused(junk, limit=1000).refusal is Refusal.BOMB


def test_a_data_file_in_a_folder_is_inside_the_root_and_is_read() -> None:
    """SPEC §11's path rule is "no paths outside the container's root": a data file in a
    folder (with or without the folder's own entry) is the container's data file."""
    for extra in ((), (Entry("docs/", b"", zipfile.ZIP_STORED, stat.S_IFDIR | 0o755),)):
        blob = build(MIMETYPE_ENTRY, *extra, Entry("docs/batch.xml", BATCH),
                     Entry("META-INF/signatures0.xml", SIG))
        result = asice.read_container(blob, unzipped_bytes_max=LIMIT)
        assert isinstance(result, Container), result
        assert (result.data_name, result.data) == ("docs/batch.xml", BATCH)


def test_a_signature_file_named_as_etsi_allows_is_read() -> None:
    """ETSI EN 319 162-1: XAdES signatures in `META-INF/*signatures*.xml`."""
    blob = build(MIMETYPE_ENTRY, Entry("batch.xml", BATCH),
                 Entry("META-INF/xadessignatures.xml", SIG), Entry("META-INF/other.xml", b"x"))
    result = asice.read_container(blob, unzipped_bytes_max=LIMIT)
    assert isinstance(result, Container)
    assert [s.name for s in result.signatures] == ["META-INF/xadessignatures.xml"]


def test_round_trip_of_the_writer() -> None:
    """What `sign` writes reads back: mimetype first and stored, the data at the root."""
    signatures = [SignatureFile("META-INF/signatures0.xml", SIG)]
    blob = asice_writer.write_container("batch.xml", BATCH, signatures, moment=NOW)
    assert blob[30:38] == b"mimetype" and blob[38:38 + len(asice.MIMETYPE)] == asice.MIMETYPE
    result = asice.read_container(blob, unzipped_bytes_max=LIMIT)
    assert isinstance(result, Container) and result.data == BATCH
    assert blob == asice_writer.write_container("batch.xml", BATCH, [SignatureFile(
        "META-INF/signatures0.xml", SIG)], moment=NOW), "same inputs, same bytes"


BAD = [
    ("garbage bytes", b"this is not a zip at all" * 10, Refusal.NOT_A_ZIP),
    ("empty", b"", Refusal.NOT_A_ZIP),
    ("plain zip without mimetype", build(Entry("batch.xml", BATCH)), Refusal.MIMETYPE),
    ("mimetype not first", build(Entry("batch.xml", BATCH), MIMETYPE_ENTRY), Refusal.MIMETYPE),
    ("mimetype compressed",
     build(Entry("mimetype", asice.MIMETYPE, zipfile.ZIP_DEFLATED), Entry("b.xml", BATCH)),
     Refusal.MIMETYPE),
    ("mimetype of another kind",
     build(Entry("mimetype", b"application/vnd.etsi.asic-s+zip", zipfile.ZIP_STORED),
           Entry("b.xml", BATCH)), Refusal.MIMETYPE),
    ("mimetype with a newline",
     build(Entry("mimetype", asice.MIMETYPE + b"\n", zipfile.ZIP_STORED), Entry("b.xml", BATCH)),
     Refusal.MIMETYPE),
    ("two data files", good(Entry("second.xml", BATCH)), Refusal.DATA_FILES),
    ("no data file", build(MIMETYPE_ENTRY, Entry("META-INF/signatures0.xml", SIG)),
     Refusal.DATA_FILES),
    ("data file in META-INF", build(MIMETYPE_ENTRY, Entry("META-INF/batch.xml", BATCH)),
     Refusal.DATA_FILES),
    ("data file nested too deep", build(MIMETYPE_ENTRY, Entry("a/b/batch.xml", BATCH)),
     Refusal.UNSAFE_NAME),
    ("path traversal", good(Entry("../../x", b"evil")), Refusal.UNSAFE_NAME),
    ("traversal inside META-INF", good(Entry("META-INF/../../x", b"evil")), Refusal.UNSAFE_NAME),
    ("absolute name", good(Entry("/etc/cron.d/x", b"evil")), Refusal.UNSAFE_NAME),
    ("drive letter", good(Entry("C:/x", b"evil")), Refusal.UNSAFE_NAME),
    ("backslash", good(Entry("..\\..\\x", b"evil")), Refusal.UNSAFE_NAME),
    ("symbolic link as the data file",
     build(MIMETYPE_ENTRY, Entry("batch.xml", b"/etc/passwd", mode=stat.S_IFLNK | 0o777)),
     Refusal.NOT_A_FILE),
    ("symbolic link in META-INF",
     good(Entry("META-INF/link", b"../..", mode=stat.S_IFLNK | 0o777)), Refusal.NOT_A_FILE),
    ("device", good(Entry("META-INF/dev", b"", mode=stat.S_IFCHR | 0o644)), Refusal.NOT_A_FILE),
    ("directory with data", good(Entry("META-INF/", b"hidden", mode=stat.S_IFDIR | 0o755)),
     Refusal.NOT_A_FILE),
    ("a folder beside the data file, with data",
     good(Entry("folder/", b"x", mode=stat.S_IFDIR | 0o755)), Refusal.NOT_A_FILE),
    ("duplicate data name", good(Entry("batch.xml", b"other bytes")), Refusal.DUPLICATE_NAME),
    ("duplicate signature name", good(Entry("META-INF/signatures0.xml", SIG)),
     Refusal.DUPLICATE_NAME),
    ("mimetype again, as the only data file",
     build(MIMETYPE_ENTRY, Entry("mimetype", BATCH), Entry("META-INF/signatures0.xml", SIG)),
     Refusal.DUPLICATE_NAME),
    ("bzip2", build(MIMETYPE_ENTRY, Entry("b.xml", BATCH, zipfile.ZIP_BZIP2)), Refusal.COMPRESSION),
    ("too many entries",
     good(*[Entry(f"META-INF/x{n}.txt", b"x") for n in range(asice.entries_max)]),
     Refusal.TOO_MANY_ENTRIES),
]


@pytest.mark.parametrize(("blob", "refusal"), [(b, r) for _, b, r in BAD],
                         ids=[name for name, _, _ in BAD])
def test_bad_container_is_refused_as_a_value(blob: bytes, refusal: Refusal) -> None:
    """Each hostile or broken container gets its own refusal (all of them DS0B)."""
    problem = refused(blob)
    assert problem.refusal is refusal, problem
    assert problem.describe().startswith("container refused: ")


def test_symbolic_link_is_named_as_such() -> None:
    """The client is told it was a symlink, not just "not a regular file"."""
    blob = build(MIMETYPE_ENTRY, Entry("batch.xml", b"/etc/passwd", mode=stat.S_IFLNK | 0o777))
    assert "symbolic link" in refused(blob).detail


def test_the_empty_META_INF_folder_entry_is_allowed() -> None:
    blob = good(Entry("META-INF/", b"", zipfile.ZIP_STORED, stat.S_IFDIR | 0o755))
    assert isinstance(asice.read_container(blob, unzipped_bytes_max=LIMIT), Container)


def _patch_flags(blob: bytes, name: bytes, flag: int) -> bytes:
    """Set general-purpose flag bits of `name` in its local and central headers (zipfile
    will not write an encrypted entry itself)."""
    data = bytearray(blob)
    for signature, flags_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        at = data.find(signature)
        while at >= 0:
            if data[at + name_at: at + name_at + len(name)] == name:
                old = struct.unpack_from("<H", data, at + flags_at)[0]
                struct.pack_into("<H", data, at + flags_at, old | flag)
            at = data.find(signature, at + 4)
    return bytes(data)


def test_encrypted_entry_is_refused() -> None:
    blob = _patch_flags(good(), b"batch.xml", 0x1)
    assert refused(blob).refusal is Refusal.ENCRYPTED


def test_zip_bomb_is_refused_by_its_declared_size() -> None:
    """50 MB of zeros deflate to ~50 KB: the size the header declares is over the limit."""
    bomb = good(data=bytes(50 * 1024 * 1024))
    assert len(bomb) < 200 * 1024
    problem = refused(bomb)
    assert problem.refusal is Refusal.BOMB and "unzips to" in problem.detail


def test_zip_bomb_with_a_lying_header_is_refused_while_reading() -> None:
    """The header claims 1,000 bytes; reading stops there and the damage shows (CRC), so
    the lie buys nothing: the container is refused, never read further."""
    blob = bytearray(good(data=bytes(2 * 1024 * 1024)))
    real = struct.pack("<L", 2 * 1024 * 1024)
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = blob.find(signature)
        while at >= 0:
            if blob[at + size_at: at + size_at + 4] == real:
                struct.pack_into("<L", blob, at + size_at, 1000)
            at = blob.find(signature, at + 4)
    problem = refused(bytes(blob), limit=64 * 1024 * 1024)
    assert problem.refusal is Refusal.CORRUPT


def test_compression_ratio_far_beyond_xml_is_refused_while_reading() -> None:
    """Under the size limit but deflating ~1000 to 1: refused once the ratio is passed."""
    problem = refused(good(data=bytes(20 * 1024 * 1024)), limit=64 * 1024 * 1024)
    assert problem.refusal is Refusal.BOMB and "times its size" in problem.detail


def test_real_pain001_compression_ratio_is_accepted() -> None:
    """A payroll batch (repetitive XML) deflates far less than the ratio limit allows."""
    from gateway import samples

    data = samples.to_bytes(samples.payroll(samples.iban_lv("TREL", 1), 2000))
    result = asice.read_container(good(data=data), unzipped_bytes_max=len(data) + 1024)
    assert isinstance(result, Container) and result.data == data


def test_end_record_declaring_a_million_entries_is_refused_before_zipfile_reads_it() -> None:
    blob = bytearray(good())
    at = blob.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", blob, at + 8, 0xFFFF, 0xFFFF)
    assert refused(bytes(blob)).refusal is Refusal.TOO_MANY_ENTRIES


def test_container_bigger_than_the_limit_is_refused_by_its_size() -> None:
    blob = good(data=b"x" * 100)
    problem = refused(blob, limit=len(blob) - route.meta_bytes_max - 1)
    assert problem.refusal is Refusal.TOO_BIG


def test_truncated_container_is_refused() -> None:
    blob = good()
    assert refused(blob[: len(blob) // 2]).refusal is Refusal.NOT_A_ZIP


def test_damaged_data_is_refused() -> None:
    blob = bytearray(good(data=b"payment " * 500))
    at = blob.find(b"batch.xml") + len(b"batch.xml") + 10
    blob[at: at + 8] = b"\xff" * 8
    assert refused(bytes(blob)).refusal is Refusal.CORRUPT


def test_container_names() -> None:
    assert all(route.is_container_name(n) for n in ("a.asice", "B.SCE", "x.xml.edoc"))
    assert not route.is_container_name("batch.xml")
