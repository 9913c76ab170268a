"""Limits of the SFTP front door: penalties for failing addresses, sessions per user."""

from __future__ import annotations

import pytest

from gateway.sftp.guard import (
    AuthPenalty,
    LoginSlots,
    LogThrottle,
    OpenHandles,
    PenaltyPolicy,
    SessionLimit,
    handles_total_max,
    idle_deadline,
    source_of,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def penalty(failures: int = 3, seconds_max: float = 60, **kw: int) -> tuple[AuthPenalty, FakeClock]:
    clock = FakeClock()
    policy = PenaltyPolicy(failures_before_penalty=failures, penalty_seconds_max=seconds_max, **kw)
    return AuthPenalty(policy, clock), clock


def test_failures_below_threshold_cost_nothing() -> None:
    """An operator mistyping a key path a couple of times is not locked out."""
    guard, _ = penalty(failures=3)
    assert guard.failed("10.0.0.1") == 0
    assert guard.failed("10.0.0.1") == 0
    assert guard.refused_for("10.0.0.1") == 0


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(3, 1.0), (4, 2.0), (5, 4.0), (6, 8.0), (9, 60.0), (500, 60.0)],
)
def test_penalty_doubles_up_to_the_maximum(failures: int, expected: float) -> None:
    """From the threshold on, each failure doubles the refusal period, capped at the maximum."""
    guard, _ = penalty(failures=3, seconds_max=60)
    assert guard.penalty_seconds(failures) == expected


def test_penalised_address_is_refused_until_its_period_ends() -> None:
    """An address over the threshold is refused, then admitted again when the period is over."""
    guard, clock = penalty(failures=2, seconds_max=60)
    guard.failed("10.0.0.1")
    assert guard.failed("10.0.0.1") == 1.0
    assert guard.refused_for("10.0.0.1") == 1.0
    assert guard.refused_for("10.0.0.2") == 0  # others are not affected
    clock.now += 0.5
    assert guard.refused_for("10.0.0.1") == 0.5
    clock.now += 0.5
    assert guard.refused_for("10.0.0.1") == 0
    assert guard.failed("10.0.0.1") == 2.0  # still counted: the next failure costs more


def test_success_forgets_failures() -> None:
    """A successful login from an address clears its record."""
    guard, _ = penalty(failures=2)
    guard.failed("10.0.0.1")
    guard.failed("10.0.0.1")
    guard.succeeded("10.0.0.1")
    assert guard.failures("10.0.0.1") == 0
    assert guard.refused_for("10.0.0.1") == 0


def test_quiet_address_is_forgotten() -> None:
    """An address that stops failing for twice the longest penalty starts afresh."""
    guard, clock = penalty(failures=2, seconds_max=60)
    for _ in range(5):
        guard.failed("10.0.0.1")
    clock.now += 121
    assert guard.failures("10.0.0.1") == 0
    assert guard.failed("10.0.0.1") == 0


def test_remembered_addresses_are_bounded() -> None:
    """A scan from many addresses cannot grow memory: the stalest records go first."""
    guard, clock = penalty(failures=1, addresses_max=3)
    for n in range(5):
        clock.now += 1
        guard.failed(f"10.0.0.{n}")
    assert len(guard) == 3
    assert guard.failures("10.0.0.0") == 0
    assert guard.failures("10.0.0.4") == 1


def test_session_limit_per_user() -> None:
    """Each user has its own quota of sessions; a released slot can be taken again."""
    limit = SessionLimit(2)
    assert limit.acquire("a") and limit.acquire("a")
    assert not limit.acquire("a")
    assert limit.acquire("b")
    limit.release("a")
    assert limit.count("a") == 1
    assert limit.acquire("a")


def test_session_released_twice_is_a_bug() -> None:
    """Releasing more sessions than were taken is an invariant violation, not a silent no-op."""
    limit = SessionLimit(1)
    with pytest.raises(AssertionError):
        limit.release("a")


def test_idle_deadline() -> None:
    """A session is idle exactly `idle_seconds` after its last request."""
    assert idle_deadline(100.0, 600) == 700.0


def test_login_slots_bound_connections_not_logged_in_per_address_and_in_all() -> None:
    slots = LoginSlots(total_max=3, per_address_max=2)
    assert slots.take("10.0.0.1") is None and slots.take("10.0.0.1") is None
    assert slots.take("10.0.0.1") == "sftp.unauthenticated_connections_per_address_max"
    assert slots.take("10.0.0.2") is None
    assert slots.take("10.0.0.3") == "sftp.unauthenticated_connections_max"
    slots.give_back("10.0.0.1")
    assert len(slots) == 2
    assert slots.take("10.0.0.3") is None and len(slots) == 3
    with pytest.raises(AssertionError):
        slots.give_back("10.0.0.9")  # never taken


def test_open_files_leave_half_the_descriptors_for_sockets() -> None:
    assert handles_total_max(4096) == (4096 - 64) // 2
    assert handles_total_max(100) == 18
    assert handles_total_max(10) == 1
    assert handles_total_max(-1) == handles_total_max(1 << 20)  # RLIM_INFINITY


def test_open_handles_bound_per_user_and_in_all() -> None:
    handles = OpenHandles(per_user_max=2, total_max=3)
    assert handles.take("a") is None and handles.take("a") is None
    assert "per user" in (handles.take("a") or "")
    assert handles.take("b") is None
    assert "server holds its limit of 3" in (handles.take("c") or "")
    handles.give_back("a")
    assert handles.take("c") is None
    assert handles.count("a") == 1 and handles.count() == 3


def test_log_throttle_says_a_key_once_per_period_and_counts_the_rest() -> None:
    clock = FakeClock()
    throttle = LogThrottle(60.0, clock, keys_max=2)
    assert throttle.allow("x") == 0
    assert throttle.allow("x") is None and throttle.allow("x") is None
    assert throttle.allow("y") == 0
    clock.now += 60
    assert throttle.allow("x") == 2


def test_a_source_is_its_address_an_ipv4_mapped_one_as_ipv4() -> None:
    """Penalties and login slots count a client by its address: an IPv4-mapped IPv6 one
    (a dual-stack listener's view of an IPv4 client) as that IPv4 address, however
    written; each IPv6 address on its own, as sshd does by default."""
    assert source_of("::ffff:192.0.2.7") == source_of("192.0.2.7") == "192.0.2.7"
    assert source_of("192.0.2.8") != source_of("192.0.2.7")
    assert source_of("2001:db8:1:2:0:0:0:1") == source_of("2001:db8:1:2::1") == "2001:db8:1:2::1"
    assert source_of("2001:db8:1:2::2") != source_of("2001:db8:1:2::1")
    assert source_of("") == ""  # no peer address (a socket pair): counted as one
