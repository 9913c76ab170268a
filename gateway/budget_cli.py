"""The budget summary command (SPEC §12):

    ekase-gateway summary -c CONFIG --client ID --from D --to D

writes the client's revenue and expenditure summary for the period into its `out/`
(sealed, like every answer) and prints its file name. Asked for before the period is
over, it says the balance so far, and the daemon's monthly run still writes the final
one (`budget_summary.is_final`). Registered in `cli.main`;
heavy modules load inside the handler.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from gateway.errors import UsageError


def _date(option: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{option} {text}: expected YYYY-MM-DD") from exc


def cmd_summary(args: argparse.Namespace) -> int:
    from gateway import logs
    from gateway.environment import open_environment
    from gateway.outbound import budget_summary
    from gateway.settings import load

    start, end = _date("--from", args.start), _date("--to", args.end)
    settings = load(args.config)
    logs.configure(settings.log_file, stream=sys.stderr)
    env = open_environment(settings, need_sealer=True)
    try:
        name = budget_summary.write_summary(env, args.client, start, end)
    finally:
        env.close()
    print(name)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "summary", help="write a client's revenue and expenditure summary by budget code (CSV)"
    )
    p.add_argument("-c", "--config", type=Path, required=True, help="configuration TOML")
    p.add_argument("--client", required=True, help="client id")
    p.add_argument("--from", dest="start", required=True, help="first day YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, help="last day YYYY-MM-DD")
    p.set_defaults(handler=cmd_summary)
