"""Running a server until Ctrl+C or SIGTERM, the same way for every command that serves.

A serving command sets `graceful_stop=True` among its parser's defaults; `main()` then runs it
with the stop signals recorded rather than raised (see `cli.stop_signals`), and the command
waits here. No KeyboardInterrupt is ever raised in a server, so there is no moment at which one
could escape: the first signal stops, the ones after it do nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from socklab.cli import stop_signals

if TYPE_CHECKING:
    # Only a type here: importing the runtimes would slow every command's start (cli.main
    # imports this module), `socklab ports` among them.
    from socklab.runtimes.handle import ServerHandle

# The main thread waits in slices: a server that ends by itself (or fails) is noticed within
# one. A stop signal ends the slice at once through the wake-up descriptor, whichever thread
# the OS delivered it to.
_WAIT_SLICE_S = 0.5


def wait_until_stopped(handle: ServerHandle, announce: Callable[[], None] | None = None) -> None:
    """Announce the running server, block until a stop signal or its own end, stop it cleanly.

    A signal that came before (during start-up, or while the "listening on" lines were being
    written: scripts send SIGTERM as soon as they read them) stops it as soon as the wait
    begins. A failure of the server is raised by `stop()`.
    """
    try:
        if announce is not None:
            announce()
        while handle.is_running and not stop_signals.wait_for_stop(_WAIT_SLICE_S):
            pass
    finally:
        handle.stop()
