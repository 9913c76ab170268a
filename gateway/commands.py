"""Sub-commands contributed by other modules (daemon, demo, reports), kept out of cli.py.

Each entry takes the argparse sub-parser collection and adds its commands, with
`handler` set to a function `(args) -> exit code`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

AddCommands = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

EXTRA: list[AddCommands] = []
EXTRA.append(__import__("gateway.daemon_cli", fromlist=["add_commands"]).add_commands)
EXTRA.append(__import__("gateway.fx_cli", fromlist=["add_commands"]).add_commands)
