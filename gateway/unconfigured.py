"""Client folders in the spool that no configured client owns (SPEC §6: every file gets an
answer — one left in the `in/` of a client taken out of the configuration gets none, and
is not read, until the client is configured again). Said at start (a warning,
`spool.client_not_configured`) and by `status`, never touched: the files are the client's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import NamedTuple

from gateway.spool import Spool


class Unconfigured(NamedTuple):
    client_id: str  # the folder's name under clients/
    files: int  # entries waiting in its in/ and test/ (hidden ones aside)


def folders(spool: Spool, configured: Iterable[str]) -> list[Unconfigured]:
    """The client folders of `spool` no client of `configured` owns that hold files (an
    empty one left behind is no one's concern), with how many."""
    known = set(configured)
    try:
        names = sorted(os.listdir(spool.root / "clients"))
    except OSError:  # no clients/ yet, or not readable: nothing to say here
        return []
    found = [
        Unconfigured(name, _waiting(spool, name))
        for name in names
        if name not in known and not name.startswith(".")
    ]
    return [folder for folder in found if folder.files]


def _waiting(spool: Spool, client_id: str) -> int:
    count = 0
    for folder in (spool.inbox(client_id), spool.trial_box(client_id)):
        try:
            count += sum(1 for n in os.listdir(folder) if not n.startswith("."))
        except OSError:
            continue
    return count
