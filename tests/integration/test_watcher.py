"""The daemon's watcher (`gateway.watch.start_watcher`) on a real spool: a hint when a
file may have become ready, and none for what cannot make one ready."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from gateway.watch import Watcher, start_watcher
from tests.pipeline_fixtures import CLIENT_A, CLIENT_B, Installation

settle_seconds = 1.0  # for the watcher's thread to have passed on what it was given
hint_seconds_max = 10.0  # for a hint that is due to arrive


class Hints:
    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.count += 1

    def after_a_while(self) -> int:
        time.sleep(settle_seconds)
        return self.count

    def more_than(self, count: int) -> bool:
        deadline = time.monotonic() + hint_seconds_max
        while self.count <= count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.count > count


@contextlib.contextmanager
def watching(inst: Installation, hints: Hints, every: float | None = None) -> Iterator[Watcher]:
    """The watcher on `inst`'s spool, stopped and the installation closed after."""
    watcher = start_watcher(inst.settings, inst.env, hints, every=every)
    try:
        assert watcher is not None
        yield watcher
    finally:
        if watcher is not None:
            watcher.stop()
            watcher.join(5)
        inst.env.close()


def arrives(tmp_path: Path, folder: Path) -> None:
    """A whole file renamed into `folder` (the built-in server, a hand)."""
    (tmp_path / "whole.xml").write_bytes(b"<x/>")
    os.replace(tmp_path / "whole.xml", folder / "whole.xml")


def test_hints_for_files_that_may_be_ready_and_not_for_every_write(tmp_path: Path) -> None:
    inst = Installation.create(tmp_path / "inst", funded=False)
    hints = Hints()
    inbox = inst.env.spool.inbox(CLIENT_A)
    with watching(inst, hints):
        # Written in place (OpenSSH) in 200 writes: created, then closed — not a wake-up
        # per write. The close is what says such an upload may be whole.
        with open(inbox / "in-place.xml", "wb") as handle:
            for _ in range(200):
                handle.write(b"<x/>" * 10)
                handle.flush()
            assert hints.more_than(0)
            written = hints.after_a_while()
        assert hints.more_than(written)
        assert hints.after_a_while() <= 3
        # What the workers do with a file — open it, read it, move it out to work/ — is
        # no news.
        before = hints.count
        for _ in range(20):
            (inbox / "in-place.xml").read_bytes()
        os.replace(inbox / "in-place.xml", tmp_path / "claimed.xml")
        assert hints.after_a_while() == before
        arrives(tmp_path, inbox)  # a whole file renamed into in/ is
        assert hints.more_than(before)


def test_a_client_folder_that_refuses_leaves_the_others_watched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One client's folders that the service may not look into (its OpenSSH chroot made
    mode 000 by an operator) turned the watcher off for every client: each waited for the
    rescan. Now that client alone is left to the rescans, said in the log."""
    from tests.integration.test_client_faults import refuse_within

    inst = Installation.create(tmp_path / "inst", funded=False)
    hints = Hints()
    refuse_within(monkeypatch, inst.spool / "clients" / CLIENT_A)
    with structlog.testing.capture_logs() as logged, watching(inst, hints):
        said = [(e["event"], e["client"]) for e in logged if e["event"].startswith("watcher.")]
        assert said and set(said) == {("watcher.client_unwatched", CLIENT_A)}, said
        arrives(tmp_path, inst.env.spool.inbox(CLIENT_B))
        assert hints.more_than(0)


def test_a_client_left_unwatched_is_watched_once_its_folder_works_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client whose folders refused at start stayed on the rescans until a restart, its
    files waiting seconds for the next one. The watcher looks again on its own: once the
    operator mends the folder, that client's files are noticed at once, said in the log."""
    from tests.integration.test_client_faults import refuse_within

    inst = Installation.create(tmp_path / "inst", funded=False)
    hints = Hints()
    mend = refuse_within(monkeypatch, inst.spool / "clients" / CLIENT_A)
    with watching(inst, hints, every=3600) as watcher:
        mend()
        with structlog.testing.capture_logs() as logged:
            watcher.refresh()
        said = {(e["event"], e["client"]) for e in logged if e["event"].startswith("watcher.")}
        assert said == {("watcher.client_watched", CLIENT_A)}, said
        arrives(tmp_path, inst.env.spool.inbox(CLIENT_A))
        assert hints.more_than(0)


def test_an_inbox_removed_and_made_again_is_watched_again(tmp_path: Path) -> None:
    """An in/ removed by an operator's slip is made again by the next pass
    (`Pipeline.restore_folders`): a new folder, which nothing watched until a restart.
    The watcher's own look (every rescan) watches it: its files are noticed at once."""
    inst = Installation.create(tmp_path / "inst", funded=False)
    hints = Hints()
    inbox = inst.env.spool.inbox(CLIENT_A)
    with watching(inst, hints, every=0.2):
        inbox.rmdir()
        inst.pipeline.restore_folders()
        assert inbox.is_dir()
        time.sleep(1.0)  # the watcher's look, five times over
        before = hints.count
        arrives(tmp_path, inbox)
        assert hints.more_than(before)


def test_stop_while_a_refresh_runs_leaves_no_emitter_running(tmp_path: Path) -> None:
    """(Outside review.) The daemon's shutdown (`stop`, `join`) while the refresh thread
    re-schedules a re-made in/ left that watch's emitter running after the observer had
    stopped. A refresh now ends before the stop begins, and none starts after it."""
    inst = Installation.create(tmp_path / "inst", funded=False)
    inbox = inst.env.spool.inbox(CLIENT_A)
    leaked = []
    try:
        for _ in range(10):
            watcher = start_watcher(inst.settings, inst.env, Hints(), every=3600)
            assert watcher is not None
            inbox.rmdir()
            inbox.mkdir()
            time.sleep(0.2)  # the old emitter ends with its folder
            looking = threading.Thread(target=watcher.refresh)  # as `_keep` does
            looking.start()
            watcher.stop()
            looking.join()
            watcher.join(5)
            leaked += [e for e in watcher.observer.emitters if e.is_alive()]
    finally:
        inst.env.close()
    assert not leaked, leaked
