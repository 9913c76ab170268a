"""The level rule of SPEC §11: which signatures count for a batch, and what is missing.

Pure: the signatories come from the configuration, the signers from verified signatures
(`inbound/xades.py`), the received dates from the shell. A file is the unit of
authorisation: it needs the highest level among the accounts it debits, and a signer
counts only if allowed on every one of those accounts that needs signatures at all.

Level N needs N distinct signatories whose card is valid on the day their container was
received (not the self-declared signing time); level 1 accepts either right; from level 2
on, at least one signatory with the first right and one with the second. Signers are taken
in arrival order and a signer counts when the batch can still be completed with it, so a
second "first" for level 2 does not count (DS19) while one for level 3 does. A signature
counts or not as judged when its container was received: the signatories counted before
are given as they were then (`before`), and a later change of the configuration neither
takes one of them back nor makes a refused signature count.

The `Verdict` members map to SPEC §11 codes: NOT_A_SIGNATORY and NOT_ALLOWED_ON_ACCOUNT →
DS0H, OUTSIDE_CARD_VALIDITY → DS0D, SAME_SIGNATORY_AGAIN → DS26, RIGHTS_INSUFFICIENT →
DS19; COUNTS and NOT_NEEDED carry no code.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.inbound.names import subject_text
from gateway.signing_rights import LEVEL_MAX, Right
from gateway.text import person_key


@dataclass(frozen=True, slots=True)
class Signatory:
    """One `[[client.signatory]]` of the client whose batch it is."""

    name: str
    certificate: x509.Certificate
    right: Right
    valid_from: date | None = None
    valid_until: date | None = None
    accounts: frozenset[str] | None = None  # IBANs; None: all of the client's accounts

    def card_valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )

    def allowed_on(self, iban: str) -> bool:
        return self.accounts is None or iban in self.accounts


@dataclass(frozen=True, slots=True)
class Signer:
    """A verified signature as the rule sees it: whose certificate, and the treasury-local
    day its container was received."""

    certificate: x509.Certificate
    received_on: date


class Verdict(enum.Enum):
    COUNTS = "counts"
    NOT_A_SIGNATORY = "not-a-signatory"  # DS0H
    NOT_ALLOWED_ON_ACCOUNT = "not-allowed-on-account"  # DS0H
    OUTSIDE_CARD_VALIDITY = "outside-card-validity"  # DS0D
    SAME_SIGNATORY_AGAIN = "same-signatory-again"  # DS26
    RIGHTS_INSUFFICIENT = "rights-insufficient"  # DS19
    NOT_NEEDED = "not-needed"  # the batch was complete without it


@dataclass(frozen=True, slots=True)
class Classified:
    signer: Signer
    signatory: Signatory | None
    verdict: Verdict
    detail: str  # English, for the findings file and AddtlInf

    @property
    def counts(self) -> bool:
        return self.verdict is Verdict.COUNTS


@dataclass(frozen=True, slots=True)
class Missing:
    """What a batch still needs: `count` more signatories, among them at least one with
    each right in `rights`."""

    level: int
    have: int
    rights: frozenset[Right]

    @property
    def count(self) -> int:
        return self.level - self.have

    def describe(self) -> str:
        """E.g. "1 of 2 signatures; a signatory with the second right must sign"."""
        head = f"{self.have} of {self.level} signature{'s' if self.level > 1 else ''}"
        rights = sorted(self.rights, key=lambda r: r.value)
        named = " and one with the ".join(r.value for r in rights)
        if self.count == 1:
            if rights:
                return f"{head}; a signatory with the {named} right must sign"
            return f"{head}; a signatory with either right must sign"
        if len(rights) == 2 and self.count == 2:
            return f"{head}; a signatory with the first right and one with the second must sign"
        tail = f", at least one with the {named} right" if rights else ""
        more = " more" if self.have else ""
        return f"{head}; {self.count}{more} signatories must sign{tail}"


@dataclass(frozen=True, slots=True)
class Authorisation:
    level: int
    signers: tuple[Classified, ...]  # in the order given
    missing: Missing | None  # None: complete
    before: tuple[Signatory, ...] = ()  # counted when their containers were received

    @property
    def complete(self) -> bool:
        return self.missing is None

    @property
    def counted(self) -> tuple[Signatory, ...]:
        new = (c.signatory for c in self.signers if c.counts and c.signatory)
        return (*self.before, *new)

    def describe(self) -> str:
        if self.missing is None:
            return f"authorised: {len(self.counted)} of {self.level} signatures"
        return self.missing.describe()


def required_level(debited: Mapping[str, int]) -> int:
    """The level a file waits for: the highest among the accounts it debits."""
    return max(debited.values(), default=0)


def authorise(
    debited: Mapping[str, int],
    signatories: Sequence[Signatory],
    signers: Sequence[Signer],
    before: Sequence[Signatory] = (),
) -> Authorisation:
    """Classify every signer and say whether the batch is complete. `debited` maps each
    account the file debits to its `authorisation` level; `before`: the signatories that
    counted for it when their containers were received (as they were then: a later
    change of the configuration neither takes a counted signature back nor makes a
    refused one count)."""
    level = required_level(debited)
    if not 0 <= level <= LEVEL_MAX:
        raise ValueError(f"authorisation level {level} outside 0–{LEVEL_MAX}")
    guarded = sorted(iban for iban, n in debited.items() if n > 0)
    kept = tuple(carried(level, before))
    counted = list(kept)
    classified = []
    for signer in signers:
        signatory = match(signatories, signer.certificate)
        verdict, detail = _verdict(signatory, signer, guarded, counted, level)
        if verdict is Verdict.COUNTS and signatory is not None:
            counted.append(signatory)
        classified.append(Classified(signer, signatory, verdict, detail))
    return Authorisation(level, tuple(classified), _missing(level, counted), kept)


def match(
    signatories: Iterable[Signatory], certificate: x509.Certificate, *, trusted: bool = True
) -> Signatory | None:
    """The signatory whose configured certificate this is: the same DER, or — for one a
    trusted CA issued (`trusted`) — the same issuer and serial number, which a CA never
    gives two certificates (anyone can copy them into a certificate of their own)."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    candidates = list(signatories)
    for signatory in candidates:
        if signatory.certificate.public_bytes(serialization.Encoding.DER) == der:
            return signatory
    if not trusted:
        return None
    for signatory in candidates:
        theirs = signatory.certificate
        if (theirs.issuer, theirs.serial_number) == (certificate.issuer,
                                                      certificate.serial_number):
            return signatory
    return None


