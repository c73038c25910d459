"""The `socklab` console script (and `python -m socklab`): stop signals first, then the CLI.

The stop-signal handler is installed before the CLI is imported: importing it takes ~130 ms,
during which SIGTERM would otherwise kill the process and Ctrl+C print a traceback. It is never
removed: once the command is over, stop signals are ignored until the process has exited, as
a signal in between must not kill it (see `cli.stop_signals`).
"""

from __future__ import annotations

import contextlib
import sys

from socklab.cli import stop_signals


def console_main() -> None:
    stop_signals.install()
    from socklab.cli.main import main

    status = main()
    stop_signals.ignore_from_now_on()
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    sys.exit(int(status))
