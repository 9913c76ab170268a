"""Sub-commands for operating the gateway: `run`, `demo`, `status`, `sshd-config`.

Added to the parser by `gateway.cli`; heavy modules are imported inside
the handlers so that `ekase-gateway --help` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.cli_common import config_arg, settings_of
from gateway.text import ascii_digits


def _tcp_port(text: str) -> int:
    port = int(text) if ascii_digits(text) and len(text) <= 5 else 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is a number from 1 to 65535, not {text!r}")
    return port


def cmd_run(args: argparse.Namespace) -> int:
    from gateway import daemon, logs

    settings = settings_of(args)
    logs.configure(settings.log_file)
    return daemon.run(settings)


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway import demo_run

    return demo_run.main(args.dir, port=args.port, run=args.run)


def cmd_status(args: argparse.Namespace) -> int:
    from gateway import status as status_module

    return status_module.main(settings_of(args), as_json=args.json)


def cmd_sshd_config(args: argparse.Namespace) -> int:
    from gateway.sftp.openssh import sshd_config_blocks

    print(sshd_config_blocks(settings_of(args)), end="")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run", help="the daemon: SFTP server, watcher and pipeline (SIGTERM: finish file, exit 0)"
    )
    config_arg(p)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("demo", help="create a demo installation (once) and optionally run it")
    p.add_argument("--dir", type=Path, default=Path("demo"), help="demo folder (default: demo)")
    p.add_argument("--port", type=_tcp_port, default=None,
                   help="SFTP port of a new demo (default 2222)")
    p.add_argument("--run", action="store_true", help="start the daemon on the demo")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("status", help="per client: waiting, in progress, processed, last answer")
    config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("sshd-config", help="print sshd_config Match blocks for OpenSSH set-ups")
    config_arg(p)
    p.set_defaults(handler=cmd_sshd_config)
