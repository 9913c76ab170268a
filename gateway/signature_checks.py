"""What a signature container's signatures are and do (SPEC §11): each XAdES signature
verified as of the container's receipt (`inbound/xades.py`), those that verified as
signers for the level rule (`signatories.authorise`), and each one's effect — counted,
or why not, with its DS reason code. Used by the container's run in `/in`
(`signature_run`) and by its trial in `/test` (`trialrun`); and, at the daemon's start,
the configured signatories whose signatures could not count (`unusable_signatories`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from gateway import authorisation
from gateway.environment import Environment
from gateway.inbound import asice, xades
from gateway.inbound.intake import Intake
from gateway.reasons import PRECEDENCE, Reason
from gateway.settings import Settings
from gateway.signatories import Classified, Signer, Verdict

NO_SIGNATURE = "the container holds no signature"  # answered DS0B

PROBLEM_REASON = {
    xades.Problem.UNREADABLE: Reason.DS0B,
    xades.Problem.OTHER_BYTES: Reason.DS17,
    xades.Problem.UNTRUSTED_CA: Reason.DS0F,
    xades.Problem.REVOKED: Reason.DS0C,
    xades.Problem.CERTIFICATE_NOT_VALID: Reason.DS0D,
}
VERDICT_REASON: dict[Verdict, Reason | None] = {
    Verdict.COUNTS: None,
    Verdict.NOT_NEEDED: None,
    Verdict.NOT_A_SIGNATORY: Reason.DS0H,
    Verdict.NOT_ALLOWED_ON_ACCOUNT: Reason.DS0H,
    Verdict.OUTSIDE_CARD_VALIDITY: Reason.DS0D,
    Verdict.SAME_SIGNATORY_AGAIN: Reason.DS26,
    Verdict.RIGHTS_INSUFFICIENT: Reason.DS19,
}


def verify(
    env: Environment, container: asice.Container, intake: Intake
) -> tuple[xades.SignatureCheck, ...]:
    """Each XAdES signature of the container, checked as of its receipt."""
    signing = env.settings.signing
    trust = xades.load_trust(signing.signatory_ca, signing.signatory_crl)
    return xades.verify_container(container, trust, intake.received)


def unusable_signatories(settings: Settings, now: dt.datetime) -> Iterator[tuple[str, str, str]]:
    """The configured signatories whose signatures could not count now (SPEC §11): a
    certificate not from `signatory_ca`, outside its validity, or a signature card that
    has ended — (client, signatory, why), for the operator to hear of at start rather than
    from a client's DS0F or DS0D."""
    signing = settings.signing
    trust = xades.load_trust(signing.signatory_ca, signing.signatory_crl)
    day = now.astimezone(settings.timezone).date()
    for client in settings.clients:
        for signatory in authorisation.signatories_of(client):
            found = xades.certificate_problem(signatory.certificate, trust, now, when="now")
            if found is not None:
                yield client.id, signatory.name, found[1]
            elif not signatory.card_valid_on(day):
                yield client.id, signatory.name, f"its signature card is not valid on {day}"


def signers_of(checks: tuple[xades.SignatureCheck, ...], intake: Intake) -> list[Signer]:
    """The signatures that verified, for the level rule (`signatories.authorise`)."""
    day = intake.received_local.date()
    return [Signer(c.certificate, day) for c in checks if c.ok and c.certificate is not None]


def judge(
    checks: tuple[xades.SignatureCheck, ...], classified: Sequence[Classified]
) -> Iterator[tuple[xades.SignatureCheck, Classified | None, Reason | None, str]]:
    """Each signature of a container with its verdict (`classified`: those that verified,
    in order) and what it does: its reason code (None: it counts, or is not needed) and
    the text that says so."""
    verdicts = iter(classified)
    for check in checks:
        verdict = next(verdicts) if check.ok and check.certificate is not None else None
        if check.problem is not None:
            yield check, verdict, PROBLEM_REASON[check.problem], check.detail
        else:
            assert verdict is not None
            yield check, verdict, VERDICT_REASON[verdict.verdict], verdict.detail


Judged = tuple[xades.SignatureCheck, Classified | None, Reason | None, str]  # `judge`'s


def codes(judged: Sequence[Judged]) -> tuple[Reason, ...]:
    """The reason codes of a container's signatures that do not count (`judge`'s), each once
    in precedence order, the winning one first; DS0B for a container with no signature.
    What its answer says in `StsRsnInf`, in /in and in a trial alike (SPEC §11, §15)."""
    found = {reason for _, _, reason, _ in judged if reason is not None}
    return tuple(sorted(found, key=PRECEDENCE.__getitem__)) if judged else (Reason.DS0B,)
