"""The spool: a state machine of folders on one filesystem (the shell around the pipeline).

    clients/<client>/in/        uploaded, waiting                    (client's SFTP /in)
    clients/<client>/out/       answers and reports for the client   (client's SFTP /out)
    clients/<client>/test/      trial runs, waiting (SPEC §15)         (client's SFTP /test)
    receipts/<client>/          SFTP upload receipts waiting with their files
    work/<client>/              claimed, being processed (a process holds a lock on it), or
                                waiting after a fault (with NAME.attempts.json)
    quarantine/<client>/        set aside for a person: our code failed on it three times
    archive/<client>/<date>/    processed: the original, its findings, its seal
    rejected/<client>/<date>/   rejected as a whole (FF01, DU01, AM18, AM10)
    duplicates/<client>/<date>/ the same bytes again: answered with the original report
    trials/<client>/<date>/     trial runs from test/: checked, answered, nothing executed
    tmp/                        outbound files being written (never visible to clients)
    log/                        the JSON log

Every move is one rename within the spool (never copy-then-delete), so a file is
always in exactly one of these places and its place is its state. Nothing a client
sent is ever overwritten: a file is shelved under a name no other upload can have
(its number and its claim's own name), and by a move that refuses to replace.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import arrival, files, upload_temps
from gateway.errors import ConfigError, path_mistake
from gateway.files import fsync_dir, move_no_replace, remove_stale, same_file, write_atomically
from gateway.text import stored_name

IGNORED_SUFFIXES = (".part", ".filepart", ".tmp")
# Files the gateway keeps beside a claimed file in work/ and beside it in the archive.
FINDINGS_SUFFIX = ".findings.txt"  # what the gateway did with a file, in English
SIDECAR_SUFFIXES = (".receipt.json", ".sig", FINDINGS_SUFFIX)
ATTEMPTS_SUFFIX = ".attempts.json"  # failed runs of a claim (work/ only)
ERROR_SUFFIX = ".error.txt"  # why a file is in quarantine/
# The original name as a claim (and then its shelf) carries it: 255 bytes, less the
# shelf's file number (`00000000__`), the claim id (`<stamp>-<8 hex>-TEST__`) and the
# longest sidecar suffix (`.attempts.json`); cut at a character, not inside one.
file_name_bytes_max = 255 - len("00000000__20261205T030000-12345678-TEST__") - len(ATTEMPTS_SUFFIX)
TRIAL_MARK = "-TEST"  # ends the claim id of a file taken from test/ (a trial run)
SHELVES = ("archive", "rejected", "duplicates", "trials")
stale_temporary_seconds = 3600
# A receipt is alone for the instant between two moves (a claim's, an upload's publish):
# one alone this long was left by a killed process, and keeps its name from every upload.
receipt_alone_seconds = 60


def claimed_as(name: str) -> str:
    """An uploaded file's name as its claim (and shelf) carries it: as text every part of
    the gateway can store (`stored_name`), cut at a character to `file_name_bytes_max`."""
    kept = stored_name(name).encode("utf-8")[:file_name_bytes_max]
    return kept.decode("utf-8", errors="ignore")


def is_ignored(name: str) -> bool:
    """Names clients use while still writing (WinSCP, lftp, scripts): wait for the rename."""
    return name.startswith(".") or name.endswith(IGNORED_SUFFIXES)


@dataclass(frozen=True, slots=True)
class Claim:
    """A file taken out of `in/` for processing."""

    client_id: str
    path: Path  # in work/
    original_name: str
    receipt: dict[str, Any] | None
    arrived: float  # its ctime in in/ (wall clock; `intake.take_in`); a reclaim's: work/'s

    @property
    def trial(self) -> bool:
        """Whether the file came from `test/`: checked and answered, never executed."""
        return self.path.name.split("__", 1)[0].endswith(TRIAL_MARK)


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        # A client's folders, each made once (a daemon's pass asks for every client's
        # several times): by their parts under the root.
        self._folders: dict[tuple[str, ...], Path] = {}

    # -- folders ---------------------------------------------------------------------------

    def _folder(self, *parts: str) -> Path:
        made = self._folders
        return made.get(parts) or made.setdefault(parts, self.root.joinpath(*parts))

    def inbox(self, client_id: str) -> Path:
        return self._folder("clients", client_id, "in")

    def outbox(self, client_id: str) -> Path:
        return self._folder("clients", client_id, "out")

    def trial_box(self, client_id: str) -> Path:
        return self._folder("clients", client_id, "test")

    def receipts(self, client_id: str) -> Path:
        return self._folder("receipts", client_id)

    def work(self, client_id: str) -> Path:
        return self._folder("work", client_id)

    def awaiting(self, client_id: str) -> Path:
        """Where a client's batches wait for signatures (SPEC §11)."""
        return self._folder("awaiting", client_id)

    def tmp(self) -> Path:
        return self._folder("tmp")

    def shelf(self, kind: str, client_id: str, day: dt.date) -> Path:
        assert kind in SHELVES
        return self.root / kind / client_id / day.isoformat()

    def prepare(self, client_ids: list[str], log: Any | None = None) -> None:
        """Create the gateway's folders that are missing, and a new client's SFTP folders
        where they can be made. One client's that cannot (an OpenSSH installation's are
        root's, sshd's chroot; a file in the way) stops no one: each pass makes them or
        holds that client (`Pipeline.restore_folders`)."""
        for client_id in client_ids:  # a new client's (no work/ folder yet) made silently
            known = self.work(client_id).is_dir()
            self.make_sftp_folders(client_id, log if known else None)
        folders = [f for c in client_ids for f in (self.receipts(c), self.work(c))]
        folders += [self.root / name for name in ("tmp", "log", *SHELVES, "quarantine")]
        for folder in folders:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except PermissionError as exc:
                raise ConfigError(
                    "gateway.spool_dir",
                    f"cannot create {folder}: permission denied (the spool is the service "
                    "user's: run the command as that user, or systemd/install.sh again)",
                ) from exc
            except OSError as exc:  # a file in the way, a folder that cannot be made
                mistake = path_mistake("gateway.spool_dir", "create", folder, exc)
                if mistake is None:
                    raise  # a full disk, an I/O error: a fault, not the configuration
                raise mistake from exc

    def make_sftp_folders(self, client_id: str, log: Any | None) -> tuple[Path, OSError] | None:
        """Make the client's `in/`, `out/` and `test/` that are missing (removed by an
        operator's slip, or while the gateway was stopped), each logged to `log` if given
        (`spool.folder_made_again`); the first that cannot be seen or made, and why."""
        problem = None
        for folder in (self.inbox(client_id), self.outbox(client_id), self.trial_box(client_id)):
            try:
                if folder.is_dir():
                    continue
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # the others are still made
                problem = problem or (folder, exc)
                continue
            if log is not None:
                log.warning("spool.folder_made_again", client=client_id, folder=str(folder))
        return problem

    # -- waiting files ---------------------------------------------------------------------

    def waiting(self, client_id: str) -> list[Path]:
        """Regular files in `in/` that are complete by name, in the order they arrived."""
        return self._complete(client_id, self.inbox(client_id))

    def waiting_trials(self, client_id: str) -> list[Path]:
        """The same in `test/`: files for a trial run."""
        return self._complete(client_id, self.trial_box(client_id))

    def _complete(self, client_id: str, folder: Path) -> list[Path]:
        receipt_of = self.receipt_of(client_id)
        return arrival.complete_files(folder, receipt_of=receipt_of, ignored=is_ignored)

    def receipt_of(self, client_id: str) -> Callable[[Path], Path]:
        """Where the receipt of a file waiting in in/ or test/ lies (`receipt`)."""
        receipts, trials = self.receipts(client_id), self.trial_box(client_id)
        return lambda p: receipts / ("test" if p.parent == trials else "") / f"{p.name}.json"

    def in_work(self, client_id: str) -> list[Path]:
        """The files claimed, in the order they arrived (`arrival`; not their names: a
        pass's claims share their names' second, the rest is random); not one a process
        still writes (a claim that could not be put back: `claim`)."""
        folder = self.work(client_id)
        if not folder.is_dir():
            return []
        found = [p for p in folder.iterdir() if not p.name.endswith(
            (*SIDECAR_SUFFIXES, ATTEMPTS_SUFFIX)) and not p.name.startswith(".")
            and not files.open_for_writing(p)]  # fmt: skip
        return arrival.in_order(found, _receipt_path)

    def claim(
        self, client_id: str, path: Path, now: dt.datetime, locked: os.stat_result | None = None
    ) -> Claim | None:
        """Move `path` from `in/` or `test/` into `work/`, then its receipt (read there: no
        upload takes a name while its receipt is in receipts/); None if another took it, or
        put back if it is not the file `locked` (its client renamed that) or is open for
        writing (an OpenSSH client opened it again since it was listed: once no name in in/
        reaches it, that check is sure)."""
        name = stored_name(path.name)
        trial = path.parent == self.trial_box(client_id)
        target = self._claim_name(client_id, name, now, TRIAL_MARK if trial else "")
        receipt = self.receipt_of(client_id)(path)
        upload_temps.hold_receipt(receipt)  # (housekeeping leaves it while its file moves)
        try:
            arrived = os.stat(path).st_ctime  # before the move, which sets it
            os.replace(path, target)
        except FileNotFoundError:
            return None
        moved = os.lstat(target)
        other = locked is not None and not same_file(moved, locked)
        if other or arrival.being_written(target, moved.st_mtime):
            with contextlib.suppress(OSError):  # (a new upload has the name: `in_work`)
                move_no_replace(target, path)
            return None
        try:  # (a name too long to carry a receipt's suffix has none)
            os.replace(receipt, _receipt_path(target))
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENAMETOOLONG):
                raise
        return Claim(client_id, target, name, _read_json(_receipt_path(target)), arrived)

    def receipt(self, client_id: str, path: Path) -> dict[str, Any] | None:
        """What the receipt of a file waiting in in/ or test/ says."""
        return _read_json(self.receipt_of(client_id)(path))

    def _claim_name(self, client_id: str, name: str, now: dt.datetime, mark: str = "") -> Path:
        """`<claimed at>-<order><random>__<original name>` in work/: the claim's own name,
        which its shelf name carries on. Its order (4 hex digits, this process's claims in
        that second counted) keeps the claims of one tick of the kernel's clock, whose ctimes are
        equal, in the order they were made (`arrival`). A name already in work/ (a chance
        of 2**-16 within a second) is not reused: `os.replace` would put this over that."""
        stamp = f"{now:%Y%m%dT%H%M%S}"
        while True:
            claim_id = f"{stamp}-{arrival.claims.next(stamp):04x}{secrets.token_hex(2)}{mark}"
            target = self.work(client_id) / f"{claim_id}__{claimed_as(name)}"
            if not os.path.lexists(target):
                return target

    def reclaim(self, client_id: str, path: Path) -> Claim:
        """A file found in `work/` at start-up: an earlier run stopped while holding it."""
        receipt, arrived = _read_json(_receipt_path(path)), os.stat(path).st_ctime
        return Claim(client_id, path, path.name.split("__", 1)[-1], receipt, arrived)

    def remove_stale_temporaries(self, now_epoch: float) -> int:
        """Delete the gateway's own half-written files that a killed run left behind in tmp/,
        once older than `stale_temporary_seconds` (younger ones may be another daemon's)."""
        tmp = [*self.tmp().glob("*"), *self.tmp().glob(".*")]
        return remove_stale(tmp, now_epoch - stale_temporary_seconds)

    def remove_client_temporaries(self, client_id: str, now_epoch: float) -> int:
        """The same for `.*.tmp` in a client's out/ and work/, its hidden uploads whose
        writer is gone (`upload_temps`) and receipts left without their file; how many."""
        candidates = [
            p for folder in (self.outbox(client_id), self.work(client_id))
            for p in folder.glob(".*") if p.name.endswith(".tmp")
        ]  # fmt: skip
        uploads = (self.inbox(client_id), self.trial_box(client_id))
        removed = upload_temps.remove_abandoned(client_id, uploads, now_epoch)
        alone = now_epoch - receipt_alone_seconds
        removed += upload_temps.remove_orphan_receipts(self.receipts(client_id), uploads, alone)
        return removed + remove_stale(candidates, now_epoch - stale_temporary_seconds)

    # -- leaving work ------------------------------------------------------------------------

    def shelf_target(self, claim: Claim, kind: str, file_id: int, day: dt.date) -> Path:
        """Where a claimed file will lie once processed (its seal names this):
        `<file number>__<claimed at>-<random>__<original name>`.

        The number alone does not tell uploads apart (a repeated upload is shelved under
        the number of the file it repeats), nor does the original name (a client may send
        two files as pay.xml on one day); the claim's own name in work/ does, so every
        upload keeps its own file, findings and receipt. The name depends only on the
        claim, so a restart that shelves the claim again arrives at the same one."""
        folder = self.shelf(kind, claim.client_id, day)
        return folder / f"{file_id:08d}__{claim.path.name}"

    def shelve(self, claim: Claim, target: Path, *, sync_folder: bool = True) -> Path:
        """Move the claimed file and its sidecars (receipt, seal, findings) to `target`.

        The sidecars were written beside the file in work/ and move first; the file
        moves last, so until it has moved the whole claim is still in work/ and a
        restart simply does it again. Sidecars already at the target are this claim's
        own from such a stopped run (`shelf_target` names are the claim's); a file
        already there that is not this one is refused (`ShelfTaken`), before anything
        moves, rather than replaced.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(target) and not same_file(os.lstat(target), os.lstat(claim.path)):
            raise ShelfTaken(target)
        for suffix in SIDECAR_SUFFIXES:
            sidecar = claim.path.with_name(claim.path.name + suffix)
            if sidecar.exists():
                os.replace(sidecar, target.with_name(target.name + suffix))
        # Uploaded through OpenSSH, the file is the SFTP user's and only its owner may
        # change its mode; the archive lies outside that user's chroot all the same.
        with contextlib.suppress(PermissionError):
            os.chmod(claim.path, 0o444)
        _move_without_replacing(claim.path, target)
        if sync_folder:  # else the caller syncs the folder (once for several files)
            fsync_dir(target.parent)
        _attempts_path(claim.path).unlink(missing_ok=True)
        return target

    # -- faults ------------------------------------------------------------------------------

    def attempts(self, work_path: Path) -> tuple[int, str] | None:
        """How often a claim in work/ failed on a defect of ours, and the last error (the
        count that sends it to quarantine/); None if it never did."""
        found = _read_json(_attempts_path(work_path))
        if found is None:
            return None
        error = str(found.get("error", "")).strip().splitlines()
        return int(found.get("attempts", 0)), error[-1] if error else ""

    def quarantined(self, client_id: str) -> list[Path]:
        """The files of `client_id` set aside in quarantine/, without their sidecars."""
        folder = self.root / "quarantine" / client_id
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return []
        sidecars = (*SIDECAR_SUFFIXES, ERROR_SUFFIX)
        return [folder / n for n in names if not n.startswith(".") and not n.endswith(sidecars)]

    def count_attempt(self, claim: Claim, error: str) -> int:
        """Record one more failed run of `claim` (with its error); how many there were."""
        path = _attempts_path(claim.path)
        earlier = _read_json(path) or {}
        attempts = int(earlier.get("attempts", 0)) + 1
        write_atomically(path, json.dumps({"attempts": attempts, "error": error}, indent=2))
        return attempts

    def quarantine(self, claim: Claim, error: str) -> Path:
        """Set a claim aside for a person, with the error, its receipt and its attempts."""
        folder = self.root / "quarantine" / claim.client_id
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / claim.path.name
        write_atomically(target.with_name(target.name + ERROR_SUFFIX), error)
        receipt = _receipt_path(claim.path)
        if receipt.exists():
            os.replace(receipt, _receipt_path(target))
        _attempts_path(claim.path).unlink(missing_ok=True)
        with contextlib.suppress(PermissionError):  # an OpenSSH upload is its user's
            os.chmod(claim.path, 0o444)
        os.replace(claim.path, target)
        fsync_dir(folder)
        return target


def complete_files(folder: Path, settled_before: float | None = None) -> list[Path]:
    """`arrival.complete_files` with the names clients write under (`is_ignored`)."""
    return arrival.complete_files(folder, settled_before, ignored=is_ignored)


def _attempts_path(work_path: Path) -> Path:
    return work_path.with_name(work_path.name + ATTEMPTS_SUFFIX)


class ShelfTaken(FileExistsError):
    """A shelf name is taken by another file: never replaced (cannot happen while shelf
    names carry the claim's own name; a fault of ours, the claim stays in work/)."""

    def __init__(self, target: Path) -> None:
        reason = "shelf name taken by another file; not replaced"
        super().__init__(errno.EEXIST, reason, str(target))


def _move_without_replacing(source: Path, target: Path) -> None:
    """Move `source` to `target` within one filesystem, failing if another file is there
    (`os.replace` alone would put `source` over it). Whoever shelves a claim holds its lock
    and shelf names carry the claim's own name, so no process takes the name in between (a
    hard link refuses by itself, but cannot link an OpenSSH upload: it is its SFTP user's).
    A target that is this very file (an older version stopped half-way) costs only the
    work/ name: renaming onto a link of the same file would do nothing."""
    if os.path.lexists(target):
        if not same_file(os.lstat(target), os.lstat(source)):
            raise ShelfTaken(target)
        os.unlink(source)
        return
    os.replace(source, target)


def _receipt_path(work_path: Path) -> Path:
    return work_path.with_name(work_path.name + SIDECAR_SUFFIXES[0])


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, OSError):
        return None
    return value if isinstance(value, dict) else None
