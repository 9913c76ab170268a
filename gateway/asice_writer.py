"""Writing an ASiC-E container (the signing side: `ekase-gateway sign`, and tests), in the
shape `gateway.inbound.asice` reads."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime

from lxml import etree
from lxml.builder import ElementMaker

from gateway.inbound import asice


def media_type(name: str) -> str:
    return "application/xml" if name.lower().endswith(".xml") else "application/octet-stream"


def write_container(
    data_name: str, data: bytes, signatures: Sequence[asice.SignatureFile], *, moment: datetime
) -> bytes:
    """A container as DigiDoc writes them: `mimetype` first and stored, the data file at
    the root, the manifest, then the signatures. Entry times are `moment` (the signing
    time), so the same inputs give the same bytes."""
    problem = asice.name_problem(data_name)
    if problem or data_name.startswith("META-INF/") or data_name.endswith("/"):
        raise ValueError(f"data file name {data_name!r} cannot be used in a container")
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    utc = moment.astimezone(UTC)
    stamp = (max(utc.year, 1980), utc.month, utc.day, utc.hour, utc.minute, utc.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:

        def put(name: str, content: bytes, method: int) -> None:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = method
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, content)

        put("mimetype", asice.MIMETYPE, zipfile.ZIP_STORED)
        put(data_name, data, zipfile.ZIP_DEFLATED)
        put(asice.MANIFEST, _manifest(data_name), zipfile.ZIP_DEFLATED)
        for signature in signatures:
            if not asice.SIGNATURES.fullmatch(signature.name):
                raise ValueError(f"not a signatures file name: {signature.name!r}")
            put(signature.name, signature.xml, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _manifest(data_name: str) -> bytes:
    m = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
    E = ElementMaker(namespace=m, nsmap={"manifest": m})
    root = E("manifest", E("file-entry", {f"{{{m}}}full-path": "/",
                                          f"{{{m}}}media-type": asice.MIMETYPE.decode()}),
             E("file-entry", {f"{{{m}}}full-path": data_name,
                              f"{{{m}}}media-type": media_type(data_name)}),
             {f"{{{m}}}version": "1.2"})
    etree.indent(root)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return data + b"\n"
