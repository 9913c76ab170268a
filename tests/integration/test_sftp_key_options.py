"""authorized_keys lines changed while the built-in server runs (SPEC §4), driven by paramiko:
the file is read again at every login, and each line must pass the rules the configuration
passed at start."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import paramiko
import pytest

from gateway.clock import FixedClock
from tests.integration.sftp_fixtures import (
    RunningServer,
    paramiko_connect,
    running_server,
    wait_for,
)


def _keys_file(server: RunningServer, user: str) -> Path:
    found = server.settings.user(user)
    assert found is not None
    return found[1].authorized_keys


def _append(server: RunningServer, user: str, line: str) -> int:
    """Add a line to the user's authorized_keys as an operator would; its line number."""
    path = _keys_file(server, user)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return len(path.read_text(encoding="utf-8").splitlines())


def _public(server: RunningServer, key: str) -> str:
    return server.keys[key].with_suffix(".pub").read_text(encoding="utf-8").strip()


def _fingerprint(server: RunningServer, key: str) -> str:
    return asyncssh.read_public_key(server.keys[key].with_suffix(".pub")).get_fingerprint("sha256")


def _logs_in(server: RunningServer, user: str, key: str, source: str = "127.0.0.1") -> bool:
    try:
        transport = paramiko_connect(server, user, key, source=source)
    except paramiko.AuthenticationException:
        return False
    authenticated = transport.is_authenticated()
    transport.close()
    return authenticated


def _first_refusal(
    server: RunningServer, user: str, line: int, why: str, *, attempts: int
) -> dict[str, object]:
    """The first of `attempts` logged refusals: the stranger's key on `line` of `user`'s
    file, refused for a reason that says `why`."""
    assert wait_for(lambda: len(server.log.named("sftp.auth.key_refused")) == attempts)
    refused = server.log.named("sftp.auth.key_refused")[0]
    assert refused["user"] == user
    assert refused["key_fingerprint"] == _fingerprint(server, "stranger")
    assert refused["line"] == line
    assert why in str(refused["reason"])
    return refused


def test_system_key_added_without_from_is_refused_at_login(server: RunningServer) -> None:
    """A plain key appended to a system user's file while the server runs does not log in
    from anywhere (SPEC §4: every system key carries from=); the refusal names the user,
    the key and why; the user's own key still logs in."""
    line = _append(server, "alpha-erp", _public(server, "stranger"))
    assert not _logs_in(server, "alpha-erp", "stranger")
    assert not _logs_in(server, "alpha-erp", "stranger", source="127.0.0.2")
    refused = _first_refusal(server, "alpha-erp", line, 'from="', attempts=2)
    assert refused["path"] == str(_keys_file(server, "alpha-erp"))
    assert not any(event["user"] == "alpha-erp" and event["key_fingerprint"]
                   == _fingerprint(server, "stranger") for event in server.log.named("sftp.login"))
    assert _logs_in(server, "alpha-erp", "alpha")


def test_system_key_added_with_from_logs_in_from_there_only(server: RunningServer) -> None:
    """A key added with from= works at once, from the allowed address only; the refusal
    from elsewhere is logged with why (below)."""
    line = _append(server, "alpha-erp", f'from="127.0.0.1" {_public(server, "stranger")}')
    assert _logs_in(server, "alpha-erp", "stranger")
    assert not _logs_in(server, "alpha-erp", "stranger", source="127.0.0.2")
    refused = _first_refusal(server, "alpha-erp", line, "127.0.0.2", attempts=1)
    assert refused["source_ip"] == "127.0.0.2"


def test_key_refused_by_from_says_so_with_the_address_and_line(server: RunningServer) -> None:
    """A key whose from= does not allow the client's address is refused and the log says so
    (sftp.auth.key_refused naming the address, the pattern and the line), as for every other
    refusal: the operator can tell an address restriction from a key that is not in the file,
    which logs no refusal."""
    stranger = _public(server, "stranger")
    line = _append(server, "alpha-erp", f'from="127.0.0.2,10.0.0.0/8" {stranger}')
    assert not _logs_in(server, "alpha-erp", "stranger", source="127.0.0.1")
    refused = _first_refusal(
        server, "alpha-erp", line,
        'the address 127.0.0.1 is not allowed by from="127.0.0.2,10.0.0.0/8"', attempts=1,
    )
    assert refused["path"] == str(_keys_file(server, "alpha-erp"))
    assert not _logs_in(server, "beta-erp", "stranger")  # not in beta-erp's file
    assert _logs_in(server, "alpha-erp", "stranger", source="127.0.0.2")
    assert len(server.log.named("sftp.auth.key_refused")) == 1


def test_person_key_added_without_from_logs_in(server: RunningServer) -> None:
    """from= is mandatory for system users only: a person's new key works from anywhere."""
    _append(server, "alpha-view", _public(server, "stranger"))
    assert _logs_in(server, "alpha-view", "stranger", source="127.0.0.2")


