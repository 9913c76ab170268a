"""camt.055.001.01 and .09: what a client's cancellation request is read as, or why not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.inbound import camt055_v01, camt055_v09, cancellation
from gateway.inbound.cancellation import (
    CancellationReasonInfo,
    CancellationRequest,
    GroupCancellation,
    OriginalGroup,
    PaymentInfoCancellation,
    TransactionCancellation,
    Underlying,
)
from gateway.pull_codes import RequestFinding, RequestReason
from tests.unit import pull_samples as s

READERS = {"01": camt055_v01.read, "09": camt055_v09.read}
RIGA = dt.timezone(dt.timedelta(hours=2))
Validate = Callable[[bytes | Path, str], None]
ORIGINAL = OriginalGroup(
    "ERP-20261125-7", "pain.001.001.03", dt.datetime(2026, 11, 25, 21, 4, 11, tzinfo=RIGA)
)


def read(version: str, data: bytes) -> CancellationRequest:
    result = READERS[version](data)
    assert isinstance(result, CancellationRequest), result
    return result


def refused(version: str, data: bytes) -> RequestFinding:
    result = READERS[version](data)
    assert isinstance(result, RequestFinding), result
    return result


@pytest.mark.parametrize("version", ["01", "09"])
def test_a_cancellation_of_one_payment_is_read(version: str) -> None:
    """The request's id is Assgnmt/Id (camt.055 has no GrpHdr); the payment is named by
    its original ids, with its amount and date as the client sent them."""
    request = read(version, s.to_bytes(s.camt055(version)))
    assert request == CancellationRequest(
        message=f"camt.055.001.{version}",
        msg_id="CXL-20261126-01",
        created_at=dt.datetime(2026, 11, 26, 9, 30, tzinfo=RIGA),
        underlyings=(
            Underlying(
                group=GroupCancellation(group=ORIGINAL, cancellation_id="CXL-GRP-1", whole=False),
                payment_infos=(
                    PaymentInfoCancellation(
                        pmt_inf_id="PMT-1",
                        cancellation_id="CXL-PMT-1",
                        group=ORIGINAL,
                        whole=False,
                        transactions=(
                            TransactionCancellation(
                                cancellation_id="CXL-TX-1",
                                end_to_end_id="E2E-0001",
                                instr_id="INSTR-0001",
                                amount=Decimal("120.50"),
                                currency="EUR",
                                requested_date=dt.date(2026, 12, 1),
                                reason=CancellationReasonInfo("DUPL", "entered twice"),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )


def test_the_09_samples_are_valid_against_the_official_schema(assert_valid: Validate) -> None:
    for root in (
        s.camt055("09"),
        s.camt055("09", whole_group=True, payment_infos=()),
        s.camt055("09", group_level=False, payment_infos=[s.CancelPmtInf(group_here=True)]),
    ):
        assert_valid(s.to_bytes(root), "camt.055.001.09")


@pytest.mark.parametrize("version", ["01", "09"])
def test_a_whole_batch(version: str) -> None:
    """GrpCxl true, or a group with no payment information named: all of it."""
    for whole_group in (True, None):
        request = read(
            version, s.to_bytes(s.camt055(version, whole_group=whole_group, payment_infos=()))
        )
        (underlying,) = request.underlyings
        assert underlying.group is not None and underlying.group.whole
        assert underlying.group.group.msg_id == "ERP-20261125-7"
        assert underlying.payment_infos == ()
    request = read(version, s.to_bytes(s.camt055(version, whole_group=True)))
    group = request.underlyings[0].group
    assert (
        group is not None
        and group.whole
        and group.reason == CancellationReasonInfo("CUST", "entered twice")
    )


@pytest.mark.parametrize("version", ["01", "09"])
def test_whole_payment_informations(version: str) -> None:
    """PmtInfCxl true, or no transaction named: the payment information as a whole; its
    own OrgnlGrpInf wins over the underlying's group."""
    request = read(
        version,
        s.to_bytes(
            s.camt055(
                version,
                group_level=False,
                payment_infos=[
                    s.CancelPmtInf(pmt_inf_id="PMT-1", whole=True, group_here=True),
                    s.CancelPmtInf(pmt_inf_id="PMT-2", transactions=()),
                ],
            )
        ),
    )
    first, second = request.underlyings[0].payment_infos
    assert request.underlyings[0].group is None
    assert (first.whole, first.group, len(first.transactions)) == (
        True,
        OriginalGroup("ERP-20261125-7", "pain.001.001.03"),
        1,
    )
    assert (second.whole, second.group, second.transactions) == (True, None, ())


