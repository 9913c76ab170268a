"""What a credit-transfer initiation says, as the readers hand it on: text, not yet judged.

The same values whatever the message version (pain.001.001.03 today, .09 later), so the
rules and the decide stage do not depend on a reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from gateway.inbound import safe_xml
from gateway.inbound.findings import Finding
from gateway.text import ascii_digits


class ParsedTx(NamedTuple):
    """One credit transfer as the client wrote it (text, not yet judged)."""

    seq: int
    pmt_seq: int
    instr_id: str | None
    end_to_end_id: str
    amount: str
    currency: str
    creditor_name: str | None
    creditor_iban: str | None
    creditor_other_id: str | None
    creditor_bic: str | None
    remittance: str | None  # the Ustrd lines as sent, joined by USTRD_SEPARATOR
    remittance_structured: str | None  # the Strd elements as sent, XML without namespace
    # SPEC §12: the RgltryRptg/Dtls with Tp EKK or IKK as sent, one text: each line
    # `Tp␟Cd␟Amt␟Ccy` (U+001F between fields), lines joined by U+001E (`budget.split`);
    # XML text cannot hold either. One string is cheap to send between processes and
    # is kept as it is (`gw_payments.budget_codes`).
    codes: str | None = None
    # Who the payment is really from or for, when that is not the accounts' owner (the
    # parties' `Nm`; a payment information's `UltmtDbtr` stands for its transactions'
    # where they name none: `record.payment_row`), and its purpose (`Purp`: the
    # `PURPOSE_CODE` or `PURPOSE_PROPRIETARY` prefix, then the text). The statements of both
    # sides carry them (SPEC §8: counterparty information).
    ultimate_debtor: str | None = None
    ultimate_creditor: str | None = None
    purpose: str | None = None


PURPOSE_CODE, PURPOSE_PROPRIETARY = "Cd:", "Prtry:"

# Between the Ustrd lines of `ParsedTx.remittance` (and `gw_payments.remittance`): U+001E,
# which XML text cannot hold, so a line keeps its own line breaks (SPEC §6: as sent).
USTRD_SEPARATOR = "\x1e"


@dataclass(slots=True)
class ParsedPmtInf:
    seq: int
    pmt_inf_id: str
    batch_booking: bool | None
    nb_of_txs: str | None
    ctrl_sum: str | None
    requested_date: str
    debtor_name: str | None
    debtor_iban: str | None
    debtor_other_id: str | None
    debtor_currency: str | None
    debtor_bic: str | None
    ultimate_debtor: str | None = None
    count: int = 0
    amount_sum: Decimal = field(default_factory=Decimal)

    def count_differs(self) -> bool:
        """Whether its NbOfTxs, where given, is not the number of its transactions (AM18)."""
        declared = declared_count(self.nb_of_txs)
        return declared is not None and declared != self.count

    def sum_differs(self) -> bool:
        """Whether its CtrlSum, where given, is not the sum of its amounts (AM10)."""
        declared = decimal_or_none(self.ctrl_sum)
        return declared is not None and declared != self.amount_sum

    def totals_differ(self) -> bool:
        """Whether the totals it declares are not those it has (AM18, AM10): once it has
        ended, the summary keeps its record only then (`ParsedFile.payment_infos`)."""
        return self.count_differs() or self.sum_differs()


def declared_count(text: str | None) -> int | None:
    """A declared NbOfTxs as a number (None: not given, or not the schema's Max15NumericText
    — read from a file that failed it, "²" is a digit to `isdigit` but not to `int`)."""
    if text is None or len(text) > 15 or not ascii_digits(text):
        return None
    return int(text)


def decimal_or_none(text: str | None) -> Decimal | None:
    """A declared CtrlSum as a number (None: not given, or not a number)."""
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


@dataclass(slots=True)
class ParsedHeader:
    msg_id: str
    created_at: str
    nb_of_txs: str
    ctrl_sum: str | None
    initiating_party: str | None


@dataclass(slots=True)
class ParsedFile:
    """The file as a whole: header, count and sum of its transactions, or a failure.

    Where the file is read, each payment information's record is handed on (before its
    transactions) and let go once it has ended; the summary keeps only those whose
    declared totals are not their own (`ParsedPmtInf.totals_differ`, with their count and
    sum: what AM18 and AM10 name), in file order, and how many there were — memory stays
    flat in the payment informations, as in the transactions."""

    header: ParsedHeader | None = None
    payment_infos: list[ParsedPmtInf] = field(default_factory=list)
    failure: Finding | None = None
    echo: safe_xml.Echo | None = None  # what a failed file's group header showed
    message: str = "pain.001.001.03"
    count: int = 0
    amount_sum: Decimal = field(default_factory=Decimal)
    pmt_inf_count: int = 0  # payment informations read


