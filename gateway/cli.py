"""The `ekase-gateway` command. Usage and configuration errors: exit 2 and one line."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway import heap, stdout_gone
from gateway.cli_common import actions, config_arg, day_of, environment, settings_of
from gateway.errors import ConfigError, GatewayError, SealError, UsageError
from gateway.files import stop_syncing
from gateway.text import time_of_day

Handler = Callable[[argparse.Namespace], int]
PROG = "ekase-gateway"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # `main` puts the program's name in front: name only the sub-command here.
        command = self.prog.removeprefix(PROG).strip()
        raise UsageError(f"{command}: {message}" if command else message)


class _Version(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked for (reading
    the package metadata costs every other command its start-up time)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version(PROG)
        except PackageNotFoundError:
            number = "unknown (not installed)"
        print(f"{PROG} {number}")
        parser.exit(0)


# -- commands ------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from gateway.db_schema import schema_revisions

    env = environment(args)
    url = env.settings.database_url.split("@")[-1]
    print(f"database ready: {url} ({schema_revisions(env.engine)})")
    env.close()
    return 0


def _log_if_ours(exc: BaseException, event: str) -> None:
    """Log `exc` at error level as `event` if it is a fault of ours (not the
    configuration's: a wrong `database_url`)."""
    import structlog

    from gateway import faults
    from gateway.filerun import fault_of_ours  # here: the pipeline is heavy to import

    if fault_of_ours(exc) and faults.wrong_database_url(exc) is None:
        structlog.get_logger("gateway.faults").error(
            event, kind=faults.kind(exc), error=faults.describe(exc.__cause__ or exc)
        )


def cmd_scan(args: argparse.Namespace) -> int:
    if not args.once:
        raise UsageError("scan needs --once (use `run` for the daemon)")
    from gateway import readahead
    from gateway.clock import SystemClock

    # The first file is claimed and its reading started before the database layer is
    # imported: the child parses while this process loads the rest (`readahead`).
    settings = settings_of(args)
    first = readahead.start(settings, SystemClock().now())
    try:
        from gateway.pipeline import Pipeline

        env = None
        try:
            env = environment(args, need_sealer=True, settings=settings)
            result = Pipeline(env).run_once(first)
        except Exception as exc:
            # A key or certificate a start cannot open is the configuration's: `main`'s one
            # line says it. What stopped a run waits for the next one.
            if env is not None or not isinstance(exc, SealError):
                _log_if_ours(exc, "scan.fault")
            raise
        finally:
            if env is not None:
                env.close()
    finally:
        if first is not None:
            first.release()
    print(result.summary())
    return 0


def cmd_eod(args: argparse.Namespace) -> int:
    from gateway.outbound import statements
    from ledger import calendar

    env = environment(args, need_sealer=True)
    try:
        day = day_of("--date", args.date) if args.date else env.local_now().date()
        named = f"--date {day}" if args.date else f"today ({day})"
        if day > env.local_now().date():  # a weekend's too: exit 0 said it was done
            raise UsageError(f"{named} is in the future: statements are for days that are over")
        if not calendar.is_business_day(day):
            # A day asked for before the accounts' first business day is refused as any is;
            # today on a weekend (a timer's run) just says so.
            refused = statements.eod_refusal(env, day) if args.date else None
            if refused is not None:
                raise UsageError(f"{named}: {refused}")
            print(f"{day} is not a business day: no statements written")
            return 0
        if not statements.day_closed(env, day):
            raise UsageError(
                f"{named}: the day is not over; statements are written after "
                f"{time_of_day(env.settings.eod_time)}" + ("" if args.date else " (or give --date)")
            )
        # Statements are numbered in date order and each opens where the previous one
        # closed (SPEC §8): a day before the accounts' first business day, before a day
        # already stated, or after an unstated day with movement, is refused before
        # anything is written.
        refused = statements.eod_refusal(env, day)
        if refused is not None:
            raise UsageError(f"{named}: {refused}")
        results = statements.write_statements(env, day)
        late = statements.pending_due_by(env, day)
    finally:
        env.close()
    written = [r for r in results if r.written]
    for r in results:
        print(f"{r.iban} {day}: {r.file_name if r.written else 'nothing written (' + r.why + ')'}")
    print(f"{len(written)} statement(s) written for {day}")
    if late:  # (a day stated while the daemon was down: its due payments did not run)
        print(
            f"ekase-gateway: note: {late} payment(s) due by {day} still pending (not run, or "
            "waiting for a rate or a large-payment day): booked, and stated, the day they run",
            file=sys.stderr,
        )
    # Another process stated a later day, or booked on an unstated one, between the
    # check and the writing.
    late = any(r.refusal in statements.ORDER_REFUSALS for r in results)
    return 2 if late else 0


def cmd_report(args: argparse.Namespace) -> int:
    from gateway.funding import iban_argument
    from gateway.outbound import reports

    env = environment(args, need_sealer=True)
    try:
        name = reports.intraday_report(env, iban_argument(args.iban))
    finally:
        env.close()
    print(name)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from gateway.clock import SystemClock
    from gateway.verify_command import run_verify, trust_anchors

    anchors = trust_anchors(args.cert or [], args.config)
    code, line = run_verify(args.file, anchors, SystemClock().now())
    if code == 2:  # the command could not judge: a usage error, on stderr
        raise UsageError(line)
    print(line)
    return code


def cmd_sign(args: argparse.Namespace) -> int:
    from gateway.clock import SystemClock
    from gateway.sign_command import run_sign

    code, line = run_sign(args.file, args.key, args.cert, args.out, SystemClock().now())
    print(line)
    return code


def cmd_keys_init(args: argparse.Namespace) -> int:
    from gateway import installation
    from gateway.clock import SystemClock
    from gateway.environment import load_sealer
    from gateway.keys import host_public_key, init_host_key, init_signing_key, known_hosts_line

    settings = settings_of(args)
    installation.check_user(settings.spool_dir)  # keys root made the service could not read
    made = init_signing_key(
        settings.signing.key, settings.signing.certificate, now=SystemClock().now()
    )
    load_sealer(settings, SystemClock().now)  # a key and certificate that do not go together
    said = made.value.format(cert=settings.signing.certificate)
    print(f"signing key {settings.signing.key}: {said}")
    host_key = settings.sftp.host_key
    said = "already present" if host_key.exists() else "created"
    print(f"SFTP host key {host_key}: {said}, {init_host_key(host_key)}")
    line = known_hosts_line(settings.sftp.host, settings.sftp.port, host_public_key(host_key))
    print(f"for the clients' known_hosts (the built-in server's key): {line}")
    return 0


# -- the parser ------------------------------------------------------------------------------


def build_parser(extra: Sequence[Callable[[argparse._SubParsersAction], None]] = ()) -> _Parser:  # type: ignore[type-arg]
    parser = _Parser(prog=PROG, description=__doc__)
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("scan", help="process everything waiting and what has fallen due, then exit")
    config_arg(p)
    p.add_argument("--once", action="store_true", help="one pass, then exit (required)")
    p.set_defaults(handler=cmd_scan)

    db = actions(sub, "db", "database: upgrade")
    q = db.add_parser("upgrade", help="create or upgrade the schema (Alembic)")
    config_arg(q)
    q.set_defaults(handler=cmd_db_upgrade)

    p = sub.add_parser("eod", help="write end-of-day camt.053 statements for a business day")
    config_arg(p)
    p.add_argument("--date", help="business day YYYY-MM-DD (default: today)")
    p.set_defaults(handler=cmd_eod)

    p = sub.add_parser("report", help="write an intraday camt.052 report for an account")
    config_arg(p)
    p.add_argument("--iban", required=True)
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser(
        "verify", help="check a file against its .sig seal (needs --cert or -c CONFIG)"
    )
    p.add_argument("file", type=Path)
    p.add_argument(
        "--cert",
        type=Path,
        action="append",
        help="trusted gateway certificate (PEM); repeat for current and next during a rollover",
    )
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        help="trust the configured [signing] certificate and next_certificate (read only)",
    )
    p.set_defaults(handler=cmd_verify)

    p = sub.add_parser("sign", help="sign a batch as a signatory: an ASiC-E container (§11)")
    p.add_argument("file", type=Path, help="the batch, or a container to add a signature to")
    p.add_argument("--key", type=Path, required=True, help="the signatory's private key (PEM)")
    p.add_argument("--cert", type=Path, required=True, help="the signatory's certificate (PEM)")
    p.add_argument("--out", type=Path, help="the container to write (default: FILE as .asice)")
    p.set_defaults(handler=cmd_sign)

    keys = actions(sub, "keys", "keys: init")
    q = keys.add_parser("init", help="create the signing key, certificate and SSH host key")
    config_arg(q)
    q.set_defaults(handler=cmd_keys_init)

    for add in extra:
        add(sub)
    return parser


