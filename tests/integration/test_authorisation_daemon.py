"""Expiry of a batch waiting for signatures while the daemon keeps running (SPEC §11): the
worker's own loop (`workers.WorkerLoop` over `worker.Worker`, as a worker process runs
it) on an injected clock that crosses midnight, with no upload and no restart between."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator

from gateway.testpki import Pki
from gateway.worker import PassReport, Worker
from gateway.workers import WorkerLoop
from tests.integration.test_authorisation import signing as signing  # the fixture
from tests.pipeline_fixtures import RIGA, Installation, batch

pass_wait_seconds = 30.0


class CountingWorker(Worker):
    """The daemon's worker, counting its passes so that the test knows one has run."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.passes = 0
        self.changed = threading.Condition()

    def run_pass(self) -> PassReport:
        report = super().run_pass()
        with self.changed:
            self.passes += 1
            self.changed.notify_all()
        return report

    def two_more_passes(self) -> None:
        """Wait until two passes have begun and ended after this call (the timer's, not
        a wake-up's: nobody wakes the loop)."""
        with self.changed:
            goal = self.passes + 2
            assert self.changed.wait_for(lambda: self.passes >= goal, pass_wait_seconds)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=RIGA).astimezone(dt.UTC)


def test_a_running_daemon_expires_the_batch_at_the_start_of_the_business_day(
    signing: tuple[Installation, Pki],
) -> None:
    """Received Monday 23 November, five business days: it expires at the start of
    Monday 30 November. The running loop crosses into Friday 27 (the fifth day itself),
    into Saturday and Sunday (not business days): still waiting, nothing answered. It
    crosses into Monday: `RJCT DS24` appears in out/ with no upload and no restart."""
    inst, _ = signing
    assert inst.settings.authorisation_days == 5
    inst.clock.set(at(23, 10))
    inst.drop(batch(("E1", "10.00"), msg_id="WAIT-D"), "pay.xml")
    inst.run()
    [first] = inst.new_answers()
    assert first.group_status == "PDNG"

    inst.clock.set(at(26, 23, 59, 58))
    gen = _running(inst)
    worker = next(gen)
    try:
        for moment in (at(27, 0, 0, 1), at(27, 23, 59, 59), at(28, 0, 0, 1), at(29, 12)):
            inst.clock.set(moment)
            worker.two_more_passes()
            assert inst.new_answers() == [], moment
        inst.clock.set(at(29, 23, 59, 59))
        worker.two_more_passes()
        inst.clock.set(at(30, 0, 0, 1))
        worker.two_more_passes()
        [expired] = inst.new_answers()
        assert expired.original_msg_id == "WAIT-D"
        assert expired.group_status == "RJCT" and expired.group_reasons == ["DS24"]
        assert expired.statuses() == {"E1": "RJCT"}
        assert "received 2026-11-23 10:00" in " ".join(expired.group_info)
        worker.two_more_passes()
        assert inst.new_answers() == []  # answered once
    finally:
        gen.close()


def _running(inst: Installation) -> Iterator[CountingWorker]:
    """The worker loop in a thread of its own for as long as the generator lives."""
    stop, wake = threading.Event(), threading.Event()
    workers: list[CountingWorker] = []

    def start() -> CountingWorker:
        workers.append(CountingWorker(inst.env, stop))
        return workers[0]

    loop = WorkerLoop(
        start, settings=dataclasses.replace(inst.settings, rescan_seconds=0.2),
        clock=inst.clock, stop=stop, wake=wake, report=lambda message: None,
        files_in_work=lambda: 0,
    )  # fmt: skip
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        while not workers and thread.is_alive():
            stop.wait(0.05)
        assert workers, "the worker loop ended before it started its worker"
        workers[0].two_more_passes()
        yield workers[0]
    finally:
        stop.set()
        wake.set()
        thread.join(pass_wait_seconds)
        assert not thread.is_alive()
