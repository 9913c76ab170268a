"""`scan --once`'s closing line counts every file it processed under what became of it:
a batch waiting for signatures and a trial run were counted as nothing ("processed 1
file(s): 0 answered payment by payment, 0 rejected as a whole, 0 repeated"), and requests
and signature containers as "answered payment by payment"."""

from __future__ import annotations

from gateway.pipeline import PassResult
from gateway.shelving import Outcome


def test_every_file_is_counted_under_what_became_of_it() -> None:
    shelves = ["archive", "archive", "rejected", "awaiting", "trials", "trials"]
    result = PassResult(outcomes=[Outcome(n, shelf, "ACSC") for n, shelf in enumerate(shelves)])
    result.files_with_pending_executed = [7]
    assert result.summary() == (
        "processed 6 file(s): 2 answered, 1 rejected as a whole, 0 repeated, "
        "1 waiting for signatures, 2 trial run(s); pending payments decided for 1 file(s)"
    )


def test_the_usual_three_are_always_said() -> None:
    assert PassResult().summary() == (
        "processed 0 file(s): 0 answered, 0 rejected as a whole, 0 repeated; "
        "pending payments decided for 0 file(s)"
    )


def test_a_held_client_is_said() -> None:
    """A client held by a fault of its own folder (its answers wait): the line said
    nothing of it and the command exited 0 as if all were done."""
    from gateway.faults import ClientFault

    fault = ClientFault(
        "b", "permissions", "PermissionError: …", "/spool/clients/b/out/.a.xml.tmp",
        "/spool/clients/b/out",
    )  # fmt: skip
    result = PassResult(held={"b": fault})
    assert result.summary().endswith(
        "; client b held: its permissions fault at /spool/clients/b/out"
    )
