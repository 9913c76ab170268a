"""What every `ekase-gateway` sub-command module shares: the configuration argument, the
settings it names, and the environment of a command that writes (its log to stderr, so
that stdout carries only the command's own output, for people and scripts).

Light on purpose: the command modules import it at start, and heavy modules load only
inside the handlers (`ekase-gateway --help` stays fast; `scan` starts its reader first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import UsageError
from gateway.settings import Settings, load

if TYPE_CHECKING:
    from gateway.environment import Environment


def config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", type=Path, required=True, help="configuration TOML")


def actions(
    sub: argparse._SubParsersAction[Any], name: str, helptext: str
) -> argparse._SubParsersAction[Any]:
    """A command made of actions (`ledger fund`, `rates import` …): one of them required."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=helptext)
    group = parser.add_subparsers(
        dest=f"{name}_command", metavar="ACTION", parser_class=type(parser)
    )
    group.required = True
    return group


def day_of(option: str, text: str) -> dt.date:
    """A day given on the command line (`--date`, `--from` …), or a usage error naming it."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{option} {text}: expected YYYY-MM-DD") from exc


def settings_of(args: argparse.Namespace) -> Settings:
    return load(args.config)


def environment(
    args: argparse.Namespace, *, need_sealer: bool = False, settings: Settings | None = None
) -> Environment:
    """The environment of a command that writes; its log lines go to stderr (and the log
    file)."""
    from gateway import logs
    from gateway.environment import open_environment

    settings = settings or settings_of(args)
    logs.configure(settings.log_file, stream=sys.stderr)
    return open_environment(settings, need_sealer=need_sealer)
