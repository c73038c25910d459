"""Running a server until Ctrl+C or SIGTERM, the same way for every command that serves."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from socklab.runtimes.handle import ServerHandle

# On POSIX a signal (Ctrl+C, SIGTERM) interrupts a wait on a lock, so the main thread can sleep
# until the server stops: a busy server's loop thread then never hands the interpreter over to
# it. Windows delivers Ctrl+C only between waits, so there the wait is cut into short ones.
_INTERRUPTIBLE_WAIT_S = 0.5 if sys.platform == "win32" else None


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt like Ctrl+C, so one path stops cleanly."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_until_interrupted(
    handle: ServerHandle, announce: Callable[[], None] | None = None
) -> None:
    """Announce the running server, block until it stops or the user interrupts, stop it cleanly.

    The announcement (the "listening on" lines) runs inside the same guard as the wait: scripts
    send SIGTERM as soon as they read the readiness line, and that signal must stop the server
    cleanly, not escape as an interrupted command.
    """
    try:
        if announce is not None:
            announce()
        while not handle.wait(_INTERRUPTIBLE_WAIT_S):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
