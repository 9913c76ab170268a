"""camt.055.001.01, the customer payment cancellation request of the 2009 edition.

It pairs with pain.001.001.03 and is answered with camt.029.001.03. No official XSD
of this version is at hand: the document is checked against the pyiso20022 model,
which is generated from it (`iso_model`), and read from the bound model into the
value of `cancellation`.
"""

from __future__ import annotations

from gateway.inbound import cancellation
from gateway.inbound.cancellation import CancellationRequest
from gateway.pull_codes import RequestFinding

MESSAGE = "camt.055.001.01"


def read(data: bytes) -> CancellationRequest | RequestFinding:
    """The request in `data` (the whole file, at most `safe_xml.request_bytes_max`
    bytes), or why it is refused as a whole (answered with admi.002)."""
    # The model is loaded by the first request, not by every process that may see one.
    from pyiso20022.camt.camt_055_001_01 import Document

    return cancellation.read(data, MESSAGE, Document)
