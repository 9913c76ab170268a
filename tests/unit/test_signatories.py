"""The level rule of SPEC §11: which signatures count, and exactly what is still missing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import authorisation, testpki
from gateway.signatories import (
    Authorisation,
    Right,
    Signatory,
    Signer,
    Verdict,
    authorise,
    carried,
    match,
    person_code,
    required_level,
)
from gateway.signing_rights import attainable

NOW = datetime(2026, 11, 25, 10, 15, 1, tzinfo=UTC)
TODAY = date(2026, 11, 25)
A, B = "LV11TREL0000000000001", "LV22TREL0000000000002"
CA = testpki.new_ca("Test Signatory CA", now=NOW)
# Certificates are slow-ish to make: a pool of people, shared by every test.
PEOPLE = [testpki.new_signatory(CA, f"Person {n}", now=NOW) for n in range(10)]
STRANGER = testpki.new_signatory(CA, "Not On The Card", now=NOW)
FRESH = [testpki.new_signatory(CA, f"Newcomer {n}", now=NOW) for n in range(3)]  # never signed


def person(n: int, right: Right, **card: object) -> Signatory:
    return Signatory(name=f"Person {n}", certificate=PEOPLE[n].cert, right=right,
                     **card)  # type: ignore[arg-type]


HEAD = person(0, Right.FIRST)
DEPUTY = person(1, Right.FIRST)
ACCOUNTANT = person(2, Right.SECOND)
CLERK = person(3, Right.SECOND)
CARD = [HEAD, DEPUTY, ACCOUNTANT, CLERK]


def signed(*who: Signatory | testpki.Issued, on: date = TODAY) -> list[Signer]:
    return [Signer(w.certificate if isinstance(w, Signatory) else w.cert, on) for w in who]


def verdicts(result: Authorisation) -> list[Verdict]:
    return [c.verdict for c in result.signers]


def test_level_0_is_complete_without_signatures() -> None:
    """An account without authorisation behaves as before: the upload is enough."""
    assert authorise({A: 0}, CARD, []).complete


def test_level_1_accepts_either_right() -> None:
    for who in (HEAD, ACCOUNTANT):
        result = authorise({A: 1}, CARD, signed(who))
        assert result.complete and verdicts(result) == [Verdict.COUNTS]


def test_level_2_waits_with_the_message_the_client_reads() -> None:
    """One signature of two: the pain.002 says which right must still sign."""
    result = authorise({A: 2}, CARD, signed(HEAD))
    assert not result.complete
    assert result.describe() == "1 of 2 signatures; a signatory with the second right must sign"
    result = authorise({A: 2}, CARD, signed(ACCOUNTANT, HEAD))
    assert result.complete and result.counted == (ACCOUNTANT, HEAD)


def test_level_2_two_first_rights_do_not_complete_it_DS19() -> None:
    result = authorise({A: 2}, CARD, signed(HEAD, DEPUTY))
    assert verdicts(result) == [Verdict.COUNTS, Verdict.RIGHTS_INSUFFICIENT]
    assert not result.complete
    assert result.signers[1].detail.endswith("has the first right, which cannot complete it")
    # the answer says once what is missing: the detail, then `describe`
    assert result.describe() == "1 of 2 signatures; a signatory with the second right must sign"


def test_level_3_counts_a_second_first_right_but_not_a_third() -> None:
    third_first = person(4, Right.FIRST)
    result = authorise({A: 3}, [*CARD, third_first], signed(HEAD, DEPUTY, third_first))
    assert verdicts(result) == [Verdict.COUNTS, Verdict.COUNTS, Verdict.RIGHTS_INSUFFICIENT]
    assert result.describe() == "2 of 3 signatures; a signatory with the second right must sign"
    assert authorise({A: 3}, CARD, signed(HEAD, DEPUTY, CLERK)).complete


def test_same_signatory_twice_counts_once_DS26() -> None:
    result = authorise({A: 2}, CARD, signed(HEAD, HEAD))
    assert verdicts(result) == [Verdict.COUNTS, Verdict.SAME_SIGNATORY_AGAIN]
    assert result.describe() == "1 of 2 signatures; a signatory with the second right must sign"


def test_one_person_on_two_cards_under_two_names_counts_once_DS26() -> None:
    """A second card of the head's (the same personal code in its subject) configured
    under another name, with the second right: it completed a level-2 batch with the
    head alone (an outside tester). It is the same person again, counted before or not."""
    code = person_code(HEAD.certificate)
    assert code is not None and code.startswith("PNOLV-")
    card = testpki.new_signatory(CA, "Anna New Card", now=NOW, person_code=code.lower())
    alias = Signatory(name="Anna New Card", certificate=card.cert, right=Right.SECOND)
    result = authorise({A: 2}, [HEAD, alias, ACCOUNTANT], signed(HEAD, alias))
    assert verdicts(result) == [Verdict.COUNTS, Verdict.SAME_SIGNATORY_AGAIN]
    assert not result.complete
    later = authorise({A: 2}, [HEAD, alias, ACCOUNTANT], signed(alias), before=[HEAD])
    assert verdicts(later) == [Verdict.SAME_SIGNATORY_AGAIN] and not later.complete
    assert person_code(ACCOUNTANT.certificate) != code


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("PNOLV-32010112345", "PNOLV-32010112345"),
        (" pnolv-320101-12345 ", "PNOLV-32010112345"),  # one person, however it is written
        ("IDCEE:AB 123456", "IDCEE-AB123456"),
        ("12345", None),  # a CA's own numbering says nothing about the person
        ("LV-32010112345", None),
    ],
)
def test_a_person_code_is_the_etsi_identifier_of_a_natural_person(
    written: str, code: str | None
) -> None:
    card = testpki.new_signatory(CA, "Some One", now=NOW, person_code=written)
    assert person_code(card.cert) == code


def test_those_counted_before_count_as_they_were_and_sign_only_once() -> None:
    """The signatories counted when their containers were received come as `before`:
    they count whatever the card says now (HEAD is no longer on it), and the same person
    again — by name, on a new card — is DS26, not a second signature."""
    result = authorise({A: 2}, [DEPUTY, ACCOUNTANT], signed(ACCOUNTANT), before=[HEAD])
    assert verdicts(result) == [Verdict.COUNTS] and result.complete
    assert result.counted == (HEAD, ACCOUNTANT)
    assert result.describe() == "authorised: 2 of 2 signatures"
    new_card = Signatory(name=HEAD.name, certificate=FRESH[0].cert, right=Right.SECOND)
    again = authorise({A: 2}, [new_card, ACCOUNTANT], signed(new_card), before=[HEAD])
    assert verdicts(again) == [Verdict.SAME_SIGNATORY_AGAIN] and not again.complete
    assert again.describe() == "1 of 2 signatures; a signatory with the second right must sign"


def test_those_counted_before_count_only_as_the_rule_lets_them_together() -> None:
    """Rows recorded by an older rule (which judged earlier signatures again each time)
    may hold two first rights for level 2, or one person twice: carried over, the same
    person counts once and a right no more than the level can take, so neither a
    batch's completion with too few people nor a crash follows."""
    assert carried(2, [HEAD, DEPUTY]) == [HEAD]
    new_card = Signatory(name=HEAD.name, certificate=FRESH[1].cert, right=Right.FIRST)
    assert carried(3, [HEAD, new_card, ACCOUNTANT]) == [HEAD, ACCOUNTANT]
    result = authorise({A: 2}, CARD, signed(ACCOUNTANT), before=[HEAD, DEPUTY])
    assert result.complete and result.counted == (HEAD, ACCOUNTANT)
    three = authorise({A: 3}, CARD, signed(ACCOUNTANT), before=[HEAD, new_card])
    assert not three.complete and three.describe().startswith("2 of 3 signatures")


