"""Exit statuses of every socklab command, in one place (httpie's ExitStatus idea)."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1  # a failure not covered below
    USAGE = 2  # bad options or arguments (argparse uses 2 as well)
    NETWORK = 3  # refused, unreachable, timed out, reset, unknown host
    PROTOCOL = 4  # the peer broke the protocol
    PERMISSION = 5  # privileged port, raw sockets, other users' processes
    ADDRESS_IN_USE = 6  # the port is taken
    NOT_CONFORMING = 7  # `socklab check`: the program under test deviates from the protocol
    NOT_FOUND = 127  # `socklab trace`: no program of that name (the shell's status for it)
    INTERRUPTED = 130  # Ctrl+C (128 + SIGINT), the shell convention
