"""One SSH connection: public-key authentication, session limit, idle timeout, penalties.

The session limit counts sessions (SSH session channels, where SFTP runs), like sshd's
MaxSessions but over all of a user's connections. A connection takes one session at
login, which its first channel uses; each further channel open at once takes one more,
and gives it back when it closes. So a login over the limit is disconnected, a channel
over it is refused, and a connection holds `max(1, channels open)` of its user's sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncssh

from gateway import metrics
from gateway.authorized_keys import KeyLine
from gateway.settings import ClientSettings, UserSettings
from gateway.sftp.context import ServerContext
from gateway.sftp.guard import AUTH_ATTEMPTS_PER_CONNECTION_MAX, idle_deadline, source_of
from gateway.sftp.login_keys import LoginKeys

# A shell or command on a session channel (the server answers it and closes), and SFTP.
ProcessFactory = Callable[[asyncssh.SSHServerProcess[str]], None]
SftpFactory = asyncssh.SFTPServerFactory
SFTP_VERSION = 3


class Session(asyncssh.SSHServerProcess[str]):
    """One session channel of a logged-in connection, counted until it closes."""

    def __init__(self, owner: Connection, process: ProcessFactory, sftp: SftpFactory) -> None:
        super().__init__(process, sftp, SFTP_VERSION, False)  # False: no scp
        self._counted_by = owner

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._counted_by.session_closed()


class Connection(asyncssh.SSHServer):
    """Authentication, session limit, idle timeout and penalties for one connection."""

    def __init__(self, ctx: ServerContext, process: ProcessFactory, sftp: SftpFactory) -> None:
        self.ctx = ctx
        self.process_factory = process
        self.sftp_factory = sftp
        self.conn: asyncssh.SSHServerConnection | None = None
        self.source_ip = ""
        self.source = ""  # what penalties and login slots count by (`guard.source_of`)
        self.username = ""
        self.client: ClientSettings | None = None
        self.user: UserSettings | None = None
        self.key: asyncssh.SSHKey | None = None
        self.fingerprint = ""
        self.authenticated = False
        self.refused = False
        self.over_limit = False
        self.channels = 0  # session channels open now
        self.sessions_held = 0  # of the user's limit: max(1, channels) once logged in
        self.rejected_keys = 0
        self.login_slot = False  # holds one of `ctx.logins` until it logs in or goes
        self.last_activity = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None

    # Connection life cycle

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.source_ip = str(peer[0]) if peer else ""
        self.source = source_of(self.source_ip)
        self.ctx.connections.add(self)
        wait = self.ctx.penalty.refused_for(self.source)
        if wait > 0:
            self.refused = True
            metrics.login_refused()
            # Once a minute per address: a client retrying in a loop is not a line each time.
            self.ctx.log_refusal_once(
                self.source, "repeated authentication failures",
                retry_after_seconds=round(wait, 1),
            )  # fmt: skip
            asyncio.get_running_loop().call_soon(conn.abort)
            return
        full = self.ctx.logins.take(self.source)
        if full is not None:  # closed at once: its socket is back before the next accept
            self.refused = True
            metrics.login_refused()
            self.ctx.log_refusal_once(self.source, f"{full} reached")
            asyncio.get_running_loop().call_soon(conn.abort)
            return
        self.login_slot = True

    def _give_back_login_slot(self) -> None:
        if self.login_slot:
            self.login_slot = False
            self.ctx.logins.give_back(self.source)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ctx.connections.discard(self)
        self._give_back_login_slot()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self.authenticated:
            self._release_sessions(0)
            self.ctx.log.info(
                "sftp.logout", user=self.username, source_ip=self.source_ip,
                error=None if _left(exc) else str(exc),
            )
        elif not self.refused and not self.over_limit:
            # (A connection that ends without logging in fails, whether it named a user or
            # not, closed by the login timeout or by its client, as sshd's
            # PerSourcePenalties noauth: a flood of silent connections from an address is
            # then refused at once, its slots free.)
            penalty = self.ctx.penalty.failed(self.source)
            metrics.login_refused()
            self.ctx.log.warning(
                "sftp.auth.failed",
                user=self.username or None,
                source_ip=self.source_ip,
                known_user=self.user is not None,
                rejected_keys=self.rejected_keys,
                penalty_seconds=penalty,
            )

    # Authentication: public keys only

    def begin_auth(self, username: str) -> bool:
        assert self.conn is not None
        # A client may switch user names mid-authentication: start from nothing each time.
        self.username = username
        self.client = self.user = self.key = None
        found = self.ctx.settings.user(username)
        if found is None or self.refused:
            return True  # nothing will match; the client learns nothing about the name
        self.client, self.user = found
        try:
            text = self.user.authorized_keys.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.ctx.log.error(
                "sftp.auth.keys_unreadable", user=username, path=str(self.user.authorized_keys),
                error=str(exc),
            )
            return True
        # Read on every login (like sshd), so changed keys apply without a restart; the
        # rules that judged the file at start judge each line again, and expiry-time=
        # is read against the environment's clock.
        self.conn.set_authorized_keys(
            LoginKeys(
                text, self.user.kind, now=self.ctx.clock.now, zone=self.ctx.settings.timezone,
                on_match=self._key_matched,
                on_refused=self._key_refused, on_unreadable=self._key_line_unreadable,
            )
        )
        return True

    def _key_matched(self, key: asyncssh.SSHKey | None) -> None:
        self.key = key

    def _key_refused(self, line: KeyLine, key: asyncssh.SSHKey, why: str) -> None:
        assert self.user is not None
        self.ctx.log.warning(
            "sftp.auth.key_refused",
            user=self.username,
            source_ip=self.source_ip,
            key_fingerprint=key.get_fingerprint("sha256"),
            path=str(self.user.authorized_keys),
            line=line.line_number,
            reason=why,
        )

    def _key_line_unreadable(self, number: int, why: str) -> None:
        assert self.user is not None
        self.ctx.log.error(
            "sftp.auth.keys_unreadable", user=self.username,
            path=str(self.user.authorized_keys), line=number, error=why,
        )

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # Reached only for keys the authorized_keys file did not accept.
        self.rejected_keys += 1
        if self.rejected_keys >= AUTH_ATTEMPTS_PER_CONNECTION_MAX and self.conn is not None:
            asyncio.get_running_loop().call_soon(
                self.conn.disconnect,
                asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE,
                "Too many authentication failures",
            )
        return False

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def auth_completed(self) -> None:
        assert self.conn is not None
        if self.user is None or self.key is None or self.refused:
            # Cannot happen with public keys only; refuse rather than guess.
            self.conn.disconnect(asyncssh.DISC_BY_APPLICATION, "Not allowed")
            return
        self.fingerprint = self.key.get_fingerprint("sha256")
        if not self._take_session(at="login"):
            self.over_limit = True
            # The reason travels in the disconnect message, which OpenSSH, PuTTY/WinSCP and
            # Go's ssh show; paramiko logs it (its caller sees "Unable to open channel").
            self.conn.disconnect(asyncssh.DISC_TOO_MANY_CONNECTIONS, self._over_limit_reason())
            return
        self.authenticated = True
        self._give_back_login_slot()
        self.ctx.penalty.succeeded(self.source)
        assert self.client is not None
        self.ctx.log.info(
            "sftp.login",
            user=self.username,
            client=self.client.id,
            mode=self.user.mode,
            source_ip=self.source_ip,
            key_fingerprint=self.fingerprint,
        )
        self.touch()
        self._arm_idle_timer()

    # Sessions: the channels SFTP runs on, counted against the user's limit

    def _over_limit_reason(self) -> str:
        limit = self.ctx.settings.sftp.sessions_per_user_max
        return (
            f"Too many sessions for {self.username}: at most {limit} at once "
            "(sftp.sessions_per_user_max); close one and try again"
        )

    def _take_session(self, at: str) -> bool:
        if not self.ctx.sessions.acquire(self.username):
            metrics.login_refused()
            self.ctx.log.warning(
                "sftp.session.refused", user=self.username, source_ip=self.source_ip,
                sessions_max=self.ctx.settings.sftp.sessions_per_user_max, at=at,
                channels_open=self.channels,
            )
            return False
        self.sessions_held += 1
        metrics.sftp_session_opened()
        return True

    def _release_sessions(self, keep: int) -> None:
        while self.sessions_held > keep:
            self.ctx.sessions.release(self.username)
            self.sessions_held -= 1
            metrics.sftp_session_closed()

    def session_requested(self) -> Session:
        if not self.authenticated:  # a login over the limit, its disconnect under way
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, self._over_limit_reason()
            )
        if self.channels + 1 > self.sessions_held and not self._take_session(at="channel"):
            # Refusing the channel keeps the connection and its open sessions working;
            # the reason is the channel-open failure's text (OpenSSH: "open failed").
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, self._over_limit_reason()
            )
        self.channels += 1
        self.touch()
        return Session(self, self.process_factory, self.sftp_factory)

    def session_closed(self) -> None:
        self.channels -= 1
        assert self.channels >= 0
        if self.authenticated and self.sessions_held > 0:  # 0: the connection has ended
            self._release_sessions(max(1, self.channels))

    # Idle timeout

    def touch(self) -> None:
        self.last_activity = asyncio.get_running_loop().time()

    def _arm_idle_timer(self) -> None:
        loop = asyncio.get_running_loop()
        when = idle_deadline(self.last_activity, self.ctx.settings.sftp.idle_timeout_seconds)
        self._idle_timer = loop.call_at(when, self._idle_check)

    def _idle_check(self) -> None:
        assert self.conn is not None
        loop = asyncio.get_running_loop()
        idle = self.ctx.settings.sftp.idle_timeout_seconds
        if loop.time() >= idle_deadline(self.last_activity, idle):
            self.ctx.log.info("sftp.idle_timeout", user=self.username, source_ip=self.source_ip)
            self.conn.disconnect(asyncssh.DISC_BY_APPLICATION, f"Idle for {idle} seconds")
        else:
            self._arm_idle_timer()

    # Refused requests (asyncssh refuses these by default; stated here on purpose)

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> bool:
        return False

    def unix_connection_requested(self, dest_path: str) -> bool:
        return False

    def unix_server_requested(self, listen_path: str) -> bool:
        return False


def _left(exc: Exception | None) -> bool:
    """Whether a connection's end is its client leaving: a disconnect message, or — as
    paramiko and many other clients leave — its socket closed (reset, a write to it
    failing, or its end read: asyncssh's `ConnectionLost`). An upload it left unfinished
    is logged as such (`sftp.upload.discarded`)."""
    closed = isinstance(exc, BrokenPipeError | ConnectionResetError | asyncssh.ConnectionLost)
    return exc is None or closed
