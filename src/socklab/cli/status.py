"""Exit statuses of every socklab command, in one place (httpie's ExitStatus idea).

`exit_status_table()` is the one table of what each status means: `socklab --help` prints it as
its epilog, and a test keeps the table of README.md ("Exit statuses") equal to it.
"""

from __future__ import annotations

import enum

from socklab.i18n import _


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


def exit_status_table() -> dict[ExitStatus, str]:
    """Every exit status and its meaning in the current language, in numeric order.

    A status added without a meaning shows its name (and tests/cli/test_shell.py fails) rather
    than break every command's parser.
    """
    meanings = explained_exit_statuses()
    return {status: meanings.get(status, status.name) for status in sorted(ExitStatus)}


def explained_exit_statuses() -> dict[ExitStatus, str]:
    """The statuses that have a sentence of their own."""
    return {
        ExitStatus.OK: _("success (a server stopped with Ctrl+C or SIGTERM exits 0 as well)"),
        ExitStatus.ERROR: _("a request or check failed (an E: reply, for one), or another error"),
        ExitStatus.USAGE: _("bad options or arguments"),
        ExitStatus.NETWORK: _(
            "no connection: refused, unreachable, timed out, reset, unknown host"
        ),
        ExitStatus.PROTOCOL: _("the peer broke the protocol"),
        ExitStatus.PERMISSION: _("permission denied (a privileged port, raw sockets)"),
        ExitStatus.ADDRESS_IN_USE: _("the port is in use"),
        ExitStatus.NOT_CONFORMING: _("socklab check: the program under test deviates"),
        ExitStatus.NOT_FOUND: _(
            "socklab trace: no program of that name (otherwise trace exits with the program's status)"
        ),
        ExitStatus.INTERRUPTED: _("interrupted by Ctrl+C"),
    }
