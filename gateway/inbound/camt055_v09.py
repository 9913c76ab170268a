"""camt.055.001.09, the customer payment cancellation request (ISO 2019 edition).

Answered with camt.029.001.10. At run time the document is checked against the
pyiso20022 model of the version (`iso_model`; the official XSD in `../shared` is test
data, and the tests hold the check to it), then read into the value of
`cancellation`.
"""

from __future__ import annotations

from gateway.inbound import cancellation
from gateway.inbound.cancellation import CancellationRequest
from gateway.pull_codes import RequestFinding

MESSAGE = "camt.055.001.09"


def read(data: bytes) -> CancellationRequest | RequestFinding:
    """The request in `data` (the whole file, at most `safe_xml.request_bytes_max`
    bytes), or why it is refused as a whole (answered with admi.002)."""
    # The model is loaded by the first request, not by every process that may see one.
    from pyiso20022.camt.camt_055_001_09 import Document

    return cancellation.read(data, MESSAGE, Document)
