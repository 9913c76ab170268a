"""`ekase-gateway verify FILE [--cert CERT ...]`: check a file against its seal.

`--cert` may be given more than once (the current and the next certificate during a
key rollover): the seal must come from one of them.

Exit 0 when the seal matches, 1 when it does not (the line names the problem), 2 when
the command itself cannot run (the given certificate cannot be read).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from gateway.errors import SealError
from gateway.outbound.seal import verify_file


def run_verify(
    file: Path, cert: Path | Sequence[Path] | None, now: datetime
) -> tuple[int, str]:
    if file.name.endswith(".sig"):  # people point at either half of the pair
        file = file.with_name(file.name.removesuffix(".sig"))
    trusted = None if cert is None else [cert] if isinstance(cert, Path) else list(cert)
    try:
        verdict = verify_file(file, trusted_certs=trusted or None, now=now)
    except SealError as exc:
        return 2, f"{file}: {exc}"
    if not verdict.ok:
        return 1, f"{file}: {verdict.describe()}"
    line = f"{file}: {verdict.describe()}"
    if not trusted:
        line += "; pass --cert to check who signed"
    return 0, line
