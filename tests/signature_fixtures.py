"""Signatories for a test installation (SPEC §11): a test PKI on disk, an account made to
need signatures, and the client's signature sample card, written into its TOML the way an
operator would; and containers signed by the test signatories (`gateway sign`'s code)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from gateway import testpki
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
    level: int,
    signatories: Mapping[str, tuple[str, str]],
    extra: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Give account `iban` of `client_id` the `level`, the client the `signatories`
    (name -> (right, key stem in `files`)), with `extra` keys per signatory, and the
    installation the test CA."""
    lines = config.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == f'iban = "{iban}"')
    lines.insert(at + 1, f"  authorisation = {level}")
    starts = [i for i, line in enumerate(lines) if line.strip() == "[[client]]"]
    mine = next(i for i in starts if f'id = "{client_id}"' in lines[i + 1])
    end = next((i for i in starts if i > mine), len(lines))
    card = []
    for name, (right, stem) in signatories.items():
        card += [
            "  [[client.signatory]]",
            f'  name = "{name}"',
            f'  certificate = "{files.keys[stem][1]}"',
            f'  right = "{right}"',
        ]
        card += [f'  {k} = "{v}"' for k, v in (extra or {}).get(name, {}).items()]
    lines[end:end] = card
    ca = f'signatory_ca = ["{files.ca}"]'
    if "[signing]" in lines:
        lines.insert(lines.index("[signing]") + 1, ca)
    else:
        lines += ["", "[signing]", ca]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def signed(
    name: str, data: bytes, issued: testpki.Issued, when: dt.datetime
) -> bytes:
    """`data` (or a container holding it) signed once more by `issued`."""
    return sign_container(name, data, issued.key, issued.cert, when)
