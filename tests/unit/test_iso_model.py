"""The pyiso20022-model check agrees with the official XSD wherever we have one.

At run time every request is judged valid or not by `iso_model.check` (the gateway
does not read the XSDs in ../shared). Here each valid sample of a message with an
official XSD is broken in every way a client's system plausibly could — an element
removed, repeated, moved, an unknown element or attribute added, text put where only
elements go, and every leaf given wrong text of many kinds — and the model check must
say exactly what libxml2 with the official schema says, case by case.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree
from pyiso20022.camt.camt_029_001_10 import Document as Camt029v10
from pyiso20022.camt.camt_055_001_09 import Document as Camt055v09
from pyiso20022.camt.camt_060_001_05 import Document as Camt060v05

from gateway.inbound import iso_model
from gateway.outbound import camt029_v10
from gateway.outbound.resolution import (
    GroupResolution,
    PaymentInfoResolution,
    Resolution,
    TxResolution,
    UnderlyingResolution,
)
from gateway.pull_codes import CancellationReason, CancellationStatus
from tests.unit import pull_samples as s

Mutation = Callable[[etree._Element], None]

# Wrong (and some right) text for leaves, across the types ISO uses: text lengths,
# codes, IBAN, decimals and their digits, dates, times and their edge cases.
TEXTS = [
    "", " ", "X" * 36, "X" * 141, "-1", "1.123456", "2026-02-30", "2026-11-26T25:00:00",
    "true", "ALLL", "12", "1e3", "0012.50", "1.500000", " 2026-11-02 ", "LV31TREL9100000000001",
    "lv31", "00:00:00", "2026-11-26T08:15:00", "2026-11-26T08:15:00.123Z", "XXX", "EUR", "+5",
    " 12 ", " true ", "1.", ".5", "2026-11-26T08:15:00+14:00", "2026-11-26T08:15:00-00:00",
    "24:00:00", "-0", "0.000000", "1234567890123456789", "2026-11-26T24:00:00Z",
]  # fmt: skip


def _nth(root: etree._Element, n: int) -> etree._Element:
    return [e for e in root.iter() if e is not root][n]


def mutations(root: etree._Element) -> Iterator[tuple[str, Mutation]]:
    elements = [e for e in root.iter() if e is not root]
    for n, elem in enumerate(elements):
        name = f"{n}:{etree.QName(elem).localname}"

        def remove(r: etree._Element, n: int = n) -> None:
            e = _nth(r, n)
            e.getparent().remove(e)  # type: ignore[union-attr]

        def repeat(r: etree._Element, n: int = n) -> None:
            _nth(r, n).addnext(copy.deepcopy(_nth(r, n)))

        def swap(r: etree._Element, n: int = n) -> None:
            e = _nth(r, n)
            following = e.getnext()
            if following is not None:
                following.addnext(e)

        def unknown(r: etree._Element, n: int = n) -> None:
            e = _nth(r, n)
            etree.SubElement(e, f"{{{etree.QName(e).namespace}}}Foo")

        def attribute(r: etree._Element, n: int = n) -> None:
            _nth(r, n).set("x", "1")

        yield f"remove {name}", remove
        yield f"repeat {name}", repeat
        yield f"swap {name}", swap
        yield f"unknown child in {name}", unknown
        yield f"attribute on {name}", attribute
        if len(elem):

            def mixed(r: etree._Element, n: int = n) -> None:
                _nth(r, n).text = "x"

            yield f"text in {name}", mixed
        else:
            for text in TEXTS:

                def retext(r: etree._Element, n: int = n, text: str = text) -> None:
                    _nth(r, n).text = text

                yield f"{name} = {text!r}", retext


def resolution() -> Resolution:
    tz = dt.timezone(dt.timedelta(hours=2))
    return Resolution(
        msg_id="GW-1",
        created_at=dt.datetime(2026, 11, 26, 10, 0, tzinfo=tz),
        client_name=s.CLIENT,
        request_msg_id="CXL-1",
        details=(
            UnderlyingResolution(
                group=GroupResolution(
                    original_msg_id="ERP-1", original_msg_name="pain.001.001.03",
                    cancellation_id="G1",
                ),
                payment_infos=(
                    PaymentInfoResolution(
                        pmt_inf_id="PMT-1", cancellation_id="P1",
                        original_msg_id="ERP-1", original_msg_name="pain.001.001.03",
                        transactions=(
                            TxResolution(
                                status=CancellationStatus.ACCR, cancellation_id="C1",
                                end_to_end_id="E1", instr_id="I1", amount_minor=12050,
                                currency="EUR", requested_date=dt.date(2026, 12, 1),
                            ),
                            TxResolution(
                                status=CancellationStatus.RJCR,
                                reason=CancellationReason.AGNT, end_to_end_id="E2",
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )  # fmt: skip


SAMPLES: dict[str, tuple[Callable[[], bytes], type]] = {
    "camt.060.001.05": (lambda: s.to_bytes(s.camt060("05")), Camt060v05),
    "camt.055.001.09": (
        lambda: s.to_bytes(
            s.camt055(
                "09",
                whole_group=True,
                payment_infos=[
                    s.CancelPmtInf(group_here=True, whole=False),
                    s.CancelPmtInf(pmt_inf_id="P2", transactions=[s.CancelTx(), s.CancelTx()]),
                ],
            )
        ),
        Camt055v09,
    ),
    "camt.029.001.10": (lambda: camt029_v10.render(resolution()), Camt029v10),
}


@pytest.mark.parametrize("message", sorted(SAMPLES))
def test_the_model_check_says_what_the_official_xsd_says(message: str, xsd_dir: Path) -> None:
    schema = etree.XMLSchema(etree.parse(str(xsd_dir / f"{message}.xsd")))
    make, model = SAMPLES[message]
    root = etree.fromstring(make())
    assert schema.validate(root), schema.error_log
    assert iso_model.check(root, model) is None
    disagreements = []
    invalid = 0
    for name, mutate in mutations(root):
        changed = copy.deepcopy(root)
        mutate(changed)
        changed = etree.fromstring(etree.tostring(changed))
        by_xsd = schema.validate(changed)
        problem = iso_model.check(changed, model)
        invalid += not by_xsd
        if by_xsd != (problem is None):
            disagreements.append(f"{name}: XSD {by_xsd}, model {problem}")
    assert disagreements == []
    assert invalid > 300  # the mutations do break the sample, in many ways


def test_a_choice_holds_exactly_one_alternative() -> None:
    """ISO types named …Choice: one alternative, not two, not none."""
    root = s.camt060("05")
    sender = root.find(".//{*}MsgSndr")
    assert sender is not None
    sender.append(etree.fromstring(f'<Agt xmlns="{s.ns("camt.060.001.05")}"><FinInstnId/></Agt>'))
    assert "only one of Pty, Agt" in (iso_model.check(root, Camt060v05) or "")
    for child in list(sender):
        sender.remove(child)
    assert "one of Pty, Agt is required" in (iso_model.check(root, Camt060v05) or "")


def test_bind_fills_the_model_after_the_check() -> None:
    bound = iso_model.bind(etree.fromstring(s.to_bytes(s.camt060("05"))), Camt060v05)
    assert isinstance(bound, Camt060v05)
    assert bound.acct_rptg_req.rptg_req[0].acct.id.iban == s.OWN_IBAN
    root = etree.fromstring(s.to_bytes(s.camt060("05")))
    root[0][0][1].text = "yesterday"
    assert iso_model.bind(root, Camt060v05) == (
        "Document/AcctRptgReq/GrpHdr/CreDtTm: 'yesterday' is not a valid date and time"
    )