def test_not_a_signatory_of_this_client_DS0H() -> None:
    """A valid certificate of the right CA, but not on this client's card."""
    result = authorise({A: 1}, CARD, signed(STRANGER))
    assert verdicts(result) == [Verdict.NOT_A_SIGNATORY]
    assert not result.complete


def test_signatory_not_allowed_on_the_account_DS0H() -> None:
    only_b = person(5, Right.FIRST, accounts=frozenset({B}))
    result = authorise({A: 1}, [only_b], signed(only_b))
    assert verdicts(result) == [Verdict.NOT_ALLOWED_ON_ACCOUNT]
    assert A in result.signers[0].detail
    assert authorise({B: 1}, [only_b], signed(only_b)).complete


def test_a_file_debiting_two_accounts_waits_for_the_higher_level() -> None:
    """A file is the unit: level 2 on B makes the whole file need two signatures."""
    assert required_level({A: 1, B: 2}) == 2
    result = authorise({A: 1, B: 2}, CARD, signed(HEAD))
    assert not result.complete and result.missing is not None and result.missing.level == 2


def test_signer_must_be_allowed_on_every_account_that_needs_signatures() -> None:
    """Allowed on A only, signing a file that also debits B (level 1): does not count.
    An account at level 0 needs no signatory, so a restriction there does not matter."""
    only_a = person(5, Right.FIRST, accounts=frozenset({A}))
    assert verdicts(authorise({A: 1, B: 1}, [only_a], signed(only_a))) == [
        Verdict.NOT_ALLOWED_ON_ACCOUNT]
    assert authorise({A: 1, B: 0}, [only_a], signed(only_a)).complete


