"""Running a server until Ctrl+C or SIGTERM, the same way for every command that serves."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only a type here: importing the runtimes would slow every command's start (cli.main
    # imports this module), `socklab ports` among them.
    from socklab.runtimes.handle import ServerHandle

# The main thread waits in short slices. A Python signal handler runs only in the main thread,
# but the OS may deliver Ctrl+C or SIGTERM to another thread of the process (Linux does when
# the main thread already has one pending): a wait with no timeout then never ends. It did in
# 2 of 40 tries of SIGINT + SIGTERM 1 ms apart under load. Windows needs the slices anyway.
_WAIT_SLICE_S = 0.5


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
    with _interrupted_once():
        try:
            if announce is not None:
                announce()
            while not handle.wait(_WAIT_SLICE_S):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            handle.stop()


@contextlib.contextmanager
def _interrupted_once() -> Iterator[None]:
    """Within the block, the first Ctrl+C or SIGTERM raises KeyboardInterrupt and the ones
    after it do nothing: the stop is under way, and bounded (shutdown grace + margin).

    A second interrupt raised while the first was being handled broke the wait on the server's
    thread halfway ("release unlocked lock") and could leave the process hanging, as when
    `socklab bench` was interrupted: the terminal's SIGINT, then bench's SIGTERM 1 ms later.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kinds = [getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)]

    def interrupt_once(signum: int, frame: object) -> None:
        for kind in kinds:
            # A handler that does nothing, not SIG_IGN: one already pending would then be
            # reported by the interpreter as "ignored due to race condition".
            signal.signal(kind, _do_nothing)
        raise KeyboardInterrupt

    previous = [signal.signal(kind, interrupt_once) for kind in kinds]
    try:
        yield
    finally:
        for kind, handler in zip(kinds, previous, strict=True):
            signal.signal(kind, handler)


def _do_nothing(signum: int, frame: object) -> None:
    pass