def console() -> int:
    """The `ekase-gateway` program: `main` in a process of its own."""
    code = main(own_process=True)
    stop_syncing()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = stdout_gone.leave_quietly()
    except OSError:
        pass  # the output was the command's only product, and it is lost either way
    if threading.active_count() == 1:
        # Leave without taking the heap apart object by object: after a big file that
        # is a large part of a scan. What must outlive the process is written by now — the
        # database is closed, the spool fsynced, the log file flushed line by line —
        # and only standard error is still buffered.
        with contextlib.suppress(OSError):
            sys.stderr.flush()
        os._exit(code)
    return code


# What the server says when the configured URL names a database or a user it does not
# have, or a password it refuses: a mistake in the configuration (exit 2, which the unit
# does not restart), not an outage (exit 1, restarted until the server is back).
def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    try:
        from gateway import budget_cli, daemon_cli, fx_cli, ledger_cli

        commands = [
            ledger_cli.add_commands, daemon_cli.add_commands, fx_cli.add_commands,
            budget_cli.add_commands,
        ]
        args = build_parser(commands).parse_args(argv)
        if own_process:  # not when a test calls `main` in its own process
            heap.settle()
        handler: Handler = args.handler
        return handler(args)
    except (ConfigError, UsageError, SealError) as exc:
        print(f"ekase-gateway: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"ekase-gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if isinstance(exc, BrokenPipeError) and stdout_gone.reader_gone():  # `… | head`
            return stdout_gone.leave_quietly()
        # SQLAlchemy is imported only by the commands that use a database.
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            from gateway.faults import wrong_database_url

            wrong = wrong_database_url(exc)
            if wrong is not None:  # the configuration's mistake: no restart
                print(f"ekase-gateway: gateway.database_url: {wrong}", file=sys.stderr)
                return 2
            said = " ".join(str(exc.orig).split())
            print(f"ekase-gateway: database unavailable: {said}", file=sys.stderr)
            return 1
        from gateway.filerun import fault_of_ours

        if fault_of_ours(exc):  # the disk full, an I/O error: retried by the next run
            print(f"ekase-gateway: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(console())