def test_option_names_in_capitals_are_enforced(server: RunningServer) -> None:
    """OpenSSH reads option names in any case: `FROM="127.0.0.2"` limits the key to that
    address (asyncssh alone would ignore the option and let the key in from anywhere)."""
    _append(server, "alpha-erp", f'FROM="127.0.0.2" {_public(server, "stranger")}')
    assert not _logs_in(server, "alpha-erp", "stranger", source="127.0.0.1")
    assert _logs_in(server, "alpha-erp", "stranger", source="127.0.0.2")


def test_unreadable_line_does_not_lock_out_the_others(server: RunningServer) -> None:
    """A broken line added while running is logged and skipped; the good keys still work."""
    line = _append(server, "alpha-erp", "this is not a key")
    assert _logs_in(server, "alpha-erp", "alpha")
    unreadable = server.log.named("sftp.auth.keys_unreadable")
    assert [event["line"] for event in unreadable] == [line]


# expiry-time= (SPEC §4: options are honoured; asyncssh alone ignores this one)

# 21:30 UTC is 23:30 in Riga, the gateway's time zone (the configuration's default).
NOW = dt.datetime(2030, 1, 1, 21, 30, tzinfo=dt.UTC)


@pytest.fixture
def clocked(tmp_path: Path, keys: dict[str, Path]) -> Iterator[tuple[RunningServer, FixedClock]]:
    clock = FixedClock(NOW)
    with running_server(
        tmp_path / "gw", keys, clock=clock, auth_failures_before_penalty=50
    ) as running:
        yield running, clock


@pytest.mark.parametrize("expiry", ["20200101", "199901010000", "203001012300"])
def test_expired_key_is_refused_and_logged(
    clocked: tuple[RunningServer, FixedClock], expiry: str
) -> None:
    """A key past its expiry-time (local time: 23:00 in Riga has passed at 23:30) does not
    log in; the refusal names the user, the key and the time; other keys still log in."""
    server, _ = clocked
    line = _append(server, "alpha-view", f'expiry-time="{expiry}" {_public(server, "stranger")}')
    assert not _logs_in(server, "alpha-view", "stranger")
    _first_refusal(server, "alpha-view", line, "expired", attempts=1)
    assert _logs_in(server, "alpha-view", "alpha-view")


def test_key_logs_in_until_its_expiry_time_on_the_gateways_clock(
    clocked: tuple[RunningServer, FixedClock],
) -> None:
    """The time is the environment's clock's: the same key logs in before its expiry-time
    (23:00 Z has not come at 21:30 UTC) and is refused once the clock passes it."""
    server, clock = clocked
    _append(server, "alpha-erp",
            f'from="127.0.0.1",expiry-time="203001012300Z" {_public(server, "stranger")}')
    assert _logs_in(server, "alpha-erp", "stranger")
    clock.advance(dt.timedelta(minutes=90))  # 23:00 Z: not after it yet
    assert _logs_in(server, "alpha-erp", "stranger")
    clock.advance(dt.timedelta(seconds=1))
    assert not _logs_in(server, "alpha-erp", "stranger")
    assert [event["reason"] for event in server.log.named("sftp.auth.key_refused")] == [
        "the key expired at 2030-01-01T23:00:00+00:00 (expiry-time)"
    ]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ('form="127.0.0.2"', 'unknown option "form"'),
        ("verify-required", '"verify-required" is not enforced'),
        ('expiry-time="2030-01-01"', "expiry-time"),
        ('from="127.0.0.1/33"', "/0 to /32"),
    ],
)
def test_option_that_would_be_ignored_refuses_the_key_at_login(
    server: RunningServer, options: str, words: str
) -> None:
    """An option the start-up check refuses, added while running, refuses the key at login:
    a misspelt from= no longer leaves the key open to every address."""
    _append(server, "alpha-view", f"{options} {_public(server, 'stranger')}")
    assert not _logs_in(server, "alpha-view", "stranger")
    assert wait_for(lambda: len(server.log.named("sftp.auth.key_refused")) == 1)
    assert words in server.log.named("sftp.auth.key_refused")[0]["reason"]


def test_forced_command_leaves_the_key_without_sftp(server: RunningServer) -> None:
    """command= is forced as OpenSSH forces it (README): this server runs no commands, so a
    key carrying one logs in but gets no SFTP session, rather than one unrestricted."""
    _append(server, "alpha-view", f'command="internal-sftp" {_public(server, "stranger")}')
    transport = paramiko_connect(server, "alpha-view", "stranger")
    try:
        # The server closes the channel: paramiko says so in one of three ways, by how far
        # its SFTP handshake got when the close arrived.
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):
            paramiko.SFTPClient.from_transport(transport)
    finally:
        transport.close()
