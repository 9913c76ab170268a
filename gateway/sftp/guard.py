"""Limits of the SFTP front door, as small pure classes with the clock injected.

`AuthPenalty` remembers, per source address, how many connections ended
without authenticating. Below `failures_before_penalty` nothing happens; from
then on the address is refused outright for a period that doubles with every
further failure (1 s, 2 s, 4 s, …) up to `penalty_seconds_max`. An address
that stays quiet for twice the longest penalty is forgotten, and at most
`addresses_max` addresses are remembered (the stalest is dropped first), so a
scan from many addresses cannot grow memory without bound.

`SessionLimit` counts sessions (SSH session channels) per user over all the
user's connections; `connection.Connection` takes and gives back the slots. A
slot is taken only after authentication, so nobody without a key can lock a
user out.

`LoginSlots` bounds the connections that have not logged in yet, in all and per
source address (sshd's MaxStartups and PerSourceMaxStartups): every connection holds
a socket from its accept to its login or its login timeout, so connections that never
log in would otherwise use up the daemon's file descriptors, and every client's
uploads with them, without a key and before `from=` is ever looked at.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# Like OpenSSH's MaxAuthTries: keys a client may offer on one connection.
AUTH_ATTEMPTS_PER_CONNECTION_MAX = 6


@dataclass(frozen=True, slots=True)
class PenaltyPolicy:
    failures_before_penalty: int
    penalty_seconds_max: float
    penalty_seconds_first: float = 1.0
    addresses_max: int = 10_000

    def __post_init__(self) -> None:
        assert self.failures_before_penalty >= 1
        assert 0 < self.penalty_seconds_first <= self.penalty_seconds_max
        assert self.addresses_max >= 1


@dataclass(slots=True)
class _Record:
    failures: int
    last_failure: float
    refused_until: float


def source_of(address: str) -> str:
    """What failed logins are penalised and login slots counted by: the address, an
    IPv4-mapped IPv6 one as the IPv4 address it is. Each IPv6 address on its own, as
    sshd counts by default (`PerSourceNetBlockSize 32:128`): a /64 is often a whole
    server network, where one client's retry loop would hold out every other."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class AuthPenalty:
    """Refuses, for a growing period, source addresses that keep failing to log in."""

    def __init__(self, policy: PenaltyPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def _current(self, address: str) -> _Record | None:
        record = self._records.get(address)
        if record is None:
            return None
        if self._clock() - record.last_failure > 2 * self._policy.penalty_seconds_max:
            del self._records[address]
            return None
        return record

    def penalty_seconds(self, failures: int) -> float:
        """How long an address with this many failures is refused after the last one."""
        over = failures - self._policy.failures_before_penalty
        if over < 0:
            return 0.0
        # Cap the exponent too, so a long attack cannot overflow the float.
        seconds = self._policy.penalty_seconds_first * 2.0 ** min(over, 62)
        return min(seconds, self._policy.penalty_seconds_max)

    def refused_for(self, address: str) -> float:
        """Seconds this address must still wait; 0.0 means it may connect."""
        record = self._current(address)
        if record is None:
            return 0.0
        return max(0.0, record.refused_until - self._clock())

    def failed(self, address: str) -> float:
        """Record a connection that ended without logging in; return the penalty now in force."""
        now = self._clock()
        record = self._current(address)
        if record is None:
            record = _Record(failures=0, last_failure=now, refused_until=now)
            self._records[address] = record
            while len(self._records) > self._policy.addresses_max:
                self._records.popitem(last=False)
        record.failures += 1
        record.last_failure = now
        self._records.move_to_end(address)
        penalty = self.penalty_seconds(record.failures)
        record.refused_until = now + penalty
        return penalty

    def succeeded(self, address: str) -> None:
        """A login from this address worked: forget its failures."""
        self._records.pop(address, None)

    def failures(self, address: str) -> int:
        record = self._current(address)
        return record.failures if record else 0

    def __len__(self) -> int:
        return len(self._records)


class SessionLimit:
    """At most `per_user_max` concurrent sessions for each user."""

    def __init__(self, per_user_max: int) -> None:
        assert per_user_max >= 1
        self._max = per_user_max
        self._counts: dict[str, int] = {}

    def acquire(self, user: str) -> bool:
        count = self._counts.get(user, 0)
        if count >= self._max:
            return False
        self._counts[user] = count + 1
        return True

    def release(self, user: str) -> None:
        count = self._counts.get(user, 0)
        assert count > 0, f"session of {user!r} released twice"
        if count == 1:
            del self._counts[user]
        else:
            self._counts[user] = count - 1

    def count(self, user: str) -> int:
        return self._counts.get(user, 0)


class Slots:
    """At most `total_max` held in all and `per_key_max` by one key (a source address, a
    user); `take` says which bound it would pass (`over_total`, `over_key`)."""

    def __init__(self, total_max: int, per_key_max: int, over_total: str, over_key: str) -> None:
        assert total_max >= 1 and per_key_max >= 1
        self.total_max, self.per_key_max = total_max, per_key_max
        self._over_total, self._over_key = over_total, over_key
        self._counts: dict[str, int] = {}
        self._total = 0

    def take(self, key: str) -> str | None:
        """One more for `key`, or why not."""
        if self._total >= self.total_max:
            return self._over_total
        count = self._counts.get(key, 0)
        if count >= self.per_key_max:
            return self._over_key
        self._counts[key] = count + 1
        self._total += 1
        return None

    def give_back(self, key: str) -> None:
        count = self._counts.get(key, 0)
        assert count > 0 and self._total > 0, f"a slot of {key!r} given back twice"
        if count == 1:
            del self._counts[key]
        else:
            self._counts[key] = count - 1
        self._total -= 1

    def count(self, key: str | None = None) -> int:
        return self._total if key is None else self._counts.get(key, 0)

    def __len__(self) -> int:
        return self._total


def LoginSlots(total_max: int, per_address_max: int) -> Slots:
    """At most `total_max` connections not logged in yet, `per_address_max` of them from one
    source address; `take` names the limit's configuration key."""
    return Slots(total_max, per_address_max, "sftp.unauthenticated_connections_max",
                 "sftp.unauthenticated_connections_per_address_max")  # fmt: skip


def idle_deadline(last_activity: float, idle_seconds: float) -> float:
    """When a session last active at `last_activity` becomes idle."""
    return last_activity + idle_seconds


# Open files (SFTP handles: a descriptor each) one user may hold over all its sessions: a
# tool's sessions together are enough for it, and one user cannot starve the others.
HANDLES_PER_USER_MAX = 256
# Descriptors the process keeps for itself beyond its sockets: the listening socket, the
# database's connections, the workers' pipes, the log file, the watcher, and the files an
# upload's close reads (its hash) and writes (its receipt).
DESCRIPTORS_RESERVED = 64
DESCRIPTORS_ASSUMED_MAX = 1 << 20  # for an unlimited RLIMIT_NOFILE


def handles_total_max(nofile_soft: int) -> int:
    """Open files all SFTP sessions together may hold in a process allowed `nofile_soft`
    descriptors: half of those beyond the reserve, the other half left for the sockets of
    the connections (logged in or not), so that accept() never runs out."""
    if nofile_soft < 0 or nofile_soft > DESCRIPTORS_ASSUMED_MAX:  # RLIM_INFINITY
        nofile_soft = DESCRIPTORS_ASSUMED_MAX
    return max(1, (nofile_soft - DESCRIPTORS_RESERVED) // 2)


def OpenHandles(per_user_max: int, total_max: int) -> Slots:
    """At most `per_user_max` open files per user over all its sessions, and `total_max` in
    all (`handles_total_max`); `take` says why not in a sentence for the client."""
    return Slots(
        total_max, per_user_max,
        f"the server holds its limit of {total_max} open files; try again shortly",
        f"at most {per_user_max} open files per user over all its sessions",
    )  # fmt: skip


class LogThrottle:
    """At most one log line per `seconds` for each key (an address, a limit, a kind of
    error): a flood is said once a minute, not once per event."""

    def __init__(
        self, seconds: float, clock: Callable[[], float], keys_max: int = 10_000
    ) -> None:
        assert seconds > 0 and keys_max >= 1
        self.seconds = seconds
        self._clock = clock
        self._keys_max = keys_max
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """None: stay silent; else the number of lines held back since the last one."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.seconds:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        if key not in self._last and len(self._last) >= self._keys_max:
            self._last.clear()
            self._suppressed.clear()
        self._last[key] = now
        return self._suppressed.pop(key, 0)
