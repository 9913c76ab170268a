"""The waiting-bytes account behind `client_waiting_bytes_max` (pure: the folder count is a fake).

What a client notices: an upload is refused exactly when its growth would take the client's
waiting bytes past the limit, uploads in flight count, and room made by the gateway is seen."""

from __future__ import annotations

from pathlib import Path

from gateway.sftp import quota
from gateway.sftp.quota import WaitingBytes


class Clock:
    """Seconds that stand still until moved."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


class FakeFolders:
    """Bytes (and files) on disk per client, and how often the server counted them; a count
    takes `seconds_per_count` of `clock`."""

    def __init__(self, clock: Clock | None = None, **on_disk: int) -> None:
        self.on_disk = dict(on_disk)
        self.files: dict[str, int] = {}
        self.counts = 0
        self.clock = clock
        self.seconds_per_count = 0.0

    def __call__(self, client_id: str) -> tuple[int, int]:
        self.counts += 1
        if self.clock is not None:
            self.clock.seconds += self.seconds_per_count
        return self.on_disk.get(client_id, 0), self.files.get(client_id, 0)


def test_reservations_add_up_to_the_limit_and_not_beyond() -> None:
    """Files on disk plus every reservation in flight stay within the limit; the limit itself
    is allowed; each client has its own account."""
    folders = FakeFolders(a=3000)
    waiting = WaitingBytes(folders, Clock())
    assert waiting.reserve("a", 4000, 10_000)
    assert waiting.reserve("a", 3000, 10_000)  # exactly 10,000
    assert not waiting.reserve("a", 1, 10_000)
    assert waiting.waiting("a") == 10_000 and waiting.in_flight("a") == 7000
    assert waiting.reserve("b", 10_000, 10_000)


def test_release_returns_room_or_keeps_it_as_a_file() -> None:
    """A discarded upload gives its bytes back; a completed one now lies in in/ and still counts."""
    folders = FakeFolders()
    waiting = WaitingBytes(folders, Clock())
    assert waiting.reserve("a", 6000, 10_000)
    waiting.release("a", 6000, kept=False)
    assert waiting.waiting("a") == 0
    assert waiting.reserve("a", 6000, 10_000)
    waiting.release("a", 6000, kept=True)
    folders.on_disk["a"] = 6000  # what a fresh count would see
    assert (waiting.waiting("a"), waiting.in_flight("a")) == (6000, 0)
    assert not waiting.reserve("a", 5000, 10_000)


def test_each_reservation_counts_the_folders_afresh_as_their_cost_allows() -> None:
    """Room the gateway made by taking files in, and bytes another process serving the
    spool wrote (a tester passed the limit through two servers, each knowing only its own
    uploads), are seen at the next write; a count stands for (count_share_max − 1) times
    what it took, so a cheap count is made at every write."""
    clock = Clock()
    folders = FakeFolders(clock, a=9000)
    waiting = WaitingBytes(folders, clock)  # a count takes no time here: never too recent
    assert waiting.reserve("a", 500, 10_000)
    folders.on_disk["a"] = 0  # the gateway took the waiting file in
    assert waiting.reserve("a", 5000, 10_000)
    assert waiting.waiting("a") == 5500
    folders.on_disk["a"] = 4000  # another process's upload, as written so far
    assert not waiting.reserve("a", 1000, 10_000)
    assert folders.counts == 3
    folders.seconds_per_count = 0.01  # a count now stands for 0.19 s
    assert waiting.reserve("a", 100, 10_000)
    counted = folders.counts
    folders.on_disk["a"] = 0
    assert not waiting.reserve("a", 1000, 10_000)  # the last count still stands
    assert folders.counts == counted


def test_a_count_takes_in_the_hidden_uploads_of_other_processes(tmp_path: Path) -> None:
    """A hidden upload this process writes is counted as reserved, not on disk; another
    process's (or one a stopped server left) counts at its size, as a file."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "done.xml").write_bytes(b"d" * 100)
    mine, theirs = inbox / ".upload-0000000000000001", inbox / ".upload-0000000000000002"
    mine.write_bytes(b"m" * 40)
    theirs.write_bytes(b"t" * 7)
    assert quota.usage_in([inbox, tmp_path / "absent"], {str(mine)}) == (107, 2)
    assert quota.usage_in([inbox]) == (147, 3)


def test_files_waiting_are_bounded_whatever_their_size() -> None:
    """Empty files cost no bytes but an inode and a directory entry each: a client left
    5,000 empty ones in a minute (a tester). At most `files_waiting_max` may wait, the
    uploads begun included; one that ends discarded makes room again."""
    folders = FakeFolders()
    folders.files["a"] = quota.files_waiting_max - 2
    waiting = WaitingBytes(folders, Clock())
    assert waiting.may_start("a") is None
    assert waiting.may_start("a") is None
    refused = waiting.may_start("a")
    assert refused is not None and f"at most {quota.files_waiting_max} files" in refused
    assert waiting.may_start("b") is None  # each client its own
    waiting.release("a", 0, kept=False)  # discarded
    assert waiting.may_start("a") is None
    waiting.release("a", 0, kept=True)  # now on disk, as a fresh count sees it
    folders.files["a"] += 1
    assert waiting.may_start("a") is not None


def test_a_flood_of_refused_opens_and_writes_reads_the_folders_a_share_of_the_time() -> None:
    """Counting means reading every file waiting, on the loop that serves every session: a
    client with 9,990 files waiting that sent hundreds of opens, each refused, had them
    counted each time and the server answered no other client for 32 s (a tester). After a
    count that took t, the count stands for (count_share_max − 1)·t — for refusals too;
    after that the folders are read again and room the gateway made is seen."""
    clock = Clock()
    folders = FakeFolders(clock, a=10_000)
    folders.files["a"] = quota.files_waiting_max
    folders.seconds_per_count = 0.03  # 10,000 files read
    waiting = WaitingBytes(folders, clock)
    for _ in range(300):
        assert waiting.may_start("a") is not None
        assert not waiting.reserve("a", 1, 10_000)
    assert folders.counts == 1
    folders.files["a"], folders.on_disk["a"] = 0, 0  # the gateway took them in
    stands = 0.03 * (quota.count_share_max - 1)
    clock.seconds += stands * 0.9
    assert waiting.may_start("a") is not None  # not read again yet
    clock.seconds += stands * 0.1
    assert waiting.may_start("a") is None
    assert waiting.reserve("a", 10_000, 10_000)
    assert folders.counts == 2
    assert waiting.may_start("b") is None and folders.counts == 3  # each client its own
