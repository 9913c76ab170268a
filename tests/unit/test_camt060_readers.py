"""camt.060.001.03 and .05: what a client asking for its reports gets read as, or why not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.inbound import camt060_v03, camt060_v05, report_request
from gateway.inbound.report_request import Period, ReportKind, ReportRequest, RequestedReport
from gateway.pull_codes import RequestFinding, RequestReason
from tests.unit import pull_samples as s

TODAY = dt.date(2026, 11, 26)
READERS = {"03": camt060_v03.read, "05": camt060_v05.read}
Validate = Callable[[bytes | Path, str], None]


def read(version: str, data: bytes, **kwargs: object) -> ReportRequest | RequestFinding:
    return READERS[version](data, today=TODAY, **kwargs)  # type: ignore[arg-type]


def refused(version: str, data: bytes, **kwargs: object) -> RequestFinding:
    result = read(version, data, **kwargs)
    assert isinstance(result, RequestFinding), result
    return result


def weekdays(day: dt.date) -> bool:
    return day.weekday() < 5


@pytest.mark.parametrize("version", ["03", "05"])
def test_a_request_for_last_weeks_statements_is_read(version: str) -> None:
    """MsgId, CreDtTm and, per report, the message wanted, the IBAN and the period."""
    data = s.to_bytes(
        s.camt060(
            version,
            [
                s.Wanted(),
                s.Wanted(message="camt.052.001.02", from_date=None, request_id=None),
            ],
        )
    )
    assert read(version, data) == ReportRequest(
        message=f"camt.060.001.{version}",
        msg_id="REQ-20261126-01",
        created_at=dt.datetime(2026, 11, 26, 8, 15, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        reports=(
            RequestedReport(
                kind=ReportKind.STATEMENT,
                requested_message="camt.053.001.02",
                iban=s.OWN_IBAN,
                period=Period(
                    from_date=dt.date(2026, 11, 23),
                    to_date=dt.date(2026, 11, 25),
                    from_time=dt.time(0, 0),
                    to_time=dt.time(23, 59, 59),
                ),
                request_id="R1",
                business_days=3,
            ),
            RequestedReport(
                kind=ReportKind.INTRADAY,
                requested_message="camt.052.001.02",
                iban=s.OWN_IBAN,
                period=None,
            ),
        ),
    )


def test_the_05_sample_is_valid_against_the_official_schema(assert_valid: Validate) -> None:
    """The samples these tests change are themselves what the XSD accepts."""
    assert_valid(s.to_bytes(s.camt060("05")), "camt.060.001.05")
    assert_valid(s.to_bytes(s.camt060("05", [s.Wanted(from_time=None)])), "camt.060.001.05")


def test_in_05_the_times_of_day_are_optional_in_03_they_are_not() -> None:
    """camt.060.001.03 requires FrToTm in a period (the 2013 schema); .05 does not."""
    data = {v: s.to_bytes(s.camt060(v, [s.Wanted(from_time=None)])) for v in ("03", "05")}
    assert isinstance(read("05", data["05"]), ReportRequest)
    finding = refused("03", data["03"])
    assert finding.reason is RequestReason.FF01
    assert "FrToTm is missing" in finding.info
    assert finding.msg_id == "REQ-20261126-01"


@pytest.mark.parametrize("version", ["03", "05"])
@pytest.mark.parametrize("message", ["camt.053", "camt.052", "camt.053.001.02"])
def test_the_short_names_of_the_reports_are_understood(version: str, message: str) -> None:
    result = read(version, s.to_bytes(s.camt060(version, [s.Wanted(message=message)])))
    assert isinstance(result, ReportRequest)
    assert result.reports[0].kind.value == message[:8]


@pytest.mark.parametrize("version", ["03", "05"])
@pytest.mark.parametrize("message", ["camt.054.001.02", "camt.053.001.08", "CAMT.053", "pain.002"])
def test_a_report_we_do_not_offer_is_ch17(version: str, message: str) -> None:
    finding = refused(version, s.to_bytes(s.camt060(version, [s.Wanted(), s.Wanted(message)])))
    assert finding.reason is RequestReason.CH17
    assert finding.info.startswith("report 2:")
    assert message in finding.info


@pytest.mark.parametrize("version", ["03", "05"])
def test_ten_years_of_statements_is_over_the_limit(version: str) -> None:
    """A limit answered clearly (admi.002 NARR naming it), not a 2,600-statement answer."""
    wanted = s.Wanted(from_date="2016-11-26", to_date="2026-11-25")
    finding = refused(version, s.to_bytes(s.camt060(version, [wanted])))
    assert finding.reason is RequestReason.NARR
    assert "more than 31 business days" in finding.info
    assert finding.msg_id == "REQ-20261126-01"


def test_the_limit_is_31_business_days_by_the_calendar() -> None:
    """02.11.–14.12.2026 holds 31 weekdays, –15.12. 32; 18 November is a Latvian holiday,
    so by the real calendar –15.12. is 31 business days and allowed."""

    def days(to_date: str, **kwargs: object) -> ReportRequest | RequestFinding:
        wanted = s.Wanted(from_date="2026-11-02", to_date=to_date)
        return read("05", s.to_bytes(s.camt060("05", [wanted])), **kwargs)

    ok = days("2026-12-14", is_business_day=weekdays)
    assert isinstance(ok, ReportRequest) and ok.reports[0].business_days == 31
    over = days("2026-12-15", is_business_day=weekdays)
    assert isinstance(over, RequestFinding) and over.reason is RequestReason.NARR
    real = days("2026-12-15")
    assert isinstance(real, ReportRequest) and real.reports[0].business_days == 31
    assert isinstance(days("2026-12-16"), RequestFinding)


def test_the_limit_is_for_the_whole_request_not_each_report() -> None:
    """SPEC §15: at most 31 business days of statements in one request. Reports of the
    same days for several accounts ask for those days once; reports of other days add
    theirs — three months asked for as three reports of one month are refused as one."""
    months = [("2026-09-01", "2026-09-30"), ("2026-10-01", "2026-10-30"),
              ("2026-11-02", "2026-11-25")]  # fmt: skip
    apart = [s.Wanted(from_date=a, to_date=b, request_id=f"R{n}")
             for n, (a, b) in enumerate(months)]  # fmt: skip
    over = read("05", s.to_bytes(s.camt060("05", apart)), is_business_day=weekdays)
    assert isinstance(over, RequestFinding) and over.reason is RequestReason.NARR, over
    assert "reports 1, 2 and 3 together" in over.info and "more than 31" in over.info
    same = [s.Wanted(from_date="2026-10-20", to_date="2026-11-25", iban=iban, request_id=iban)
            for iban in (s.OWN_IBAN, "LV04TREL9100000000002")]  # fmt: skip
    ok = read("05", s.to_bytes(s.camt060("05", same)), is_business_day=weekdays)
    assert isinstance(ok, ReportRequest) and len(ok.reports) == 2  # 27 days, asked for twice


def test_an_open_ended_period_counts_to_today() -> None:
    wanted = s.Wanted(from_date="2026-11-02", to_date=None)
    ok = read("05", s.to_bytes(s.camt060("05", [wanted])), is_business_day=weekdays)
    assert isinstance(ok, ReportRequest)
    assert ok.reports[0].period == Period(
        dt.date(2026, 11, 2), None, dt.time(0), dt.time(23, 59, 59)
    )
    assert ok.reports[0].business_days == 19  # 2.–26.11., weekdays
    late = READERS["05"](
        s.to_bytes(s.camt060("05", [wanted])), today=dt.date(2026, 12, 15), is_business_day=weekdays
    )
    assert isinstance(late, RequestFinding) and late.reason is RequestReason.NARR


def test_the_intraday_report_has_no_statement_limit() -> None:
    """camt.052 is today's report: its period is the gateway's to judge, not counted here."""
    wanted = s.Wanted(message="camt.052.001.02", from_date="2016-01-01", to_date="2026-11-26")
    ok = read("05", s.to_bytes(s.camt060("05", [wanted])))
    assert isinstance(ok, ReportRequest) and ok.reports[0].business_days is None


@pytest.mark.parametrize("version", ["03", "05"])
def test_a_period_that_ends_before_it_starts_is_dt01(version: str) -> None:
    wanted = s.Wanted(from_date="2026-11-25", to_date="2026-11-23")
    finding = refused(version, s.to_bytes(s.camt060(version, [wanted])))
    assert finding.reason is RequestReason.DT01


@pytest.mark.parametrize("version", ["03", "05"])
def test_an_account_not_given_by_iban_is_ac01(version: str) -> None:
    finding = refused(version, s.to_bytes(s.camt060(version, [s.Wanted(iban=None)])))
    assert finding.reason is RequestReason.AC01


def test_more_reports_than_one_request_may_name_is_refused() -> None:
    many = [s.Wanted()] * (report_request.reports_per_request_max + 1)
    assert refused("05", s.to_bytes(s.camt060("05", many))).reason is RequestReason.NARR
    fine = [s.Wanted()] * report_request.reports_per_request_max
    assert isinstance(read("05", s.to_bytes(s.camt060("05", fine))), ReportRequest)


def test_the_end_of_the_day_as_24_00_is_read() -> None:
    """XSD's 24:00:00 is valid; it is read as the last instant of the day."""
    ok = read("05", s.to_bytes(s.camt060("05", [s.Wanted(to_time="24:00:00")])))
    assert isinstance(ok, ReportRequest)
    assert ok.reports[0].period is not None and ok.reports[0].period.to_time == dt.time.max


