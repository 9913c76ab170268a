"""camt.029.001.03 and .10: what a client reads back about its cancellation request."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pyiso20022.camt.camt_029_001_03 import Document as Camt029v03
from pyiso20022.camt.camt_029_001_10 import Document as Camt029v10

from gateway.inbound import camt055_v09, iso_model
from gateway.inbound.cancellation import CancellationRequest
from gateway.outbound import camt029_v03, camt029_v10
from gateway.outbound.resolution import (
    GroupResolution,
    PaymentInfoResolution,
    Resolution,
    TxResolution,
    UnderlyingResolution,
)
from gateway.pull_codes import CancellationReason, CancellationStatus, Confirmation
from tests.unit import pull_samples as s

Validate = Callable[[bytes | Path, str], None]
RIGA = dt.timezone(dt.timedelta(hours=2))
ACCR, RJCR = CancellationStatus.ACCR, CancellationStatus.RJCR
NOOR, AGNT = CancellationReason.NOOR, CancellationReason.AGNT


def cancelled(e2e: str, **fields: Any) -> TxResolution:
    return TxResolution(status=ACCR, end_to_end_id=e2e, **fields)


def refused(e2e: str, reason: CancellationReason, info: str | None = None) -> TxResolution:
    return TxResolution(status=RJCR, reason=reason, additional_info=info, end_to_end_id=e2e)


def resolution(*txs: TxResolution, **fields: Any) -> Resolution:
    values: dict[str, Any] = {
        "msg_id": "GW-CXL-20261126-0001",
        "created_at": dt.datetime(2026, 11, 26, 10, 0, 5, tzinfo=RIGA),
        "client_name": s.CLIENT,
        "request_msg_id": "CXL-20261126-01",
    }
    if "details" not in fields:
        values["details"] = (
            UnderlyingResolution(
                group=GroupResolution(
                    original_msg_id="ERP-20261125-7",
                    original_msg_name="pain.001.001.03",
                    cancellation_id="CXL-GRP-1",
                ),
                payment_infos=(
                    PaymentInfoResolution(
                        pmt_inf_id="PMT-1", cancellation_id="CXL-PMT-1", transactions=txs
                    ),
                ),
            ),
        )
    values.update(fields)
    return Resolution(**values)


ALL = resolution(
    cancelled("E2E-1", cancellation_id="CXL-1", amount_minor=12050, currency="EUR",
              requested_date=dt.date(2026, 12, 1)),
    cancelled("E2E-2", instr_id="INSTR-2"),
)  # fmt: skip
SOME = resolution(
    cancelled("E2E-1"), refused("E2E-9", NOOR), refused("E2E-3", AGNT, "executed on 2026-11-25")
)
NONE = resolution(refused("E2E-9", NOOR), refused("E2E-3", AGNT, "already cancelled"))
CASES = {"all": ALL, "some": SOME, "none": NONE}


def x(data: bytes, path: str, message: str) -> list[str]:
    ns = {"c": s.ns(message)}
    return [str(v) for v in etree.fromstring(data).xpath(path, namespaces=ns)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_10_answer_is_valid_against_the_official_schema(
    case: str, assert_valid: Validate
) -> None:
    data = camt029_v10.render(CASES[case])
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert_valid(data, "camt.029.001.10")


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_03_answer_parses_back_through_the_pyiso20022_model(case: str) -> None:
    """No official XSD of camt.029.001.03 is at hand: what we write is read back through
    the package's model (strictly) and checked against it as an XSD would."""
    data = camt029_v03.render(CASES[case])
    bound: Any = s.parse_back(data, Camt029v03)
    assert iso_model.check(etree.fromstring(data), Camt029v03) is None
    assert bound.rsltn_of_invstgtn.assgnmt.id == "GW-CXL-20261126-0001"


@pytest.mark.parametrize(
    ("case", "conf_10", "conf_03", "group"),
    [
        ("all", "CNCL", "CNCL", "ACCR"),
        ("some", "PACR", "PECR", "PACR"),
        ("none", "RJCR", "RJCR", "RJCR"),
    ],
)
def test_the_confirmation_says_all_some_or_none(
    case: str, conf_10: str, conf_03: str, group: str
) -> None:
    """CNCL when all were cancelled, RJCR when none, PACR when some (SPEC §15); .03 has no
    PACR among its confirmations and says PECR, its group statuses still say PACR."""
    assert CASES[case].confirmation is Confirmation[{"PECR": "PACR"}.get(conf_03, conf_03)]
    for module, conf in ((camt029_v10, conf_10), (camt029_v03, conf_03)):
        data = module.render(CASES[case])
        assert x(data, "//c:Sts/c:Conf/text()", module.MESSAGE) == [conf]
        assert x(data, "//c:GrpCxlSts/text()", module.MESSAGE) == [group]
        assert x(data, "//c:PmtInfCxlSts/text()", module.MESSAGE) == [group]


