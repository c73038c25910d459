"""The stop signals, SIGINT (Ctrl+C) and SIGTERM: one handler for the whole life of a command.

Why one handler. There used to be two, layered: `main()` turned SIGTERM into KeyboardInterrupt
for the whole command, and a server's wait swapped in its own "first one stops" handler around
the wait only. Between the two, a SIGTERM arriving right after the listening line (before the
wait's handler was in place, or while its `try` was not entered yet) escaped as a plain
KeyboardInterrupt: exit 130 for a server that was only asked to stop (issue 21). And once
`main()` put the default action back, a second signal arriving after the stop killed the
finished server with that signal (issue 15). An exception raised by a signal handler can surface
at any bytecode, so no guard entered *after* the handler can be trusted to catch it.

The design, asyncio's and trio's: in a server, the handler never raises. It records the first
signal, and the interpreter's wake-up descriptor (`signal.set_wakeup_fd`) wakes the main thread,
which waits for exactly that and then stops the server in ordinary code. Later signals find the
stop recorded and do nothing. Commands that are not servers keep Ctrl+C's usual meaning.

Modes, in the main thread (call order):

    install()                        the console script, before importing the CLI; for good
      DEFERRING                      parsing, start-up, and again after the command: recorded
      -> handling(graceful=False)    INTERRUPTING: every signal raises KeyboardInterrupt, and one
                                     recorded before raises at the switch (clients: exit 130)
      -> handling(graceful=True)     SERVING: the first is recorded and wakes `wait_for_stop`;
                                     the ones after it do nothing
      -> DEFERRING

The handler stays installed until the command is over; then `ignore_from_now_on()` sets SIG_IGN
for the last moments of the process. Putting the default action back would reopen the window in
which a late signal kills a process that has finished its stop, and the interpreter does exactly
that while it finalizes: CPython's `_PySignal_Fini` resets every signal that has a Python
handler to SIG_DFL, and only SIG_IGN is left alone. (In a first run of the stop-signal test,
SIGTERM 0-50 ms after SIGINT killed 2 of 3 asyncio servers with -15 that way, after their
closing line.)
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator
    from types import FrameType
    from typing import Any

# This module is imported before the rest of the CLI and should import little: every module
# loaded before `install()` lengthens the time in which a signal still has its default effect.
# socket and select are imported on the servers' code path only.
_DEFERRING = "deferring"
_INTERRUPTING = "interrupting"
_SERVING = "serving"


_STOP_SIGNAL_NAMES = ("SIGINT", "SIGTERM")  # Windows has both as Python-level signals


class _StopSignals:
    """The process's one record of stop signals; changed only in the main thread."""

    def __init__(self) -> None:
        self.mode = _DEFERRING
        self.received: int | None = None
        self.installed = False
        self.wake_receiver: socket.socket | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.mode == _INTERRUPTING:
            raise KeyboardInterrupt
        if self.received is None:
            self.received = signum


_state = _StopSignals()


def _kinds() -> list[int]:
    return [getattr(signal, name) for name in _STOP_SIGNAL_NAMES if hasattr(signal, name)]


def _in_main_thread() -> bool:
    # Python runs signal handlers in the main thread only, and only there may they be set.
    return threading.current_thread() is threading.main_thread()


def install() -> list[tuple[int, Any]]:
    """Handle SIGINT and SIGTERM from now on (main thread); the previous handlers, to restore.

    A no-op returning [] when already installed or outside the main thread.
    """
    if _state.installed or not _in_main_thread():
        return []
    previous = [(kind, signal.signal(kind, _state.on_signal)) for kind in _kinds()]
    _state.installed = True
    return previous


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """Within the block the stop signals are handled; afterwards the previous handlers are back
    unless an outer `install()` (the console script's) owns them."""
    previous = install()
    try:
        yield
    finally:
        if previous:
            _state.mode = _DEFERRING
            _state.received = None
            _state.installed = False
            for kind, handler in previous:
                signal.signal(kind, handler)


@contextlib.contextmanager
def handling(*, graceful: bool) -> Iterator[None]:
    """Run a command's body: a server (`graceful`) stops on the first signal through
    `wait_for_stop`; any other command gets KeyboardInterrupt, as Ctrl+C always gave it."""
    if not _state.installed or not _in_main_thread():
        yield
        return
    if not graceful:
        _state.mode = _INTERRUPTING
        try:
            if _state.received is not None:
                _state.received = None
                raise KeyboardInterrupt  # the signal came during start-up: act on it now
            yield
        finally:
            _state.mode = _DEFERRING
        return
    import socket

    receiver, sender = socket.socketpair()
    receiver.setblocking(False)
    sender.setblocking(False)  # set_wakeup_fd requires it: a full pipe must not block a handler
    # Written by the interpreter's C-level handler, in whichever thread the OS delivered the
    # signal to: the main thread's wait ends at once even when the signal went to a server
    # thread (Linux picks any thread that does not block it).
    previous_fd = signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
    _state.wake_receiver = receiver
    _state.mode = _SERVING
    try:
        yield
    finally:
        _state.mode = _DEFERRING
        _state.wake_receiver = None
        signal.set_wakeup_fd(previous_fd)
        receiver.close()
        sender.close()


def ignore_from_now_on() -> None:
    """The command is over: stop signals are discarded until the process has exited."""
    if not _state.installed or not _in_main_thread():
        return
    kinds = _kinds()
    if hasattr(signal, "pthread_sigmask"):
        # Blocked in this thread first (after a stop it is normally the only one left), so
        # none is caught between the check below and SIG_IGN (one would be reported as
        # "ignored due to race condition"); pending blocked ones are discarded by SIG_IGN
        # (POSIX sigaction).
        signal.pthread_sigmask(signal.SIG_BLOCK, kinds)
    for kind in kinds:
        # signal.signal() first runs the Python handlers of signals already caught: ours,
        # which only records them now.
        signal.signal(kind, signal.SIG_IGN)


def wait_for_stop(timeout_s: float) -> bool:
    """Wait up to `timeout_s` for a stop signal; True once one has arrived.

    Outside `handling(graceful=True)` (a server run in a thread by a test, say) no signal can
    arrive here: it just waits.
    """
    if _state.received is not None:
        return True
    receiver = _state.wake_receiver
    if receiver is None:
        threading.Event().wait(timeout_s)
    else:
        import select

        select.select([receiver], [], [], timeout_s)
        with contextlib.suppress(BlockingIOError, InterruptedError):
            receiver.recv(64)
    # The C-level handler writes the wake-up byte before the main thread runs the Python-level
    # one, which records the signal at the next bytecode: at the latest on the next call.
    return _state.received is not None
