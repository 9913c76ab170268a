"""`ekase-gateway verify FILE (--cert CERT ... | -c CONFIG)`: check a file against its seal.

A seal proves who made it only against a certificate the verifier already trusts:
the certificate inside the seal is the signer's own claim, and anyone can make a key
with a certificate carrying the gateway's subject. So `verify` needs a trust anchor:
every `--cert` (repeatable: the current and the next certificate during a key
rollover), and with `-c CONFIG` the configuration's `[signing] certificate` and
`next_certificate`. With neither it does not judge at all.

`-c` only reads the configuration (and the files it names, which must load): no
database is opened and nothing is written, so an auditor can run it with read access
alone.

Exit 0 when the seal matches, 1 when it does not (the line names the problem), 2 when
the command itself cannot run (no trust anchor, a certificate that cannot be read, a
wrong configuration).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from gateway.errors import SealError, UsageError
from gateway.outbound.seal import verify_file

NO_TRUST_ANCHOR = (
    "verify needs a trusted certificate: --cert CERT (repeatable) or -c CONFIG "
    "(its [signing] certificate and next_certificate)"
)


def trust_anchors(certs: Sequence[Path], config: Path | None) -> list[Path]:
    """The certificates a seal may come from: every `--cert`, then the configured ones;
    one that is not there is a usage error naming where it was given."""
    named = [("--cert", cert) for cert in certs]
    if config is not None:
        from gateway.settings import load

        signing = load(config).signing
        named.append(("signing.certificate", signing.certificate))
        if signing.next_certificate is not None:
            named.append(("signing.next_certificate", signing.next_certificate))
    if not named:
        raise UsageError(NO_TRUST_ANCHOR)
    for given_as, path in named:
        try:
            os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise UsageError(f"{given_as}: {path} not found") from None
        except OSError as exc:  # a folder not ours to enter, a name too long, …
            raise UsageError(f"{given_as}: {path} cannot be read: {exc.strerror}") from exc
    return [path for _, path in named]


def run_verify(
    file: Path, cert: Path | Sequence[Path] | None, now: datetime
) -> tuple[int, str]:
    if file.name.endswith(".sig"):  # people point at either half of the pair
        file = file.with_name(file.name.removesuffix(".sig"))
    trusted = [] if cert is None else [cert] if isinstance(cert, Path) else list(cert)
    if not trusted:
        return 2, NO_TRUST_ANCHOR
    try:
        verdict = verify_file(file, trusted_certs=trusted, now=now)
    except SealError as exc:
        return 2, f"{file}: {exc}"
    return (0 if verdict.ok else 1), f"{file}: {verdict.describe()}"
