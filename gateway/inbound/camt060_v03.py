"""camt.060.001.03, the account reporting request of the Latvian guidelines.

No official XSD of this version is at hand: the document is checked against the
pyiso20022 model, which is generated from it (`iso_model`), and read from the bound
model. What it asks for is judged in `report_request`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from gateway.inbound import report_request
from gateway.inbound.report_request import ReportRequest
from gateway.pull_codes import RequestFinding
from ledger import calendar

MESSAGE = "camt.060.001.03"


def read(
    data: bytes,
    *,
    today: dt.date,
    is_business_day: Callable[[dt.date], bool] = calendar.is_business_day,
) -> ReportRequest | RequestFinding:
    """The request in `data` (the whole file, at most `safe_xml.request_bytes_max`
    bytes), or why it is refused as a whole (answered with admi.002)."""
    # The model is loaded by the first request, not by every process that may see one.
    from pyiso20022.camt.camt_060_001_03 import Document

    return report_request.read(
        data, MESSAGE, Document, today=today, is_business_day=is_business_day
    )
