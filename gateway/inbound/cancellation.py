"""What a customer payment cancellation request (camt.055) names, as a value, whatever its version.

camt.055.001.01 (the 2009 edition that pairs with pain.001.001.03) and .09 have the
same shape: an assignment (`Assgnmt/Id` is the request's id; there is no GrpHdr),
and one or more `Undrlyg`, each naming an original pain.001 group and, within it,
payment informations and transactions. What to cancel is one of:

- the whole original batch: `OrgnlGrpInfAndCxl` with `GrpCxl` true, or with no
  payment information named;
- a whole payment information: `OrgnlPmtInfAndCxl` with `PmtInfCxl` true, or with
  no transaction named;
- single transactions: `TxInf` by `OrgnlEndToEndId` and/or `OrgnlInstrId`, with the
  original amount when given (the gateway compares it with the booked payment).

A transaction may also name its debtor account (`OrgnlTxRef/DbtrAcct`): the account
debited, which must be the client's (SPEC §15: a request naming an account that is not
the client's is refused as a whole, `pullrun`). Nothing here is judged against the
books: an unknown id is the gateway's to answer (camt.029 `NOOR`). Only a request that
names nothing to cancel is refused here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lxml import etree

from gateway.inbound import iso_model, safe_xml
from gateway.pull_codes import RequestFinding, RequestReason

items_per_request_max = 10_000  # payment informations and transactions named in one request


@dataclass(frozen=True, slots=True)
class OriginalGroup:
    """The pain.001 a cancellation refers to (`OrgnlMsgId`, `OrgnlMsgNmId`)."""

    msg_id: str
    msg_name: str  # e.g. pain.001.001.03
    created_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class CancellationReasonInfo:
    """`CxlRsnInf`: the client's reason code (`Cd` or `Prtry`) and text, when given."""

    code: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionCancellation:
    """One `TxInf`: a payment to cancel, by its original ids."""

    cancellation_id: str | None = None  # CxlId, echoed as CxlStsId in camt.029
    end_to_end_id: str | None = None  # OrgnlEndToEndId
    instr_id: str | None = None  # OrgnlInstrId
    amount: Decimal | None = None  # OrgnlInstdAmt as sent, with its currency
    currency: str | None = None
    requested_date: dt.date | None = None  # OrgnlReqdExctnDt (its date part in .09)
    reason: CancellationReasonInfo | None = None
    debtor_account: str | None = None  # OrgnlTxRef/DbtrAcct: its IBAN, or its other id


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentInfoCancellation:
    """One `OrgnlPmtInfAndCxl`: a payment information, whole or some of its transactions."""

    pmt_inf_id: str  # OrgnlPmtInfId
    cancellation_id: str | None = None  # PmtCxlId, echoed as OrgnlPmtInfCxlId
    # OrgnlGrpInf here, else the underlying's group; None when neither names one
    group: OriginalGroup | None = None
    whole: bool  # PmtInfCxl true, or no transaction named
    transactions: tuple[TransactionCancellation, ...] = ()
    reason: CancellationReasonInfo | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupCancellation:
    """`OrgnlGrpInfAndCxl`: the original batch, and whether all of it is to be cancelled."""

    group: OriginalGroup
    cancellation_id: str | None = None  # GrpCxlId, echoed as OrgnlGrpCxlId
    whole: bool  # GrpCxl true, or no payment information named
    reason: CancellationReasonInfo | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Underlying:
    """One `Undrlyg`: a group (optional) and the payment informations named in it."""

    group: GroupCancellation | None = None
    payment_infos: tuple[PaymentInfoCancellation, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CancellationRequest:
    message: str  # camt.055.001.01 or camt.055.001.09
    msg_id: str  # Assgnmt/Id
    created_at: dt.datetime  # Assgnmt/CreDtTm
    case_id: str | None = None  # Case/Id, when the client opened a case
    nb_of_txs: str | None = None  # CtrlData/NbOfTxs as sent
    underlyings: tuple[Underlying, ...]

    def debtor_accounts(self) -> list[str]:
        """The debtor accounts the request names, each once, in the order named."""
        named = (
            t.debtor_account
            for u in self.underlyings
            for p in u.payment_infos
            for t in p.transactions
        )
        return list(dict.fromkeys(a for a in named if a is not None))


def read(data: bytes, message: str, document: type) -> CancellationRequest | RequestFinding:
    """Parse `data` safely, check it against the pyiso20022 model `document` of
    `message`, and take out what it names."""
    root = safe_xml.parse(data, message)
    if isinstance(root, str):
        return RequestFinding(RequestReason.FF01, root)
    bound = iso_model.bind(root, document)
    if isinstance(bound, str):
        return RequestFinding(
            RequestReason.FF01, f"not valid against {message}: {bound}", msg_id_of(root)
        )
    return from_document(bound, message)


def msg_id_of(root: etree._Element) -> str | None:
    """Assgnmt/Id of a request that is otherwise invalid, when it can be read."""
    found = root.find("*/{*}Assgnmt/{*}Id")
    text = found.text if found is not None else None
    return text if text and 0 < len(text) <= 35 and text.isprintable() else None


def from_document(document: Any, message: str) -> CancellationRequest | RequestFinding:
    """The request in a bound camt.055 `Document` (either version), or why it is refused."""
    body = document.cstmr_pmt_cxl_req
    msg_id: str = body.assgnmt.id
    underlyings = tuple(_underlying(item) for item in body.undrlyg)
    named = sum(
        len(u.payment_infos) + sum(len(p.transactions) for p in u.payment_infos)
        for u in underlyings
    )
    if named > items_per_request_max:
        return RequestFinding(
            RequestReason.NARR,
            f"{named} payment informations and transactions named: at most"
            f" {items_per_request_max} in one request",
            msg_id,
        )
    for number, underlying in enumerate(underlyings, start=1):
        if underlying.group is None and not underlying.payment_infos:
            return RequestFinding(
                RequestReason.FF01,
                f"Undrlyg {number} names neither an original group nor a payment information",
                msg_id,
            )
    return CancellationRequest(
        message=message,
        msg_id=msg_id,
        created_at=iso_model.date_time(body.assgnmt.cre_dt_tm),
        case_id=body.case.id if body.case is not None else None,
        nb_of_txs=body.ctrl_data.nb_of_txs if body.ctrl_data is not None else None,
        underlyings=underlyings,
    )


def _underlying(item: Any) -> Underlying:
    group = None
    shared = None
    node = item.orgnl_grp_inf_and_cxl
    if node is not None:
        shared = _original(node)
        group = GroupCancellation(
            group=shared,
            cancellation_id=node.grp_cxl_id,
            whole=_whole(node.grp_cxl, named=bool(item.orgnl_pmt_inf_and_cxl)),
            reason=_reason(node.cxl_rsn_inf),
        )
    return Underlying(
        group=group,
        payment_infos=tuple(_payment_info(p, shared) for p in item.orgnl_pmt_inf_and_cxl),
    )


def _whole(flag: bool | None, *, named: bool) -> bool:
    """Whether a group or payment information is cancelled as a whole: `GrpCxl` or
    `PmtInfCxl` true, or absent with nothing inside it named. `false` cancels only what
    is named inside, never the whole."""
    return bool(flag) or (flag is None and not named)


def _payment_info(node: Any, shared: OriginalGroup | None) -> PaymentInfoCancellation:
    own = node.orgnl_grp_inf
    return PaymentInfoCancellation(
        pmt_inf_id=node.orgnl_pmt_inf_id,
        cancellation_id=node.pmt_cxl_id,
        group=_original(own) if own is not None else shared,
        whole=_whole(node.pmt_inf_cxl, named=bool(node.tx_inf)),
        transactions=tuple(_transaction(tx) for tx in node.tx_inf),
        reason=_reason(node.cxl_rsn_inf),
    )


def _transaction(node: Any) -> TransactionCancellation:
    amount = node.orgnl_instd_amt
    return TransactionCancellation(
        cancellation_id=node.cxl_id,
        end_to_end_id=node.orgnl_end_to_end_id,
        instr_id=node.orgnl_instr_id,
        amount=amount.value if amount is not None else None,
        currency=amount.ccy if amount is not None else None,
        requested_date=_requested_date(node.orgnl_reqd_exctn_dt),
        reason=_reason(node.cxl_rsn_inf),
        debtor_account=_debtor_account(node.orgnl_tx_ref),
    )


def _debtor_account(reference: Any) -> str | None:
    """`OrgnlTxRef/DbtrAcct/Id` as given: its IBAN, or its other identification."""
    account = reference.dbtr_acct if reference is not None else None
    if account is None or account.id is None:
        return None
    if account.id.iban is not None:
        return str(account.id.iban)
    other = account.id.othr
    return str(other.id) if other is not None else None


def _requested_date(value: Any) -> dt.date | None:
    """A date (.01), or the DateAndDateTime2Choice of .09 (its date either way)."""
    if value is None:
        return None
    if hasattr(value, "to_date"):
        return value.to_date()  # type: ignore[no-any-return]
    if value.dt is not None:
        return value.dt.to_date()  # type: ignore[no-any-return]
    return iso_model.date_time(value.dt_tm).date()


def _original(node: Any) -> OriginalGroup:
    created = node.orgnl_cre_dt_tm
    return OriginalGroup(
        msg_id=node.orgnl_msg_id,
        msg_name=node.orgnl_msg_nm_id,
        created_at=iso_model.date_time(created) if created is not None else None,
    )


def _reason(infos: list[Any]) -> CancellationReasonInfo | None:
    """The first `CxlRsnInf` (the request may repeat it; one is what we echo and log)."""
    if not infos:
        return None
    info = infos[0]
    code = None
    if info.rsn is not None:
        raw = info.rsn.cd if info.rsn.cd is not None else info.rsn.prtry
        code = getattr(raw, "value", raw)  # an enum member in .01, text in .09
    text = " ".join(info.addtl_inf) if info.addtl_inf else None
    return CancellationReasonInfo(code=code, text=text)
