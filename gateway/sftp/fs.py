"""What an SFTP user sees: a virtual tree of exactly `/in`, `/out` and `/test`.

Every path a client sends goes through `resolve` (pure, lexical: relative
paths start in `/in`, `..` never climbs above `/`) and, when it names
something inside `/in` or `/out`, through `confine`, which compares the
lexical result with `os.path.realpath` of the same path: if any component on
disk is a symbolic link the two differ and the request is refused, so a link
planted on disk is never followed, wherever it points.

Which operations each mode may perform is decided by the small pure functions
below; the server only carries out what they allow.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from gateway.text import displayable

# The hidden name of an upload in progress (gateway.upload_temps): never shown to clients.
from gateway.upload_temps import UPLOAD_PREFIX

AREAS = ("in", "out", "test")
TRIAL_AREA = "test"  # uploads for a trial run (SPEC §15): checked, answered, never executed
UPLOAD_AREAS = ("in", TRIAL_AREA)
HOME = "/in"
# Names the gateway leaves alone until they are renamed (WinSCP, lftp, scripts).
IGNORED_SUFFIXES = (".part", ".filepart", ".tmp")
# A file system's 255 bytes, less what the receipt's temporary name adds to an upload's
# name (`.<name>.json.<8 hex>.tmp`, gateway.files.temporary_for): a longer name would fail
# only when the upload is closed, with the operating system's words.
NAME_BYTES_MAX = 255 - len("..json.12345678.tmp")


class PathRefused(Exception):
    """The path does not exist for this user (or is not allowed to)."""


@dataclass(frozen=True, slots=True)
class VirtualPath:
    """`area` None is the virtual root `/`; `parts` are the names below the area."""

    area: str | None
    parts: tuple[str, ...] = ()

    @property
    def is_root(self) -> bool:
        return self.area is None

    @property
    def is_area(self) -> bool:
        return self.area is not None and not self.parts

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else (self.area or "")

    @property
    def in_area_top(self) -> bool:
        """A file directly inside `/in` or `/out` (the only place files live)."""
        return self.area is not None and len(self.parts) == 1

    def text(self) -> str:
        if self.area is None:
            return "/"
        return "/" + "/".join((self.area, *self.parts))


def is_ignored_name(name: str) -> bool:
    """Names the gateway must not pick up: temporary uploads and dotfiles."""
    return name.startswith(".") or name.endswith(IGNORED_SUFFIXES)


def is_internal_name(name: str) -> bool:
    """Our own hidden upload files: invisible and untouchable over SFTP."""
    return name.startswith(UPLOAD_PREFIX)


def normalize(path: bytes) -> str:
    """The absolute, lexically normalised virtual path for what the client sent."""
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PathRefused("file names must be UTF-8") from exc
    if "\0" in text:
        raise PathRefused("file names must not contain NUL")
    joined = posixpath.join(HOME, text)  # an absolute `text` replaces HOME
    normal = posixpath.normpath(joined)
    # normpath keeps a leading "//"; and ".." above "/" stays at "/", like a chroot.
    return "/" + normal.lstrip("/")


def resolve(path: bytes) -> VirtualPath:
    """Map a client path onto the virtual tree; anything outside it does not exist."""
    parts = [p for p in normalize(path).split("/") if p]
    if not parts:
        return VirtualPath(None)
    area, *rest = parts
    if area not in AREAS:
        raise PathRefused(f"no such file: /{'/'.join(parts)}")
    if any(is_internal_name(p) for p in rest):
        raise PathRefused("no such file")
    return VirtualPath(area, tuple(rest))


def check_new_name(name: str) -> str | None:
    """Why a client may not create a file of this name, or None if it may."""
    if len(name.encode("utf-8")) > NAME_BYTES_MAX:
        return f"file name longer than {NAME_BYTES_MAX} bytes"
    if is_internal_name(name):
        return f"names starting with {UPLOAD_PREFIX!r} are reserved"
    if not displayable(name):
        return "control, format or line-separator characters in file name"
    return None


def confine(area_dir: Path, vpath: VirtualPath) -> str:
    """The local path for `vpath`, refused if any component on disk is a link.

    `area_dir` may itself be a link (an operator's choice); below it, nothing
    may be. Works for paths that do not exist yet (the parent is checked).
    """
    assert vpath.area is not None
    base = os.path.realpath(area_dir)
    candidate = os.path.join(base, *vpath.parts)
    if os.path.realpath(candidate) != candidate:
        raise PathRefused("no such file")
    return candidate


# Decisions. `mode` is the user's mode from the configuration: "manage" | "view".


def may_write_new(mode: str, vpath: VirtualPath) -> str | None:
    """Why the user may not create (upload) this file, or None."""
    if mode != "manage":
        return "read-only user"
    if vpath.area not in UPLOAD_AREAS or not vpath.in_area_top:
        return "uploads go directly into /in (or /test for a trial run)"
    return check_new_name(vpath.name)


def may_rename(mode: str, old: VirtualPath, new: VirtualPath) -> str | None:
    if mode != "manage":
        return "read-only user"
    if old.area not in UPLOAD_AREAS or new.area != old.area:
        return "files may be renamed only within /in (or within /test)"
    if not old.in_area_top or not new.in_area_top:
        return "files may be renamed only within /in (or within /test)"
    if is_ignored_name(new.name) and not is_ignored_name(old.name):
        # Received (receipted): it is answered and archived, never taken back unanswered.
        return "a received file may not be given a temporary name"
    return check_new_name(new.name)


def may_remove(mode: str, vpath: VirtualPath) -> str | None:
    if mode != "manage":
        return "read-only user"
    if vpath.area not in UPLOAD_AREAS or not vpath.in_area_top:
        return "only temporary files in /in (or /test) may be removed"
    if not is_ignored_name(vpath.name):
        return "only temporary files (*.part, *.filepart, *.tmp, dotfiles) may be removed"
    return None


def may_set_times(mode: str, vpath: VirtualPath) -> str | None:
    """Clients (WinSCP) set the modification time after an upload; only that is allowed."""
    if mode != "manage":
        return "read-only user"
    if vpath.area not in UPLOAD_AREAS or not vpath.in_area_top:
        return "attributes may be changed only on files in /in (or /test)"
    return None