def _verdict(
    signatory: Signatory | None,
    signer: Signer,
    guarded: Sequence[str],
    counted: Sequence[Signatory],
    level: int,
) -> tuple[Verdict, str]:
    if signatory is None:
        subject = subject_text(signer.certificate.subject)
        return Verdict.NOT_A_SIGNATORY, f"{subject} is not a signatory of this client"
    who = signatory.name
    refused = [iban for iban in guarded if not signatory.allowed_on(iban)]
    if refused:
        return Verdict.NOT_ALLOWED_ON_ACCOUNT, f"{who} may not sign for account {refused[0]}"
    if not signatory.card_valid_on(signer.received_on):
        return Verdict.OUTSIDE_CARD_VALIDITY, (
            f"{who}'s signature right is not valid on {signer.received_on} "
            f"({_validity(signatory)})"
        )
    if any(_same_person(signatory, other) for other in counted):
        return Verdict.SAME_SIGNATORY_AGAIN, f"{who} has signed already (counts once)"
    missing = _missing(level, counted)
    if missing is None:
        return Verdict.NOT_NEEDED, f"{who}'s signature was not needed: already authorised"
    if not _completable(level, [*counted, signatory]):
        # What is still missing follows in every answer (`Authorisation.describe`).
        return Verdict.RIGHTS_INSUFFICIENT, (
            f"{who} has the {signatory.right.value} right, which cannot complete it"
        )
    return Verdict.COUNTS, f"{who} signed with the {signatory.right.value} right"