@pytest.mark.parametrize("version", ["03", "05"])
@pytest.mark.parametrize(
    ("change", "text"),
    [
        (lambda root: root[0][0][0].getparent().remove(root[0][0][0]), "MsgId is missing"),
        (lambda root: setattr(root[0][0][1], "text", "2026-11-31T10:00:00"), "CreDtTm"),
        (lambda root: setattr(root[0][1][2][0][0], "text", "LV31 TREL"), "IBAN"),
        (lambda root: root[0][1].append(etree.Element(root[0][1].tag)), "not expected"),
        (lambda root: root[0][1][3].addnext(root[0][1][2]), "out of order"),
    ],
)
def test_schema_invalid_requests_are_ff01_with_their_msg_id(
    version: str, change: Callable[[etree._Element], None], text: str
) -> None:
    """Invalid against the schema (the model): FF01, answered with admi.002 that names
    the request by its MsgId whenever that much could be read."""
    root = s.camt060(version)
    change(root)
    finding = refused(version, s.to_bytes(root))
    assert finding.reason is RequestReason.FF01
    assert text in finding.info
    expected = None if text == "MsgId is missing" else "REQ-20261126-01"
    assert finding.msg_id == expected


@pytest.mark.parametrize("version", ["03", "05"])
@pytest.mark.parametrize("name", sorted(s.hostile(s.to_bytes(s.camt060("05")), "camt.060.001.05")))
def test_hostile_requests_are_ff01_and_never_read(version: str, name: str) -> None:
    """DTD, billion laughs, external entity, not UTF-8, wrong namespace, truncated, too
    big or deep: FF01 (admi.002 with RltdRef UNKNOWN), whatever the bytes."""
    message = f"camt.060.001.{version}"
    data = s.hostile(s.to_bytes(s.camt060(version)), message)[name]
    finding = refused(version, data)
    assert finding.reason is RequestReason.FF01
    assert finding.msg_id is None


