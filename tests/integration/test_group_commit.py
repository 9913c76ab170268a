"""Files waiting together share one transaction (group commit, `filerun.process`): one
commit and one round of deliveries for all, yet each file keeps its own answer and
shelf, and what goes wrong with one file stays its own. (Killed at random moments:
test_crash.py.)"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gateway import filerun
from gateway.environment import Environment
from gateway.filerun import Job
from tests.pipeline_fixtures import A_LIMITS, A_MAIN, EXTERNAL, Batch, Installation, batch


@pytest.fixture
def groups(inst: Installation, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The groups the pass runs, as lists of file names."""
    seen: list[list[str]] = []

    def recording(env: Environment, jobs: Sequence[Job]) -> list[Job]:
        seen.append([job.claim.original_name for job in jobs])
        return filerun.process(env, jobs)

    monkeypatch.setattr(inst.pipeline, "run_files", recording)
    return seen


def test_a_file_rejected_after_its_payments_ran_leaves_the_rest_of_its_group_booked(
    inst: Installation, groups: list[list[str]]
) -> None:
    """The middle file's group CtrlSum is wrong, which only its end shows: its payments
    were executed already, and are rolled back alone (its savepoint); the files before
    and after it in the same transaction stay booked, and the ledger's pair assertion
    holds for each."""
    before = inst.balance(A_MAIN)
    inst.drop(batch(("G-1", "10.00"), msg_id="GOOD-1"), "01.xml")
    inst.drop(Batch(msg_id="LATE", group_sum="99.99").tx("L-1", "5.00").build(), "02.xml")
    inst.drop(batch(("G-2", "20.00"), msg_id="GOOD-2"), "03.xml")
    result = inst.run()
    assert groups == [["01.xml", "02.xml", "03.xml"]]
    assert [(o.msg_id, o.shelf, o.group_status) for o in result.outcomes] == [
        ("GOOD-1", "archive", "ACSC"),
        ("LATE", "rejected", "RJCT"),
        ("GOOD-2", "archive", "ACSC"),
    ]
    assert inst.balance(A_MAIN) == before - 3000
    answers = {a.original_msg_id: a for a in inst.new_answers()}
    assert answers["LATE"].group_reasons == ["AM10"]
    assert answers["GOOD-1"].group_status == answers["GOOD-2"].group_status == "ACSC"


def test_one_commit_answers_every_file_of_the_group_once(
    inst: Installation, groups: list[list[str]]
) -> None:
    """Many small files: one group, each answered once and shelved with its own seal."""
    for n in range(20):
        inst.drop(batch((f"E-{n}", "1.00"), msg_id=f"MANY-{n:02d}"), f"{n:02d}.xml")
    inst.run()
    assert [len(g) for g in groups] == [20]
    answers = inst.new_answers()
    assert sorted(a.original_msg_id for a in answers) == [f"MANY-{n:02d}" for n in range(20)]
    assert len(inst.shelf_files()) == 20
    assert inst.left_in() == []


def test_a_daily_limit_counts_the_earlier_files_of_its_group_and_of_the_day(
    inst: Installation, groups: list[list[str]]
) -> None:
    """Files from the account with a 1,500.00 daily limit: in one group, what the earlier
    files debited counts for the next (the unit of work keeps it until it commits); after
    the commit, for the files of a later pass."""
    for n, amount in enumerate(("900.00", "500.00", "200.00"), start=1):
        one = Batch(debtor=A_LIMITS, msg_id=f"LIM-{n}").tx(f"L-{n}", amount, EXTERNAL)
        inst.drop(one.build(), f"{n:02d}.xml")
    inst.run()
    assert groups == [["01.xml", "02.xml", "03.xml"]]
    answers = {a.original_msg_id: a for a in inst.new_answers()}
    assert [answers[f"LIM-{n}"].statuses() for n in (1, 2, 3)] == [
        {"L-1": "ACSC"}, {"L-2": "ACSC"}, {"L-3": "RJCT"}
    ]
    assert answers["LIM-3"].tx("L-3").reasons == ["AM14"]
    up_to = Batch(debtor=A_LIMITS, msg_id="LIM-4").tx("L-4", "100.00", EXTERNAL)
    assert inst.submit(up_to.build()).statuses() == {"L-4": "ACSC"}
    beyond = Batch(debtor=A_LIMITS, msg_id="LIM-5").tx("L-5", "0.01", EXTERNAL)
    assert inst.submit(beyond.build()).tx("L-5").reasons == ["AM14"]