@pytest.mark.parametrize("version", ["01", "09"])
def test_amounts_and_ids_are_read_as_sent(version: str) -> None:
    """A wrong original amount is the gateway's to judge against the booked payment: the
    reader keeps it exactly (Decimal, currency), and ids may be given alone."""
    txs = [
        s.CancelTx(
            amount="99999.99", currency="USD", instr_id=None, cancellation_id=None, reason=None
        ),
        s.CancelTx(end_to_end_id=None, instr_id="INSTR-7", amount=None, requested_date=None),
    ]
    request = read(
        version, s.to_bytes(s.camt055(version, payment_infos=[s.CancelPmtInf(transactions=txs)]))
    )
    first, second = request.underlyings[0].payment_infos[0].transactions
    assert (first.amount, first.currency, first.end_to_end_id, first.instr_id) == (
        Decimal("99999.99"),
        "USD",
        "E2E-0001",
        None,
    )
    assert first.cancellation_id is None and first.reason is None
    assert (second.amount, second.end_to_end_id, second.instr_id) == (None, None, "INSTR-7")


def test_in_09_the_requested_date_may_be_a_date_time() -> None:
    root = s.camt055("09")
    date = root.find(".//{*}OrgnlReqdExctnDt/{*}Dt")
    assert date is not None
    date.tag = date.tag.replace("}Dt", "}DtTm")
    date.text = "2026-12-01T09:00:00+02:00"
    tx = read("09", s.to_bytes(root)).underlyings[0].payment_infos[0].transactions[0]
    assert tx.requested_date == dt.date(2026, 12, 1)


def test_an_unknown_reason_code_is_refused_in_01_only() -> None:
    """.01 lists its reason codes (CancellationReason4Code); .09 takes any external code."""
    txs = [s.CancelTx(reason="XXXX")]
    data = {
        v: s.to_bytes(s.camt055(v, payment_infos=[s.CancelPmtInf(transactions=txs)]))
        for v in ("01", "09")
    }
    assert refused("01", data["01"]).reason is RequestReason.FF01
    assert read("09", data["09"]).underlyings[0].payment_infos[0].transactions[0].reason == (
        CancellationReasonInfo("XXXX", "entered twice")
    )


@pytest.mark.parametrize("version", ["01", "09"])
def test_an_underlying_that_names_nothing_is_refused(version: str) -> None:
    finding = refused(version, s.to_bytes(s.camt055(version, group_level=False, payment_infos=())))
    assert finding.reason is RequestReason.FF01
    assert finding.info == "Undrlyg 1 names neither an original group nor a payment information"
    assert finding.msg_id == "CXL-20261126-01"


def test_too_many_items_in_one_request_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cancellation, "items_per_request_max", 3)
    many = [s.CancelPmtInf(transactions=[s.CancelTx()] * 2)] * 2
    finding = refused("09", s.to_bytes(s.camt055("09", payment_infos=many)))
    assert finding.reason is RequestReason.NARR
    assert finding.info.startswith("6 payment informations and transactions named")


@pytest.mark.parametrize("version", ["01", "09"])
def test_schema_invalid_requests_are_ff01_with_their_id(version: str) -> None:
    root = s.camt055(version)
    amount = root.find(".//{*}OrgnlInstdAmt")
    assert amount is not None
    amount.text = "12.505"  # 5 decimals are allowed; a negative amount is not
    assert isinstance(READERS[version](s.to_bytes(root)), CancellationRequest)
    amount.text = "-12.50"
    finding = refused(version, s.to_bytes(root))
    assert (finding.reason, finding.msg_id) == (RequestReason.FF01, "CXL-20261126-01")
    assert "OrgnlInstdAmt" in finding.info


@pytest.mark.parametrize("version", ["01", "09"])
@pytest.mark.parametrize("name", sorted(s.hostile(s.to_bytes(s.camt055("09")), "camt.055.001.09")))
def test_hostile_requests_are_ff01_and_never_read(version: str, name: str) -> None:
    """The pain.001 hostile-input rules hold for cancellations too."""
    data = s.hostile(s.to_bytes(s.camt055(version)), f"camt.055.001.{version}")[name]
    finding = refused(version, data)
    assert (finding.reason, finding.msg_id) == (RequestReason.FF01, None)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["01", "09"]))
def test_no_bytes_crash_a_reader(data: bytes, version: str) -> None:
    assert isinstance(READERS[version](data), CancellationRequest | RequestFinding)


@settings(max_examples=150, deadline=None)
@given(st.data(), st.sampled_from(["01", "09"]))
def test_no_damage_to_a_valid_request_crashes_a_reader(data: st.DataObject, version: str) -> None:
    good = bytearray(s.to_bytes(s.camt055(version)))
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(good) - 1))
        good[at] = data.draw(st.integers(0, 255))
    assert isinstance(READERS[version](bytes(good)), CancellationRequest | RequestFinding)
