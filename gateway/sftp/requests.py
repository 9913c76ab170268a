"""Every SFTP request handler of a session logs what it did not expect, as a JSON line.

asyncssh answers an exception other than an SFTP or OS error with "Uncaught exception: …"
to the client and keeps it to its own debug log; `logged_failures` wraps a session's
handlers so that such an exception is logged (`sftp.request.failed`, with its traceback)
and the client told the server failed, in one place for every handler.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import asyncssh

T = TypeVar("T")
FAILED = "Internal error on the server (logged); try again or tell the gateway's operator"
# Methods of a session that are not requests (or must stay exactly as asyncssh calls them).
NOT_REQUESTS = frozenset({"format_user", "format_group", "format_longname"})


def _expected(exc: BaseException) -> bool:
    return isinstance(exc, asyncssh.SFTPError | OSError) or not isinstance(exc, Exception)


def _failed(session: Any, op: str, exc: Exception) -> asyncssh.SFTPError:
    """Logged once a minute per user, request and kind of error, with its traceback: a
    client pipelining requests that fail so could write one per 40-byte request (a
    tester)."""
    kind = type(exc).__name__
    session.ctx.log_limited(
        f"failed {session.user} {op} {kind}", "error", "sftp.request.failed", op=op,
        user=session.user, client=session.client_id, error=f"{kind}: {exc}", exc_info=exc,
    )  # fmt: skip
    return asyncssh.SFTPFailure(FAILED)


async def logged(session: Any, op: str, items: AsyncIterator[T]) -> AsyncIterator[T]:
    """`items` (a listing a handler returns) with what it did not expect logged."""
    try:
        async for item in items:
            yield item
    except Exception as exc:
        if _expected(exc):
            raise
        raise _failed(session, op, exc) from exc


def _wrap(op: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        def generate(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            return logged(self, op, fn(self, *args, **kwargs))

        return generate
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(self, *args, **kwargs)
            except Exception as exc:
                if _expected(exc):
                    raise
                raise _failed(self, op, exc) from exc

        return run

    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except Exception as exc:
            if _expected(exc):
                raise
            raise _failed(self, op, exc) from exc

    return call


def logged_failures(cls: type[T]) -> type[T]:
    """Wrap each public method `cls` defines itself (asyncssh's request handlers)."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or name in NOT_REQUESTS or not inspect.isfunction(member):
            continue
        setattr(cls, name, _wrap(name, member))
    return cls