def test_10_rejections_say_noor_or_agnt_with_what_happened() -> None:
    data = camt029_v10.render(SOME)
    m = camt029_v10.MESSAGE
    assert x(data, "//c:TxInfAndSts/c:OrgnlEndToEndId/text()", m) == ["E2E-1", "E2E-9", "E2E-3"]
    assert x(data, "//c:TxInfAndSts/c:TxCxlSts/text()", m) == ["ACCR", "RJCR", "RJCR"]
    assert x(data, "//c:TxInfAndSts/c:CxlStsRsnInf/c:Rsn/c:Cd/text()", m) == ["NOOR", "AGNT"]
    assert x(data, "//c:TxInfAndSts/c:CxlStsRsnInf/c:AddtlInf/text()", m) == [
        "no such payment of this client",
        "executed on 2026-11-25",
    ]


def test_03_rejections_are_all_agnt_and_the_text_tells_them_apart() -> None:
    """.03 allows only LEGL, AGNT, CUST: NOOR is written AGNT, AddtlInf says which."""
    data = camt029_v03.render(SOME)
    m = camt029_v03.MESSAGE
    assert x(data, "//c:TxInfAndSts/c:CxlStsRsnInf/c:Rsn/c:Cd/text()", m) == ["AGNT", "AGNT"]
    assert x(data, "//c:TxInfAndSts/c:CxlStsRsnInf/c:AddtlInf/text()", m) == [
        "no such payment of this client",
        "executed on 2026-11-25",
    ]


def test_the_answer_echoes_the_request_ids_amount_and_date() -> None:
    for module, date_path in (
        (camt029_v10, "c:OrgnlReqdExctnDt/c:Dt"),
        (camt029_v03, "c:OrgnlReqdExctnDt"),
    ):
        data = module.render(ALL)
        m = module.MESSAGE
        tx = "//c:OrgnlPmtInfAndSts/c:TxInfAndSts[1]/"
        assert x(data, tx + "c:CxlStsId/text()", m) == ["CXL-1"]
        assert x(data, tx + "c:OrgnlInstdAmt/text()", m) == ["120.50"]
        assert x(data, tx + "c:OrgnlInstdAmt/@Ccy", m) == ["EUR"]
        assert x(data, tx + date_path + "/text()", m) == ["2026-12-01"]
        assert x(data, "//c:OrgnlPmtInfAndSts/c:TxInfAndSts[2]/c:OrgnlInstrId/text()", m) == [
            "INSTR-2"
        ]
        assert x(data, "//c:OrgnlGrpInfAndSts/c:OrgnlGrpCxlId/text()", m) == ["CXL-GRP-1"]
        assert x(data, "//c:OrgnlPmtInfAndSts/c:OrgnlPmtInfCxlId/text()", m) == ["CXL-PMT-1"]
        assert x(data, "//c:RslvdCase/c:Id/text()", m) == ["CXL-20261126-01"]
        assert x(data, "//c:Assgnmt/c:Assgne/c:Pty/c:Nm/text()", m) == [s.CLIENT]


def test_unknown_batches_and_payment_informations_are_answered_as_a_whole(
    assert_valid: Validate,
) -> None:
    """Nothing of them can be listed: their own status and reason stand, at their level."""
    answer = resolution(
        details=(
            UnderlyingResolution(
                group=GroupResolution(
                    original_msg_id="NOT-OURS", original_msg_name="pain.001.001.03",
                    status=RJCR, reason=NOOR,
                )
            ),
            UnderlyingResolution(
                payment_infos=(
                    PaymentInfoResolution(pmt_inf_id="PMT-X", status=RJCR, reason=NOOR),
                    PaymentInfoResolution(
                        pmt_inf_id="PMT-2", original_msg_id="ERP-2",
                        original_msg_name="pain.001.001.03",
                        transactions=(cancelled("E2E-5"),),
                    ),
                )
            ),
        )
    )  # fmt: skip
    assert answer.confirmation is Confirmation.PACR
    data = camt029_v10.render(answer)
    assert_valid(data, "camt.029.001.10")
    s.parse_back(camt029_v03.render(answer), Camt029v03)
    m = camt029_v10.MESSAGE
    assert x(data, "//c:OrgnlGrpInfAndSts/c:GrpCxlSts/text()", m) == ["RJCR"]
    assert x(data, "//c:OrgnlGrpInfAndSts/c:CxlStsRsnInf/c:Rsn/c:Cd/text()", m) == ["NOOR"]
    assert x(data, "//c:OrgnlPmtInfAndSts/c:PmtInfCxlSts/text()", m) == ["RJCR", "ACCR"]
    assert x(data, "//c:OrgnlPmtInfAndSts/c:OrgnlGrpInf/c:OrgnlMsgId/text()", m) == ["ERP-2"]


