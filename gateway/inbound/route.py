"""Which ISO 20022 message a file in `/in` is: its root element's namespace decides (SPEC §15).

Only the first block of the file is looked at, with the hostile-input rules of every
inbound message (`safe_xml`): a file that is not UTF-8 or carries a DTD is not
identified at all, and neither is one whose root element does not start within the
block. What is not identified is answered as SPEC §6 says (pain.002 `RJCT FF01`).
"""

from __future__ import annotations

import contextlib

from lxml import etree

from gateway.inbound import safe_xml

head_bytes = safe_xml.feed_bytes  # how much of a file `message_of` wants


def message_of(head: bytes) -> str | None:
    """The message name of the file starting with `head` (e.g. `camt.055.001.09`, any
    ISO 20022 message, supported or not), or None when it cannot be told safely."""
    if not head or safe_xml.encoding_problem(head[: safe_xml.prolog_bytes]) is not None:
        return None
    if safe_xml.has_doctype(head):
        return None
    parser = etree.XMLPullParser(
        events=("start",),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    # An error later in the block (a stray byte, a bad entity) does not hide a root
    # already read: such a file is a request of its type that is invalid (admi.002).
    with contextlib.suppress(etree.XMLSyntaxError):
        parser.feed(head[:head_bytes])
    try:
        for _event, elem in parser.read_events():
            docinfo = elem.getroottree().docinfo
            if docinfo.doctype or docinfo.internalDTD is not None:
                return None
            return safe_xml.message_name(elem.tag)
    except etree.XMLSyntaxError:
        return None
    return None
