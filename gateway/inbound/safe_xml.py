"""Reading inbound XML without trusting it: the rules every message from outside obeys.

UTF-8 only, a DTD refused before a parser that resolves anything sees it (so no entity
is ever expanded; the echo of a file in UTF-16, whose DTD hides from a look at its bytes,
reads it with a parser that expands none and then echoes nothing), no network, size and
depth limits, and the root
element checked before anything else is looked at. `parse` reads a small message (a
request, a cancellation: bounded by `request_bytes_max`) whole; the pain.001 reader
(`pain001_v03`) streams a file of any size through the schema with `pull_parser` and
the same checks. `echo` finds what a broken file's group header said, for its answer.

Expected bad input is a value (the problem as English text), never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from lxml import etree

ISO_NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
request_bytes_max = 10 << 20  # a cancellation naming thousands of payments is < 5 MiB
request_depth_max = 40  # the deepest path of camt.055.001.09 is ~20 elements
prolog_bytes = 512  # where the encoding and a DOCTYPE must show themselves
root_look_bytes = 512  # the root element is looked for this much of the file at a time
feed_bytes = 1 << 16
echo_bytes_max = 64 << 10  # where a group header is looked for in a rejected file
echo_feed_bytes = 512  # the pieces it is read in (`echo`; a faulty one again byte by byte)

# UTF-16/32 byte-order marks, and the XML declaration's encoding (read from the raw
# bytes: lxml's docinfo does not know the encoding yet at the root's start event).
_NOT_UTF8_BOMS = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\xfe\xff", b"\xff\xfe")
_UTF8_BOM = b"\xef\xbb\xbf"
_DECLARED_ENCODING = re.compile(
    rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*?\sencoding\s*=\s*[\"']([^\"']*)[\"']"
)


def encoding_problem(head: bytes) -> str | None:
    """Why the file is not UTF-8 XML by its first bytes, or None."""
    if head.startswith(_NOT_UTF8_BOMS) or _wide(head[:4]):
        return "encoding must be UTF-8, the file is UTF-16 or UTF-32"
    if b"\x00" in head:  # no XML has a NUL, in UTF-8 or any other encoding of it
        return "not XML: the file holds NUL bytes (binary data, not text)"
    declared = _DECLARED_ENCODING.match(head)
    if declared is not None:
        name = declared.group(1).decode("ascii", "replace").upper()
        # US-ASCII is UTF-8's first 128 characters: some ERPs declare it (a byte beyond
        # them is then refused by the parser, reading the file as it declares)
        if name not in ("UTF-8", "UTF8", "US-ASCII", "ASCII"):
            return f"encoding must be UTF-8, the file declares {name}"
    return None


def _wide(first: bytes) -> bool:
    """Whether four bytes look like text in UTF-16 or UTF-32 without a byte-order mark:
    characters below 256 with their zero bytes where those encodings put them."""
    if len(first) < 4:
        return False
    a, b, c, d = first
    utf16 = (b == d == 0 and a and c) or (a == c == 0 and b and d)
    utf32 = first[:3] == b"\x00\x00\x00" or first[1:] == b"\x00\x00\x00"
    return bool(utf16 or utf32)


def has_doctype(head: bytes) -> bool:
    """Whether a DOCTYPE comes before the root element, judged from the raw bytes.

    The prolog may hold only the XML declaration, comments, processing instructions,
    white space and the DOCTYPE; everything is skipped up to the first markup that is
    none of these. A DOCTYPE is refused before the parser reads it, so its entities
    (a billion laughs, an external file) are never declared."""
    at = len(_UTF8_BOM) if head.startswith(_UTF8_BOM) else 0
    prolog = _PROLOG.match(head, at)
    end = prolog.end() if prolog is not None else at
    return head.startswith(b"<!DOCTYPE", end)


_PROLOG = re.compile(rb"(?:[ \t\r\n]+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)


def message_name(tag: Any) -> str | None:
    """`camt.060.001.05` from `{urn:iso:std:iso:20022:tech:xsd:camt.060.001.05}Document`."""
    if not isinstance(tag, str) or not tag.startswith("{" + ISO_NAMESPACE_PREFIX):
        return None
    name = tag[1 + len(ISO_NAMESPACE_PREFIX) :].partition("}")[0]
    return name if _MESSAGE_NAME.fullmatch(name) else None


_MESSAGE_NAME = re.compile(r"[a-z]{4}\.[0-9]{3}\.[0-9]{3}\.[0-9]{2}")


def looking_parser(events: tuple[str, ...] = ("start",)) -> Any:
    """A pull parser that resolves no entity at all, loads no DTD and reaches no network:
    for a first look at XML from outside (its root, a broken file's group header, a
    request), before anything trusts it. With a DOCTYPE refused, no entity can be
    declared; `resolve_entities=False` keeps it so even if one slipped past."""
    return etree.XMLPullParser(
        events=events,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def root_element(parser: Any, data: bytes) -> Any | None:
    """Feed `data` to a pull parser that reports start events, `root_look_bytes` at a
    time, until it reports the root element; that element, or None when `data` ended
    before it (the parser has then read all of it). Nothing after the piece holding
    the root's start tag is parsed: a file's name is told, and its root checked,
    without parsing the payments that follow in the same block.

    A syntax error raises `etree.XMLSyntaxError`, unless the root element started in the
    same piece before it: the root is returned, and the error is left to whoever
    parses the rest."""
    for at in range(0, len(data), root_look_bytes):
        error = None
        try:
            parser.feed(data[at : at + root_look_bytes])
        except etree.XMLSyntaxError as exc:
            error = exc
        for _event, elem in parser.read_events():
            return elem
        if error is not None:
            raise error
    return None


def pull_parser(**options: Any) -> Any:
    """A streaming parser that never loads a DTD or anything from the network. It resolves
    XML's five predefined entities and character references only ("internal": with the
    DTD refused beforehand there is nothing else to resolve; `False` together with a
    schema made lxml accept a document cut short without an error)."""
    return etree.XMLPullParser(
        resolve_entities="internal",
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        **options,
    )


class Echo(NamedTuple):
    """What could be read of a group header (any ISO 20022 message), for the answer to a
    file rejected as a whole: each field None where it could not be read."""

    message: str | None  # from the root element's namespace, e.g. pain.001.001.03
    msg_id: str | None
    created_at: str | None
    nb_of_txs: str | None
    ctrl_sum: str | None




# What `echo` reads: (parent, element) → the field. A request of the case family
# (camt.055, camt.029) has an assignment instead of a group header: its Id is its MsgId.
_HEADER_FIELDS = {
    **{("GrpHdr", name): name for name in ("MsgId", "CreDtTm", "NbOfTxs", "CtrlSum")},
    ("Assgnmt", "Id"): "MsgId",
    ("Assgnmt", "CreDtTm"): "CreDtTm",
}


def echo(head: bytes) -> Echo | None:
    """What the group header (or assignment) of any ISO 20022 message in `head` (the start
    of a file) says, read without a schema and in whatever encoding it declares (a file
    refused for not being UTF-8 still echoes its MsgId); None if nothing could be read. A
    file with a DTD echoes nothing (it is answered with its name and digest): told from
    its raw bytes where they are UTF-8, and from what the parser read where they are not
    (a DOCTYPE in UTF-16 hides from `has_doctype`), by a parser that expands no entity."""
    if not head or has_doctype(head):
        return None
    # What was parsed before a fault (later in the file, as a rule) stands. libxml2
    # converts a piece's bytes before parsing any of it, so a byte its declared encoding
    # does not allow (UTF-8 declared as US-ASCII) hides all that came before it in the
    # same piece, the MsgId too: the piece with the fault is read again a byte at a time.
    events, fault_at = _events_of(head, echo_feed_bytes)
    if fault_at is not None:
        events, _ = _events_of(head[: fault_at + echo_feed_bytes], 1)
    if events and declares_dtd(events[0][1]):
        return None
    found: dict[str, str] = {}
    message = _header(events, found)
    if message is None and not found:
        return None
    return Echo(
        message,
        found.get("MsgId") or None,
        found.get("CreDtTm") or None,
        found.get("NbOfTxs") or None,
        found.get("CtrlSum") or None,
    )


def _events_of(data: bytes, piece: int) -> tuple[list[tuple[str, Any]], int | None]:
    """The start and end events of `data` fed `piece` bytes at a time (by a parser that
    expands no entity), up to a syntax error; where the piece holding it starts (None:
    none)."""
    parser = looking_parser(("start", "end"))
    events: list[tuple[str, Any]] = []
    for at in range(0, len(data), piece):
        try:
            parser.feed(data[at : at + piece])
        except etree.XMLSyntaxError:
            events += parser.read_events()
            return events, at
        events += parser.read_events()
    return events, None


def _header(events: Iterable[tuple[str, Any]], found: dict[str, str]) -> str | None:
    """The message name of the root the `events` start with; the group header's (or
    assignment's) fields into `found`, up to its end."""
    message: str | None = None
    for event, elem in events:
        tag = elem.tag if isinstance(elem.tag, str) else ""
        local = tag.rpartition("}")[2]
        if message is None and event == "start":
            message = message_name(tag)
        parent = elem.getparent()
        if event == "end" and parent is not None:
            field = _HEADER_FIELDS.get((parent.tag.rpartition("}")[2], local))
            if field is not None:
                found.setdefault(field, (elem.text or "").strip())
        if event == "end" and local in ("GrpHdr", "Assgnmt"):
            break
    return message


