"""What a file in `/in` is, told cheaply before it is read: a signature container by its
first bytes, or by its name when they are not XML (SPEC §11), else the ISO 20022 message
its root element's namespace names (SPEC §15).

The file run routes every file by this module alone; the runs of the rarer kinds
(containers, requests, trials) are imported when a file of their kind arrives.

Only the first block of the file is looked at, with the hostile-input rules of every
inbound message (`safe_xml`): a file that carries a DTD is not identified at all, and
neither is one whose root element does not start within the block (one in another
encoding than UTF-8 is, by its root, and refused by its reader for the encoding). What
is not identified is answered as SPEC §6 says (pain.002 `RJCT FF01`).
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from gateway.inbound import safe_xml

head_bytes = safe_xml.feed_bytes  # how much of a file `message_of` wants
REPORT_REQUEST, CANCELLATION = "camt.060.", "camt.055."
REQUEST_PREFIXES = (REPORT_REQUEST, CANCELLATION)  # the pull side's messages (SPEC §15)

# Signature containers (SPEC §11): the suffix says which uploads are. A container unzips
# to at most `max_file_bytes` + 1 MiB, every entry counted (`asice`): the slack is for
# META-INF, where a XAdES signature with its certificate chain and revocation data is
# tens of KiB (and META-INF may hold `meta_bytes_max` at most, whatever the slack).
CONTAINER_SUFFIXES = (".asice", ".sce", ".edoc")
container_slack_bytes = 1024 * 1024
meta_bytes_max = 8 * 1024 * 1024


def is_container_name(name: str) -> bool:
    """Whether an upload's name says it is a container (the suffixes of SPEC §11)."""
    return name.lower().endswith(CONTAINER_SUFFIXES)


def claims_container(head: bytes) -> bool:
    """Whether a file's first bytes say it is an ASiC container: a zip whose first entry
    is `mimetype` (the container format's rule; its local header is 30 bytes)."""
    return head[:4] == b"PK\x03\x04" and head[30:38] == b"mimetype"


def is_container(path: Path, name: str) -> bool:
    """Whether the upload at `path`, named `name`, is a signature container: its bytes say
    so, whatever it is named — as its bytes, not its name, tell a repeat (a container first
    sent as `sig.xml` could never have been sent again right) — or its name does and its
    bytes are not XML (SPEC §15: the root element's namespace decides what a file is; a
    pain.001 sent as `pay.asice` was refused DS0B "not a zip file")."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(38)
    except OSError:
        return is_container_name(name)
    if claims_container(head):
        return True
    return is_container_name(name) and not _looks_like_xml(head)


def _looks_like_xml(head: bytes) -> bool:
    """Whether a file's first bytes begin markup (after a UTF-8 byte-order mark and white
    space): a container is a zip, which never does."""
    return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n").startswith(b"<")


def container_unzipped_bytes_max(max_file_bytes: int) -> int:
    """The most a container may unzip to, every entry counted (SPEC §11: "unzipped size ≤
    max_file_bytes + 1 MiB")."""
    return max_file_bytes + container_slack_bytes


def container_bytes_max(unzipped_bytes_max: int) -> int:
    """The largest container file worth opening: the data stored uncompressed plus META-INF
    (a zip's own headers are small beside the slack in `unzipped_bytes_max`)."""
    return unzipped_bytes_max + meta_bytes_max


def request_message(path: Path) -> str | None:
    """The message name of the file at `path` when it is a request of the pull side (any
    version of camt.060 or camt.055), else None (a pain.001, or a file not identified)."""
    with open(path, "rb") as handle:
        head = handle.read(head_bytes)
    name = message_of(head)
    if name is not None and name.startswith(REQUEST_PREFIXES):
        return name
    return None


def message_of(head: bytes) -> str | None:
    """The message name of the file starting with `head` (e.g. `camt.055.001.09`, any
    ISO 20022 message, supported or not), or None when it cannot be told safely."""
    # A file in another encoding is still told by its root (its reader then refuses it
    # for the encoding: a camt.060 declared ISO-8859-1 is an invalid camt.060, admi.002).
    if not head or safe_xml.has_doctype(head):
        return None
    # An error after the root's start (a stray byte, a bad entity) does not hide the
    # root: such a file is a request of its type that is invalid (admi.002).
    try:
        elem = safe_xml.root_element(safe_xml.looking_parser(), head[:head_bytes])
    except etree.XMLSyntaxError:
        return None
    if elem is None:
        return None
    if safe_xml.declares_dtd(elem):
        return None
    return safe_xml.message_name(elem.tag)