def carried(level: int, before: Sequence[Signatory]) -> list[Signatory]:
    """Of the signatories counted before, in order, those the rule lets count together: a
    person once, and only while the level can still be completed (rows recorded by an
    older rule, which judged earlier signatures again each time, may hold more)."""
    counted: list[Signatory] = []
    for signatory in before:
        if not any(_same_person(signatory, other) for other in counted) and _completable(
            level, [*counted, signatory]
        ):
            counted.append(signatory)
    return counted


def _validity(signatory: Signatory) -> str:
    """A card's validity in words: "from 2027-01-01", "until 2026-12-06", or both."""
    parts = [f"from {signatory.valid_from}" if signatory.valid_from else "",
             f"until {signatory.valid_until}" if signatory.valid_until else ""]  # fmt: skip
    return " ".join(p for p in parts if p)


def _same_person(a: Signatory, b: Signatory) -> bool:
    """The same signatory: one of `identities` in common (one counted before may have
    been recorded under another card, or configured otherwise since)."""
    mine, theirs = identities(a.name, a.certificate), identities(b.name, b.certificate)
    return any(theirs.get(kind) == value for kind, value in mine.items())


class Identity(enum.Enum):
    """What tells a signatory apart (`identities`)."""

    NAME = "name"
    CARD = "card"
    PERSON_CODE = "person code"


def identities(name: str, certificate: x509.Certificate) -> dict[Identity, str | bytes]:
    """What tells a signatory apart: the name (spaces and case aside), the card, and the
    personal code the card carries (`person_code`), when it does. Two signatories with one
    of them in common are one person, whose signatures count once (SPEC §11): the level
    rule (DS26) and the configuration check (`settings`) both ask this."""
    found: dict[Identity, str | bytes] = {
        Identity.NAME: person_key(name),
        Identity.CARD: certificate.public_bytes(serialization.Encoding.DER),
    }
    code = person_code(certificate)
    if code is not None:
        found[Identity.PERSON_CODE] = code
    return found


# ETSI EN 319 412-1 §5.1.3: a natural person's identifier in the subject's serialNumber,
# its type (national identity number, identity card, passport, tax number), the country,
# then the number: `PNOLV-32010112345`.
_PERSON_CODE = re.compile(r"(PNO|IDC|PAS|TIN)([A-Z]{2})[-:](.+)")
_SEPARATORS = re.compile(r"[-\s]")


def person_code(certificate: x509.Certificate) -> str | None:
    """The natural person a certificate names, by the ETSI identifier in its subject's
    `serialNumber`: every card of one person carries it, whatever name it is configured
    under. Separators inside the number aside (`PNOLV-320101-12345` is `PNOLV-
    32010112345`). None when the subject has none — a serialNumber of another form
    (some CAs number their certificates there) says nothing about the person."""
    for attribute in certificate.subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER):
        found = _PERSON_CODE.fullmatch(str(attribute.value).strip().upper())
        if found is not None:
            kind, country, number = found.groups()
            return f"{kind}{country}-{_SEPARATORS.sub('', number)}"
    return None


def _completable(level: int, counted: Sequence[Signatory]) -> bool:
    """Whether further distinct signatories can still make `counted` complete: from level
    2 on, one right may fill at most level - 1 places."""
    if len(counted) > level:
        return False
    if level < 2:
        return True
    return all(sum(1 for s in counted if s.right is r) <= level - 1 for r in Right)


def _missing(level: int, counted: Sequence[Signatory]) -> Missing | None:
    have = len(counted)
    rights = set() if level < 2 else {r for r in Right if all(s.right is not r for s in counted)}
    if have >= level and not rights:
        return None
    # Only completable signers are counted, so a full set always holds both rights.
    assert have < level, f"{have} signatures counted for level {level} without both rights"
    return Missing(level, have, frozenset(rights))
