"""A signatory whose signatures could never count — a certificate not from the signatory
CA, one expired, a signature card that has ended — is accepted in the configuration (a
card ends by design, on its day) but was heard of only from a client's DS0F or DS0D.
The daemon names each at start (`config.signatory_unusable`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gateway import testpki
from gateway.settings import load
from gateway.signature_checks import unusable_signatories
from tests.pipeline_fixtures import A_MAIN, DEFAULT_NOW, write_config
from tests.signature_fixtures import configure, make_pki_files

WHEN = DEFAULT_NOW.astimezone(dt.UTC)


def test_the_signatories_that_cannot_count_are_named(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gw")
    pki, files = make_pki_files(tmp_path / "pki", WHEN)
    issued = testpki.new_signatory(pki.ca, "Retired Person", now=WHEN)
    _, retired = testpki.write_issued(issued, tmp_path / "pki" / "signatories", "retired")
    yesterday = (DEFAULT_NOW.date() - dt.timedelta(days=1)).isoformat()
    configure(
        config, files, client_id="iestade-a", iban=A_MAIN, level=2,
        signatories={"First": ("first", "first"), "Second": ("second", "second"),
                     "Stranger": ("first", "foreign"), "Lapsed": ("second", "expired"),
                     "Revoked": ("first", "revoked"), "Retired": ("second", retired)},
        extra={"Retired": {"valid_until": yesterday}},
    )  # fmt: skip
    crl = f'signatory_crl = ["{files.crl}"]'
    config.write_text(config.read_text().replace("[signing]\n", f"[signing]\n{crl}\n"))
    found = {name: problem for _, name, problem in unusable_signatories(load(config), WHEN)}
    assert set(found) == {"Stranger", "Lapsed", "Revoked", "Retired"}, found
    assert found["Stranger"].startswith("certificate not from the signatory CA"), found
    assert "expired on" in found["Lapsed"] and found["Lapsed"].endswith("(now)"), found
    assert "revoked on" in found["Revoked"], found
    assert found["Retired"] == f"its signature card is not valid on {DEFAULT_NOW.date()}"
