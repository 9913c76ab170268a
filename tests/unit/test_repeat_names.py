"""The name of a repeated answer (SPEC §8: `<stamp>_<message>_<MsgId>.xml`, the original's
MsgId kept): the first second from now whose name is free, found in a few look-ups."""

from __future__ import annotations

import datetime as dt

from gateway.outbound.outbox import first_free

NOW = dt.datetime(2026, 12, 7, 10, 0, 0)


def _lookups(taken: set[int]) -> tuple[int, int]:
    """The second `first_free` picks, as seconds after NOW, and how many look-ups it took."""
    asked: list[int] = []

    def is_taken(at: dt.datetime) -> bool:
        asked.append(int((at - NOW).total_seconds()))
        return asked[-1] in taken

    found = first_free(is_taken, NOW)
    return int((found - NOW).total_seconds()), len(asked)


def test_a_free_second_is_taken_at_once() -> None:
    assert _lookups(set()) == (0, 1)
    assert _lookups({-5, -1, 1}) == (0, 1)


def test_the_end_of_a_run_of_taken_seconds_is_found_in_a_few_lookups() -> None:
    """1,500 repeats stepped one second at a time cost 1,500 look-ups each (208 s for a
    tester's flood of uploads of the same bytes)."""
    for run in (1, 2, 3, 7, 8, 1500, 4096):
        second, lookups = _lookups(set(range(run)))
        assert second == run
        assert lookups <= 2 * run.bit_length() + 2, (run, lookups)


def test_what_is_returned_is_free_even_where_the_names_are_no_run() -> None:
    """Names from before a clock change need not form one run: whatever is picked was
    looked up free (the unique constraint would refuse it otherwise)."""
    taken = set(range(10)) | set(range(12, 40))
    second, _ = _lookups(taken)
    assert second not in taken and second >= 10
