"""Standard output whose reader went away (`ekase-gateway … | head -3`), for every command.

`cli.main` and `cli.console` use this once for all commands (SPEC §9: never a
traceback), rather than each command guarding its own prints.
"""

from __future__ import annotations

import os
import select
import signal
import sys

# The status a shell reports for a program that SIGPIPE ended (`yes | head`): a command
# whose reader went away ends as the standard tools do, without a word.
EXIT_READER_GONE = 128 + signal.SIGPIPE


def reader_gone() -> bool:
    """Whether standard output is a pipe whose reading end was closed (`| head -3`)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), 0)  # POLLERR is reported whatever is asked
        return any(event & select.POLLERR for _, event in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # no descriptor: not a pipe we write to
        return False


def leave_quietly() -> int:
    """Standard output's reader went away: what is still buffered goes nowhere.

    Python's documented pattern for SIGPIPE: point the descriptor at /dev/null, so that
    flushing at exit neither fails nor prints "Exception ignored … BrokenPipeError".
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_READER_GONE