def parse(data: bytes, message: str) -> etree._Element | str:
    """The root element of `data`, a `message` document (e.g. `camt.060.001.05`), or the
    problem in English. Read in blocks so that the root is checked, and the depth
    bounded, before the parser goes further than it must."""
    if not data:
        return "the file is empty"
    if len(data) > request_bytes_max:
        return f"the file is larger than {request_bytes_max} bytes"
    head = data[:prolog_bytes]
    if (problem := encoding_problem(head)) is not None:
        return problem
    if has_doctype(data):
        return "a DTD (DOCTYPE) is not allowed"
    parser = looking_parser(("start", "end"))
    depth = 0
    rooted = False
    try:
        for at in range(0, len(data), feed_bytes):
            parser.feed(data[at : at + feed_bytes])
            for event, elem in parser.read_events():
                if event == "end":
                    depth -= 1
                    continue
                depth += 1
                if depth > request_depth_max:
                    return f"elements nested deeper than {request_depth_max}"
                if not rooted:
                    rooted = True
                    if (problem := _root_problem(elem, message)) is not None:
                        return problem
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        return _describe(exc)
    if root is None or not rooted:
        return "not XML: no root element"
    if next(root.iter(etree.Entity), None) is not None:
        return "an entity reference is not allowed"
    return root


def declares_dtd(elem: Any) -> bool:
    """Whether the document `elem` belongs to declared a DTD (as the parser read it)."""
    docinfo = elem.getroottree().docinfo
    return bool(docinfo.doctype or docinfo.internalDTD is not None)


def _root_problem(elem: Any, message: str) -> str | None:
    if declares_dtd(elem):
        return "a DTD (DOCTYPE) is not allowed"
    tag = elem.tag
    found = message_name(tag)
    if found is None:
        return f"root element {tag!r} has no ISO 20022 namespace"
    if found != message:
        return f"unsupported message {found!r}: expected {message}"
    if tag != f"{{{ISO_NAMESPACE_PREFIX}{message}}}Document":
        return f"the root element must be Document, not {etree.QName(tag).localname}"
    return None


def _describe(exc: etree.XMLSyntaxError) -> str:
    text = str(exc.msg if getattr(exc, "msg", None) else exc)
    if "Document is empty" in text or "Start tag expected" in text:
        return f"not XML: {text}"
    if "Premature end of data" in text or "EndTag" in text or "end of data" in text:
        return f"not well-formed: the document ends too early ({text})"
    return f"not well-formed: {text}"
