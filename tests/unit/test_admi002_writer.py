"""admi.002.001.01: what a client reads when its request is refused as a whole."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pyiso20022.admi.admi_002_001_01 import Document as Admi002

from gateway.inbound import camt055_v01, camt060_v05
from gateway.outbound import admi002_v01
from gateway.outbound.admi002_v01 import MessageReject
from gateway.pull_codes import RequestFinding, RequestReason
from tests.unit import pull_samples as s

RIGA = dt.timezone(dt.timedelta(hours=2))
AT = dt.datetime(2026, 11, 26, 10, 0, 7, tzinfo=RIGA)


def reason(data: bytes) -> Any:
    bound: Any = s.parse_back(data, Admi002)
    return bound.admi_002_001_01


def test_a_refused_request_is_named_by_its_msg_id_with_reason_and_description() -> None:
    data = admi002_v01.render(
        MessageReject(
            reason=RequestReason.AC02,
            description="account LV31TREL9100000000001: unknown or not yours",
            rejected_at=AT,
            related_ref="REQ-20261126-01",
            error_location="RptgReq 1",
        )
    )
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    body = reason(data)
    assert body.rltd_ref.ref == "REQ-20261126-01"
    assert body.rsn.rjctg_pty_rsn == "AC02"
    assert body.rsn.rjctn_dt_tm.to_datetime() == AT
    assert body.rsn.err_lctn == "RptgReq 1"
    assert body.rsn.rsn_desc == "account LV31TREL9100000000001: unknown or not yours"


def test_an_unreadable_request_is_unknown() -> None:
    """A file whose MsgId could not be read (a DTD, not XML): RltdRef/Ref is UNKNOWN."""
    finding = camt055_v01.read(b"<?xml version='1.0'?><!DOCTYPE x []><x/>")
    assert isinstance(finding, RequestFinding)
    body = reason(admi002_v01.render(MessageReject.of(finding, AT)))
    assert body.rltd_ref.ref == "UNKNOWN"
    assert (body.rsn.rjctg_pty_rsn, body.rsn.rsn_desc) == ("FF01", "a DTD (DOCTYPE) is not allowed")


def test_a_finding_of_a_reader_becomes_its_reject() -> None:
    wanted = s.Wanted(from_date="2016-01-01", to_date="2026-11-25")
    finding = camt060_v05.read(s.to_bytes(s.camt060("05", [wanted])), today=dt.date(2026, 11, 26))
    assert isinstance(finding, RequestFinding)
    body = reason(admi002_v01.render(MessageReject.of(finding, AT)))
    assert (body.rltd_ref.ref, body.rsn.rjctg_pty_rsn) == ("REQ-20261126-01", "NARR")
    assert "more than 31 business days" in body.rsn.rsn_desc


def test_long_or_hostile_text_is_escaped_and_cut() -> None:
    """Descriptions quote what the client sent: markup is escaped, control characters
    dropped, and text past Max350Text cut at a word with an ellipsis."""
    description = "unsupported message '<x>&amp;\x01' " + "word " * 100
    body = reason(
        admi002_v01.render(
            MessageReject(reason=RequestReason.FF01, description=description, rejected_at=AT,
                          related_ref="R" * 50)
        )
    )  # fmt: skip
    assert body.rltd_ref.ref == "R" * 35
    assert body.rsn.rsn_desc.startswith("unsupported message '<x>&amp;' word")
    assert len(body.rsn.rsn_desc) <= 350 and body.rsn.rsn_desc.endswith("…")


def test_a_naive_time_is_refused_when_made() -> None:
    with pytest.raises(ValueError, match="time zone"):
        MessageReject(
            reason=RequestReason.FF01, description="x", rejected_at=AT.replace(tzinfo=None)
        )


def test_an_unknown_request_names_its_upload_after_a_reason_cut_to_fit() -> None:
    """RltdRef UNKNOWN: the upload (file and SHA-256) ends RsnDesc, whole, the reason's
    English cut to leave it room within Max350Text; with a MsgId it is not said."""
    upload = "file cxl.xml, SHA-256 " + "ab" * 32
    long = RequestFinding(RequestReason.FF01, "not valid against camt.055: " + "word " * 100)
    body = reason(admi002_v01.render(MessageReject.of(long, AT, upload=upload)))
    assert body.rltd_ref.ref == "UNKNOWN"
    assert body.rsn.rsn_desc.startswith("not valid against camt.055: word")
    assert body.rsn.rsn_desc.endswith("…; " + upload) and len(body.rsn.rsn_desc) <= 350
    known = RequestFinding(RequestReason.FF01, "a DTD (DOCTYPE) is not allowed", "REQ-1")
    body = reason(admi002_v01.render(MessageReject.of(known, AT, upload=upload)))
    assert body.rsn.rsn_desc == "a DTD (DOCTYPE) is not allowed"


@pytest.mark.parametrize("carried", [False, True])
def test_a_long_upload_name_is_shortened_and_its_sha_256_kept_whole(carried: bool) -> None:
    """The longest name the server takes (236 bytes), of a request or of a container's
    data file: RsnDesc still ends with the whole SHA-256 the client matches the answer by
    (it was cut away), the names shortened in their middle, the reason's English given
    `reason_chars_min` characters."""
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from gateway.inbound.intake import Intake

    name = "r" + "z" * 231 + ".xml"
    sha = "cd" * 32
    intake = Intake(
        "alpha", Path("/spool/work/x"), name, "alpha-erp", "127.0.0.1", None, sha, 10,
        AT, AT, ZoneInfo("Europe/Riga"), carrier=(name, "ef" * 32) if carried else None,
    )  # fmt: skip
    upload = intake.upload_within(admi002_v01.upload_chars_max)
    assert len(upload) <= admi002_v01.upload_chars_max and "…" in upload
    assert upload.startswith("file rzz") and ".xml, SHA-256 " in upload
    finding = RequestFinding(RequestReason.FF01, "not valid against camt.060: " + "word " * 40)
    body = reason(admi002_v01.render(MessageReject.of(finding, AT, upload=upload)))
    desc = body.rsn.rsn_desc
    assert len(desc) <= 350 and desc.endswith("; " + upload), desc
    assert f"SHA-256 {'ef' * 32 if carried else sha}" in desc
    english = desc[: -len(upload) - 2]  # given `reason_chars_min`, cut at a word
    assert english.startswith("not valid against camt.060: word") and english.endswith("…")
    assert len(english) > admi002_v01.reason_chars_min - len("word ")
    assert intake.upload_within(10_000) == intake.upload  # room enough: as pain.002 says it