def test_text_is_escaped_and_cut_to_the_schema(assert_valid: Validate) -> None:
    """A client name or id with markup or too long, and a long AddtlInf, still validate."""
    answer = resolution(
        refused("E2E<&>" + "9" * 40, AGNT, "executed & booked " + "x" * 400),
        client_name="A & B <SIA> " + "ā" * 200,
        request_msg_id="Z" * 35,
    )
    data = camt029_v10.render(answer)
    assert_valid(data, "camt.029.001.10")
    s.parse_back(camt029_v03.render(answer), Camt029v03)
    lines = x(data, "//c:TxInfAndSts/c:CxlStsRsnInf/c:AddtlInf/text()", camt029_v10.MESSAGE)
    assert lines[0].startswith("executed & booked") and all(len(line) <= 105 for line in lines)


def test_values_that_cannot_be_answered_are_refused_when_made() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        TxResolution(status=RJCR, end_to_end_id="E1")
    with pytest.raises(ValueError, match="no reason"):
        TxResolution(status=ACCR, reason=AGNT, end_to_end_id="E1")
    with pytest.raises(ValueError, match="no status"):
        PaymentInfoResolution(pmt_inf_id="P")
    with pytest.raises(ValueError, match="time zone"):
        resolution(cancelled("E1"), created_at=dt.datetime(2026, 11, 26, 10, 0))
    with pytest.raises(ValueError, match="without details"):
        resolution(details=())


def test_a_request_read_and_answered_matches_item_for_item(assert_valid: Validate) -> None:
    """From camt.055.001.09 to camt.029.001.10: each payment answered by the ids it was
    named with, as the gateway will do once it has judged them."""
    request = camt055_v09.read(
        s.to_bytes(s.camt055("09", payment_infos=[s.CancelPmtInf(transactions=[
            s.CancelTx(), s.CancelTx(end_to_end_id="E2E-0002", cancellation_id="CXL-TX-2")])]))
    )  # fmt: skip
    assert isinstance(request, CancellationRequest)
    (underlying,) = request.underlyings
    assert underlying.group is not None
    (info,) = underlying.payment_infos
    answer = Resolution(
        msg_id="GW-1",
        created_at=dt.datetime(2026, 11, 26, 10, 0, tzinfo=RIGA),
        client_name=s.CLIENT,
        request_msg_id=request.msg_id,
        details=(
            UnderlyingResolution(
                group=GroupResolution(
                    original_msg_id=underlying.group.group.msg_id,
                    original_msg_name=underlying.group.group.msg_name,
                    cancellation_id=underlying.group.cancellation_id,
                ),
                payment_infos=(
                    PaymentInfoResolution(
                        pmt_inf_id=info.pmt_inf_id,
                        cancellation_id=info.cancellation_id,
                        transactions=tuple(
                            dataclasses.replace(
                                cancelled(tx.end_to_end_id or ""),
                                cancellation_id=tx.cancellation_id,
                                instr_id=tx.instr_id,
                            )
                            for tx in info.transactions
                        ),
                    ),
                ),
            ),
        ),
    )
    data = camt029_v10.render(answer)
    assert_valid(data, "camt.029.001.10")
    bound: Any = s.parse_back(data, Camt029v10)
    txs = bound.rsltn_of_invstgtn.cxl_dtls[0].orgnl_pmt_inf_and_sts[0].tx_inf_and_sts
    assert [(t.cxl_sts_id, t.orgnl_end_to_end_id) for t in txs] == [
        ("CXL-TX-1", "E2E-0001"),
        ("CXL-TX-2", "E2E-0002"),
    ]


def test_the_clients_case_is_the_resolved_case_when_it_opened_one() -> None:
    """RslvdCase/Id: the request's Case/Id when it opened a case, else its Assgnmt/Id."""
    for module in (camt029_v10, camt029_v03):
        data = module.render(dataclasses.replace(ALL, case_id="CASE-77"))
        assert x(data, "//c:RslvdCase/c:Id/text()", module.MESSAGE) == ["CASE-77"]
