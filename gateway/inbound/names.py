"""A certificate's subject as people read it (answers, findings, the log)."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

# RFC 4514 has no short names for these, which qualified signature certificates carry:
# it would write their OIDs (`2.5.4.5=PNOLV-…`). RFC 4519's names instead.
_NAMES = {NameOID.SERIAL_NUMBER: "serialNumber", NameOID.SURNAME: "sn",
          NameOID.GIVEN_NAME: "givenName"}  # fmt: skip


def subject_text(name: x509.Name) -> str:
    """`serialNumber=PNOLV-32010112345,sn=Bērziņš,givenName=Jānis,CN=Jānis Bērziņš,C=LV`"""
    return name.rfc4514_string(_NAMES)
