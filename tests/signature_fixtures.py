"""Signatories for a test installation (SPEC §11): a test PKI on disk, an account made to
need signatures, and the client's signature sample card, written into its TOML the way an
operator would; and containers signed by the test signatories (`gateway sign`'s code)."""

from __future__ import annotations

import datetime as dt
import io
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path

from gateway import asice_writer, testpki
from gateway.inbound import asice
from gateway.sign_command import sign_container
from gateway.testpki import Pki, PkiFiles


def make_pki_files(folder: Path, now: dt.datetime) -> tuple[Pki, PkiFiles]:
    pki = testpki.make_pki(now)
    return pki, testpki.write_pki(pki, folder)


def configure(
    config: Path,
    files: PkiFiles,
    *,
    client_id: str,
    iban: str,
    level: int | None,
    signatories: Mapping[str, tuple[str, str | Path]],
    extra: Mapping[str, Mapping[str, str]] | None = None,
    ca: bool = True,
) -> None:
    """Give account `iban` of `client_id` the `level` (None: leave it), the client the
    `signatories` (name -> (right, key stem in `files` or a certificate's path)), with
    `extra` keys per signatory (TOML values as written), and the installation the test
    CA (`ca`)."""
    lines = config.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == f'iban = "{iban}"')
    if level is not None:
        lines.insert(at + 1, f"  authorisation = {level}")
    starts = [i for i, line in enumerate(lines) if line.strip() == "[[client]]"]
    mine = next(i for i in starts if f'id = "{client_id}"' in lines[i + 1])
    end = next((i for i in starts if i > mine), len(lines))
    card = []
    for name, (right, stem) in signatories.items():
        cert = stem if isinstance(stem, Path) else files.keys[stem][1]
        card += [
            "  [[client.signatory]]",
            f'  name = "{name}"',
            f'  certificate = "{cert}"',
            f'  right = "{right}"',
        ]
        card += [f"  {k} = {v}" for k, v in (extra or {}).get(name, {}).items()]
    lines[end:end] = card
    if ca and "[signing]" in lines:
        lines.insert(lines.index("[signing]") + 1, f'signatory_ca = ["{files.ca}"]')
    elif ca:
        lines += ["", "[signing]", f'signatory_ca = ["{files.ca}"]']
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def signed(
    name: str, data: bytes, issued: testpki.Issued, when: dt.datetime
) -> bytes:
    """`data` (or a container holding it) signed once more by `issued`."""
    return sign_container(name, data, issued.key, issued.cert, when)


def zipped(
    entries: list[tuple[str, bytes]], *, stored_first: bool = True, links: tuple[str, ...] = ()
) -> bytes:
    """A zip of `entries` in order, the first stored (a container's `mimetype`), the rest
    deflated, those named in `links` marked as symbolic links: for containers no signing
    tool would make."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n, (name, content) in enumerate(entries):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            if name in links:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            info.compress_type = (
                zipfile.ZIP_STORED if n == 0 and stored_first else zipfile.ZIP_DEFLATED
            )
            archive.writestr(info, content)
    return buffer.getvalue()


def bad_containers(
    name: str, data: bytes, pki: Pki, when: dt.datetime
) -> dict[str, tuple[bytes, str]]:
    """Containers for the batch `data` that must not count, each with its SPEC §11 code."""
    good = asice.read_container(signed(name, data, pki.first, when), unzipped_bytes_max=1 << 30)
    assert isinstance(good, asice.Container)
    other = asice.read_container(
        signed(name, data + b"\n", pki.first, when), unzipped_bytes_max=1 << 30
    )
    assert isinstance(other, asice.Container)
    sigs = [(f.name, f.xml) for f in good.signatures]
    mime = ("mimetype", asice.MIMETYPE)
    link = ("link.xml", b"/etc/passwd")
    symlink = zipped([mime, (name, data), link, *sigs], links=("link.xml",))
    return {
        "two-data.asice": (zipped([mime, (name, data), ("copy.xml", data), *sigs]), "DS0B"),
        "traversal.asice": (zipped([mime, ("../../x", data), *sigs]), "DS0B"),
        "absolute.asice": (zipped([mime, ("/etc/x", data), *sigs]), "DS0B"),
        "symlink.asice": (symlink, "DS0B"),
        "bomb.asice": (zipped([mime, (name, b"\0" * (16 << 20))]), "DS0B"),
        "other-bytes.asice": (
            asice_writer.write_container(name, data, other.signatures, moment=when), "DS17"
        ),
        "foreign-ca.asice": (signed(name, data, pki.foreign, when), "DS0F"),
        "expired.asice": (signed(name, data, pki.expired, when), "DS0D"),
    }
