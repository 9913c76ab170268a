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

from gateway.cli_common import config_arg, day_of, environment


def cmd_summary(args: argparse.Namespace) -> int:
    from gateway.outbound import budget_summary

    start, end = day_of("--from", args.start), day_of("--to", args.end)
    env = environment(args, need_sealer=True)
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
    config_arg(p)
    p.add_argument("--client", required=True, help="client id")
    p.add_argument("--from", dest="start", required=True, help="first day YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, help="last day YYYY-MM-DD")
    p.set_defaults(handler=cmd_summary)