def test_card_validity_is_judged_on_the_received_day_DS0D() -> None:
    """A card that ended yesterday does not count today, whatever the signing time says."""
    ended = person(5, Right.FIRST, valid_until=TODAY - timedelta(days=1))
    starts = person(6, Right.FIRST, valid_from=TODAY + timedelta(days=1))
    result = authorise({A: 1}, [ended, starts], signed(ended, starts))
    assert verdicts(result) == [Verdict.OUTSIDE_CARD_VALIDITY] * 2
    # the card's validity in words: "(from - until …)" read badly (a tester)
    assert [c.detail.split(" (")[1] for c in result.signers] == [
        f"until {TODAY - timedelta(days=1)})", f"from {TODAY + timedelta(days=1)})"]
    assert authorise({A: 1}, [ended], signed(ended, on=TODAY - timedelta(days=1))).complete
    last_day = person(7, Right.SECOND, valid_from=TODAY, valid_until=TODAY)
    assert authorise({A: 1}, [last_day], signed(last_day)).complete


def test_signatures_after_completion_are_not_needed() -> None:
    result = authorise({A: 1}, CARD, signed(HEAD, ACCOUNTANT))
    assert verdicts(result) == [Verdict.COUNTS, Verdict.NOT_NEEDED]
    assert result.counted == (HEAD,)


def test_signer_matched_by_certificate_or_by_issuer_and_serial() -> None:
    """The same certificate matches; so does one with the same issuer and serial number
    (which a CA never gives two certificates); another certificate of the CA does not."""
    assert match(CARD, PEOPLE[2].cert) is ACCOUNTANT
    original = PEOPLE[2].cert
    same_serial = (
        x509.CertificateBuilder().subject_name(original.subject).issuer_name(original.issuer)
        .public_key(testpki.new_key().public_key()).serial_number(original.serial_number)
        .not_valid_before(original.not_valid_before_utc)
        .not_valid_after(original.not_valid_after_utc).sign(CA.key, hashes.SHA256())
    )
    assert same_serial != original and match(CARD, same_serial) is ACCOUNTANT
    assert match(CARD, testpki.new_signatory(CA, "Other Key", now=NOW).cert) is None


def test_descriptions_of_what_is_missing() -> None:
    def missing(level: int, *who: Signatory) -> str:
        return authorise({A: level}, CARD, signed(*who)).describe()

    assert missing(1) == "0 of 1 signature; a signatory with either right must sign"
    assert missing(2) == ("0 of 2 signatures; a signatory with the first right and one with "
                          "the second must sign")
    assert missing(3) == ("0 of 3 signatures; 3 signatories must sign, at least one "
                          "with the first and one with the second right")
    assert missing(3, ACCOUNTANT) == ("1 of 3 signatures; 2 more signatories must sign, at "
                                      "least one with the first right")
    assert missing(3, HEAD, ACCOUNTANT) == ("2 of 3 signatures; a signatory with either right "
                                            "must sign")
    assert missing(2, HEAD, ACCOUNTANT) == "authorised: 2 of 2 signatures"


def test_attainable_levels_for_the_configuration_check() -> None:
    assert attainable(0, [])
    assert attainable(1, [Right.SECOND])
    assert not attainable(1, [])
    assert not attainable(2, [Right.FIRST, Right.FIRST])
    assert attainable(2, [Right.FIRST, Right.SECOND])
    assert not attainable(3, [Right.FIRST, Right.SECOND])
    assert attainable(3, [Right.FIRST, Right.FIRST, Right.SECOND])


def test_level_above_three_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        authorise({A: 4}, CARD, [])