def test_the_findings_say_what_is_wrong() -> None:
    bad = s.hostile(s.to_bytes(s.camt060("05")), "camt.060.001.05")
    assert refused("05", bad["DTD"]).info == "a DTD (DOCTYPE) is not allowed"
    assert refused("05", bad["billion laughs"]).info == "a DTD (DOCTYPE) is not allowed"
    assert refused("05", bad["bomb after a long comment"]).info == "a DTD (DOCTYPE) is not allowed"
    assert "UTF-16" in refused("05", bad["UTF-16"]).info
    assert "ISO-8859-1" in refused("05", bad["declared Latin-1"]).info
    assert refused("05", bad["wrong namespace"]).info == (
        "unsupported message 'pain.001.001.03': expected camt.060.001.05"
    )
    assert refused("05", bad["truncated"]).info.startswith("not well-formed")
    assert "ends too early" in refused("05", bad["cut before the end tag"]).info
    assert "deeper than 40" in refused("05", bad["too deep"]).info
    assert "larger than" in refused("05", bad["too big"]).info
    assert refused("03", s.to_bytes(s.camt060("05"))).info == (
        "unsupported message 'camt.060.001.05': expected camt.060.001.03"
    )


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["03", "05"]))
def test_no_bytes_crash_a_reader(data: bytes, version: str) -> None:
    """Whatever a client uploads, the reader returns a value (hypothesis)."""
    assert isinstance(read(version, data), ReportRequest | RequestFinding)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_no_damage_to_a_valid_request_crashes_a_reader(data: st.DataObject) -> None:
    """Bytes of a valid request flipped, cut or repeated: still a value, never a crash."""
    good = bytearray(s.to_bytes(s.camt060("05")))
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(good) - 1))
        good[at] = data.draw(st.integers(0, 255))
    assert isinstance(read("05", bytes(good)), ReportRequest | RequestFinding)
