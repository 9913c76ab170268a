"""Telling a session that asyncssh is ending it, before asyncssh closes its handles.

A client closes a file with a request; asyncssh closes every file a session left open
when the session ends — and it calls the same `close` either way. The channel's state
cannot tell them apart: asyncssh ends a session it cannot go on with while the channel
is still open (a packet too short for its request id, a length past its maximum), and
such a close was taken for the client's own: a half-written upload was published into
in/ and paid (a tester), and the close of an upload refused earlier raised its refusal,
which stopped asyncssh's clean-up, so the session's other uploads stayed held until
restart; while a client's own close sent just before its EOF was taken for asyncssh's,
discarded and answered OK (a reviewer).

asyncssh has no hook for it: its server handler's clean-up is wrapped, once, to set
`ending` on the session first (a test sends such packets: it fails if asyncssh changes).
"""

from __future__ import annotations

from typing import Any

from asyncssh import sftp


class Ending:
    """What a session needs: `ending`, set before asyncssh closes its handles."""

    ending: bool = False


def tell_sessions() -> None:
    """Wrap asyncssh's SFTP server clean-up (idempotent)."""
    handler: Any = sftp.SFTPServerHandler
    cleanup = handler._cleanup
    if getattr(cleanup, "tells_sessions", False):
        return

    async def ending_first(self: Any, exc: Exception | None) -> None:
        if isinstance(self._server, Ending):
            self._server.ending = True
        await cleanup(self, exc)

    ending_first.tells_sessions = True  # type: ignore[attr-defined]
    handler._cleanup = ending_first