# --- the property: complete, or exactly what is missing ------------------------------------

# A card of up to 8 people: rights, and for some a card not valid today or not on account A.
card_entry = st.tuples(st.sampled_from(Right), st.sampled_from(["ok", "ok", "ended", "other"]))


def build_card(entries: list[tuple[Right, str]]) -> list[Signatory]:
    card = []
    for n, (right, kind) in enumerate(entries):
        extra: dict[str, object] = {}
        if kind == "ended":
            extra["valid_until"] = TODAY - timedelta(days=1)
        elif kind == "other":
            extra["accounts"] = frozenset({B})
        card.append(person(n, right, **extra))
    return card


@settings(max_examples=300, deadline=None)
@given(
    level=st.integers(min_value=0, max_value=3),
    entries=st.lists(card_entry, max_size=8),
    order=st.lists(st.integers(min_value=0, max_value=9), max_size=10),
    fill=st.lists(st.sampled_from(Right), min_size=3, max_size=3),
)
def test_any_signatures_complete_the_batch_or_say_exactly_what_is_missing(
    level: int, entries: list[tuple[Right, str]], order: list[int], fill: list[Right]
) -> None:
    """Whatever arrives (strangers, repeats, ended cards, wrong accounts, any rights):
    either the batch is complete, or `missing` says how many more and which rights, and
    then exactly that many fresh signatories with those rights complete it, while one
    fewer, or as many without a required right, do not."""
    card = build_card(entries)
    everyone = card + [person(n, Right.FIRST) for n in range(len(card), 10)]  # not on card
    signers = signed(*[everyone[i] for i in order])
    result = authorise({A: level}, card, signers)

    valid = list(result.counted)
    assert len(set(map(id, valid))) == len(valid), "a signatory counts once"
    for c in result.signers:
        if c.counts:
            assert c.signatory in card and c.signatory.card_valid_on(TODAY)
            assert c.signatory.allowed_on(A)
    rights = {s.right for s in valid}
    rule = len(valid) >= level and (level < 2 or rights == set(Right))
    assert result.complete == rule
    if result.complete:
        return

    missing = result.missing
    assert missing is not None and missing.count >= 1 and missing.have == len(valid)
    assert len(missing.rights) <= missing.count
    assert missing.describe().startswith(f"{len(valid)} of {level} signature")
    # Newcomers to the card with the required rights first, any rights after.
    needed = sorted(missing.rights, key=lambda r: r.value)
    newcomers = [Signatory(f"Newcomer {k}", FRESH[k].cert, right)
                 for k, right in enumerate(needed + fill[: missing.count - len(needed)])]
    assert authorise({A: level}, card + newcomers, signers + signed(*newcomers)).complete
    fewer = newcomers[:-1]
    assert not authorise({A: level}, card + fewer, signers + signed(*fewer)).complete
    if missing.rights:
        wrong = {Right.FIRST: Right.SECOND, Right.SECOND: Right.FIRST}
        lacking = [Signatory(s.name, s.certificate, wrong[next(iter(missing.rights))])
                   for s in newcomers]
        assert not authorise({A: level}, card + lacking, signers + signed(*lacking)).complete


RIGA_TZ = ZoneInfo("Europe/Riga")


@pytest.mark.parametrize(
    ("received", "expires"),
    [
        # Monday morning: Monday is the first of the five (23, 24, 25, 26, 27 November)
        (datetime(2026, 11, 23, 10, 0), date(2026, 11, 30)),
        # Monday after the end of day: the five begin on Tuesday
        (datetime(2026, 11, 23, 19, 0), date(2026, 12, 1)),
        # Saturday 19 December: 21, 22, 23, 28 and 29 (24–27 are holidays and a weekend)
        (datetime(2026, 12, 19, 10, 0), date(2026, 12, 30)),
        # Friday night: the five begin on Monday
        (datetime(2026, 11, 27, 23, 0), date(2026, 12, 7)),
    ],
)
def test_signatories_have_five_business_days_whatever_the_day_of_receipt(
    received: datetime, expires: date
) -> None:
    """SPEC §11: after `authorisation_days` business days without completion, DS24. A
    batch received when the business day is over, or on a weekend or holiday, does not
    lose a day to it."""
    moment = received.replace(tzinfo=RIGA_TZ)
    assert authorisation.expires_on(moment, 5, time(18, 30)) == expires
