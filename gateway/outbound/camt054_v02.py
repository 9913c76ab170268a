"""camt.054.001.02, the debit/credit notification: the entries of one execution, no balances.

Balances on the report are optional here; when both are given they must still
reconcile with the entries (`account_report.check`), but they are not written.
"""

from __future__ import annotations

from typing import BinaryIO

from gateway.outbound import account_report, camt_v02, xmlwrite
from gateway.outbound.account_report import AccountReport

MESSAGE = "camt.054.001.02"


def write(report: AccountReport, out: BinaryIO) -> None:
    """Write `report` as a BkToCstmrDbtCdtNtfctn with one Ntfctn to `out`."""
    summary = account_report.check(report)
    with xmlwrite.document(out, MESSAGE, "BkToCstmrDbtCdtNtfctn") as w:
        camt_v02.group_header(w, report)
        camt_v02.account_section(w, report, "Ntfctn", (), summary)
