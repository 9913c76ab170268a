"""Every reason code the gateway gives, in one place, in precedence order.

The order of the enum is the precedence: when several rules fail for one
transaction (or one file), the finding that comes first here is the one
reported. File-level codes come first because they stop a file before any
transaction is looked at. Codes are ISO 20022 External Status Reason codes.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # -- file level: the whole file is rejected -----------------------------------------
    FF01 = "FF01"  # not well-formed, DTD/entities, XSD-invalid, not UTF-8, unsupported, limits
    DU01 = "DU01"  # MsgId already used by this client with different content
    AM18 = "AM18"  # NbOfTxs (group or payment information) differs from the count
    AM10 = "AM10"  # CtrlSum (group or payment information) differs from the sum
    # -- transaction level, decided when the file arrives ---------------------------------
    AC02 = "AC02"  # debtor account unknown or not this client's (never reveal which)
    AC04 = "AC04"  # debtor or treasury creditor account closed
    AC06 = "AC06"  # debtor or treasury creditor account blocked
    AC01 = "AC01"  # creditor IBAN invalid, or a treasury IBAN that does not exist
    RC01 = "RC01"  # BIC malformed
    AM03 = "AM03"  # currency not supported (another than the account's is converted: §13)
    AM12 = "AM12"  # amount zero, negative, or too many decimals
    AM02 = "AM02"  # amount above the account's max_payment
    DT01 = "DT01"  # execution date unreadable
    CH03 = "CH03"  # execution date more than max_future_days ahead
    AM05 = "AM05"  # duplicate EndToEndId in the file, or same payment within 5 business days
    RR05 = "RR05"  # budget classification codes missing, unknown, invalid or not adding up
    # -- transaction level, decided at execution time -------------------------------------
    AM14 = "AM14"  # account's daily_limit exceeded
    AM04 = "AM04"  # insufficient funds (balance plus overdraft)
    # no exchange rate within fx_wait_days business days (SPEC §13); a trial of bytes
    # already sent (SPEC §15: from in/ they would not execute again)
    NARR = "NARR"
    # -- signatory authorisation (SPEC §11): why a signature did not count, or expiry ----
    DS0B = "DS0B"  # container or signature unreadable
    DS17 = "DS17"  # signature over other bytes than the batch
    DS0F = "DS0F"  # certificate not from the signatory CA
    DS0C = "DS0C"  # certificate revoked
    DS0D = "DS0D"  # certificate not valid, or outside the signatory's card validity
    DS0H = "DS0H"  # signer not a signatory of this client, or not allowed on the account
    DS26 = "DS26"  # the same signatory again (counts once)
    DS19 = "DS19"  # rights insufficient so far
    DS24 = "DS24"  # waiting time for signatures expired
    # -- transaction level, after acceptance ------------------------------------------------
    DS02 = "DS02"  # order cancelled by the client before it executed (camt.055, SPEC §15)

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS: dict[Reason, str] = {
    Reason.FF01: "Invalid file format",
    Reason.DU01: "Duplicate message identification",
    Reason.AM18: "Number of transactions does not match",
    Reason.AM10: "Control sum does not match",
    Reason.AC02: "Invalid debtor account",
    Reason.AC04: "Account closed",
    Reason.AC06: "Account blocked",
    Reason.AC01: "Incorrect creditor account",
    Reason.RC01: "Incorrect BIC",
    Reason.AM03: "Currency not allowed",
    Reason.AM12: "Invalid amount",
    Reason.AM02: "Amount above the allowed maximum",
    Reason.DT01: "Invalid date",
    Reason.CH03: "Requested execution date too far in the future",
    Reason.AM05: "Duplicate payment",
    Reason.RR05: "Regulatory information invalid",
    Reason.AM14: "Amount exceeds the daily limit",
    Reason.AM04: "Insufficient funds",
    Reason.NARR: "Narrative",
    Reason.DS0B: "Signature data unreadable",
    Reason.DS17: "Signature over other data than the batch",
    Reason.DS0F: "Certificate not from the signatory CA",
    Reason.DS0C: "Certificate revoked",
    Reason.DS0D: "Certificate not valid",
    Reason.DS0H: "Signer not allowed for this account",
    Reason.DS26: "Same signatory again",
    Reason.DS19: "Signature rights insufficient",
    Reason.DS24: "Waiting time for signatures expired",
    Reason.DS02: "Order cancelled",
}

FILE_LEVEL = frozenset({Reason.FF01, Reason.DU01, Reason.AM18, Reason.AM10})
PRECEDENCE: dict[Reason, int] = {reason: rank for rank, reason in enumerate(Reason)}


def first(reasons: list[Reason]) -> Reason:
    """The reason that wins when several apply."""
    return min(reasons, key=PRECEDENCE.__getitem__)
