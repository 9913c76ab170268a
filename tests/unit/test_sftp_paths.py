"""How client paths map onto the virtual `/in` + `/out` tree, and who may do what there."""

from __future__ import annotations

import pytest

from gateway.sftp import fs
from gateway.sftp.fs import VirtualPath


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (b"", VirtualPath("in")),
        (b".", VirtualPath("in")),
        (b"a.xml", VirtualPath("in", ("a.xml",))),
        (b"/", VirtualPath(None)),
        (b"..", VirtualPath(None)),
        (b"../../..", VirtualPath(None)),
        (b"/../../out/r.xml", VirtualPath("out", ("r.xml",))),
        (b"//out//./r.xml", VirtualPath("out", ("r.xml",))),
        (b"../out/../in/x", VirtualPath("in", ("x",))),
    ],
)
def test_paths_resolve_lexically_and_never_climb_above_root(
    sent: bytes, expected: VirtualPath
) -> None:
    """Relative paths start in /in; `..` stops at `/`, like a chroot."""
    assert fs.resolve(sent) == expected


@pytest.mark.parametrize(
    "sent",
    [b"/etc/passwd", b"../../etc", b"/beta/in", b"/srv/spool/clients/beta/in", b"in\0x",
     b"\xff\xfe", b"/in/.upload-0123"],
)
def test_anything_outside_in_and_out_does_not_exist(sent: bytes) -> None:
    """Other clients, the host and our hidden upload files are simply not there."""
    with pytest.raises(fs.PathRefused):
        fs.resolve(sent)


@pytest.mark.parametrize(
    ("name", "ignored"),
    [("a.xml", False), ("a.part", True), ("a.filepart", True), ("a.tmp", True),
     (".hidden", True), (".upload-1", True), ("a.xml.bak", False)],
)
def test_names_the_gateway_ignores(name: str, ignored: bool) -> None:
    """Temporary upload names and dotfiles wait until the client renames them."""
    assert fs.is_ignored_name(name) is ignored


def test_only_manage_users_upload_and_only_into_in() -> None:
    """Uploads go straight into /in, by manage users, under a sane name."""
    assert fs.may_write_new("manage", VirtualPath("in", ("a.xml",))) is None
    assert fs.may_write_new("view", VirtualPath("in", ("a.xml",)))
    assert fs.may_write_new("manage", VirtualPath("out", ("a.xml",)))
    assert fs.may_write_new("manage", VirtualPath("in", ("sub", "a.xml")))
    assert fs.may_write_new("manage", VirtualPath("in", ("a\nb",)))
    assert fs.may_write_new("manage", VirtualPath("in", ("x" * 256,)))
    # the receipt's temporary name adds 19 bytes: 236 is the longest name that works
    assert fs.may_write_new("manage", VirtualPath("in", ("x" * 232 + ".xml",))) is None
    refused = fs.may_write_new("manage", VirtualPath("in", ("x" * 233 + ".xml",)))
    assert refused == "file name longer than 236 bytes"


def test_rename_only_within_in() -> None:
    """Renames stay inside /in; view users cannot rename."""
    a, b = VirtualPath("in", ("a.tmp",)), VirtualPath("in", ("a.xml",))
    assert fs.may_rename("manage", a, b) is None
    assert fs.may_rename("view", a, b)
    assert fs.may_rename("manage", a, VirtualPath("out", ("a.xml",)))
    assert fs.may_rename("manage", VirtualPath("out", ("a.xml",)), b)


@pytest.mark.parametrize("hidden", [".a.xml", "a.part", "a.xml.filepart", "a.tmp"])
def test_a_received_file_is_not_given_a_temporary_name(hidden: str) -> None:
    """A file under its final name has been received (receipted, to be answered and
    archived): renaming it to a name the gateway ignores would let the client take it back
    unanswered (and then remove it). Renamed to another final name, it stays received."""
    received = VirtualPath("in", ("a.xml",))
    refused = fs.may_rename("manage", received, VirtualPath("in", (hidden,)))
    assert refused is not None and "temporary" in refused
    assert fs.may_rename("manage", received, VirtualPath("in", ("b.xml",))) is None
    temporary = VirtualPath("in", ("a.part",))
    assert fs.may_rename("manage", temporary, VirtualPath("in", (hidden,))) is None


@pytest.mark.parametrize(
    "char",
    ["\x00", "\n", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u202e", "\u200b"],
    ids=["NUL", "LF", "ESC", "DEL", "NEL", "CSI", "LS", "PS", "RLO", "ZWSP"],
)
def test_names_with_characters_that_change_how_a_line_reads_are_refused(char: str) -> None:
    """C0 and C1 controls, line and paragraph separators and format characters (bidi
    overrides) would let a name forge lines or reorder text where a person reads it
    (the findings file: `inj.xml<NEL>Result: ACSC`)."""
    assert fs.check_new_name(f"inj.xml{char}Result: ACSC") is not None
    assert fs.check_new_name("Rēķins 11 š.g. (kopija) – ☃.xml") is None


def test_only_temporary_files_in_in_may_be_removed() -> None:
    """A delivered file is the gateway's to move; only leftovers of uploads can be removed."""
    assert fs.may_remove("manage", VirtualPath("in", ("a.part",))) is None
    assert fs.may_remove("manage", VirtualPath("in", (".x",))) is None
    assert fs.may_remove("manage", VirtualPath("in", ("a.xml",)))
    assert fs.may_remove("manage", VirtualPath("out", ("a.tmp",)))
    assert fs.may_remove("view", VirtualPath("in", ("a.part",)))


def test_test_folder_takes_uploads_like_in_but_never_moves_across() -> None:
    """/test (trial runs, SPEC §15): uploads, renames within it, temporary removals and
    times like /in; nothing moves between /test and /in or /out."""
    trial, inbox = VirtualPath("test", ("a.xml",)), VirtualPath("in", ("a.xml",))
    assert fs.resolve(b"/test/a.xml") == trial
    assert fs.may_write_new("manage", trial) is None
    assert fs.may_write_new("view", trial)
    assert fs.may_write_new("manage", VirtualPath("test", ("sub", "a.xml")))
    assert fs.may_rename("manage", trial, VirtualPath("test", ("b.xml",))) is None
    assert fs.may_rename("manage", trial, inbox)
    assert fs.may_rename("manage", inbox, trial)
    assert fs.may_rename("manage", VirtualPath("out", ("a.xml",)), VirtualPath("out", ("b.xml",)))
    assert fs.may_remove("manage", VirtualPath("test", ("a.xml.part",))) is None
    assert fs.may_remove("manage", trial)
    assert fs.may_set_times("manage", trial) is None
