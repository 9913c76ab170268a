"""What every `ekase-gateway` sub-command module shares: the configuration argument, the
settings it names, and the environment of a command that writes (its log to stderr, so
that stdout carries only the command's own output, for people and scripts).

Light on purpose: the command modules import it at start, and heavy modules load only
inside the handlers (`ekase-gateway --help` stays fast; `scan` starts its reader first).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.settings import Settings, load

if TYPE_CHECKING:
    from gateway.environment import Environment


def config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", type=Path, required=True, help="configuration TOML")


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
