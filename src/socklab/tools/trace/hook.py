"""The part of `socklab trace` that runs inside the traced Python program, before its first line.

How it gets there: `socklab trace` puts a directory holding a small `sitecustomize.py` first on
the program's PYTHONPATH; Python imports `sitecustomize` at start-up (the `site` module), and that
file calls `install_from_environment()` here, then loads the user's own `sitecustomize`, if any.
The student's file is neither changed nor copied.

What it does: it replaces the class `socket.socket` by `ProgramSocket`, a `TracedSocket` (the
same subclass `--trace` uses) with the standard constructor. Everything that makes a socket looks
the class up in the socket module when it runs, so everything is traced: `socket.socket(...)`,
`from socket import *` (the program imports it later), `create_connection`, `create_server`,
sockets that `accept()` returns, threads, selectors, and asyncio's connections, whose reads and
writes are `recv`/`send` on these very objects. Only AF_INET and AF_INET6 sockets are reported:
asyncio's internal wake-up socket pair (AF_UNIX) is its own machinery, not the program's.

Events go out as JSON lines (`socklab.tools.trace.wire`) on the descriptor named in
SOCKLAB_TRACE_FD, never on the program's stdin, stdout or stderr. If `socklab trace` went away,
the program goes on untraced. The environment variables are removed again, so programs this one
starts are not traced by accident (and see their PYTHONPATH as it was).
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
from typing import Any

from socklab.tools.trace.wire import encode_event
from socklab.tracing.events import Call, TraceEvent, socket_address
from socklab.tracing.traced_socket import TracedSocket

FD_VARIABLE = "SOCKLAB_TRACE_FD"
# The PYTHONPATH the program had before socklab put its start-up directory first ("" if none).
PYTHONPATH_VARIABLE = "SOCKLAB_TRACE_PYTHONPATH"
# On Windows the pipe is passed as an inherited handle: SOCKLAB_TRACE_FD=handle:1234.
WINDOWS_HANDLE_PREFIX = "handle:"
_TRACED_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})
_MOVING_BYTES = frozenset(
    {Call.SEND, Call.SENDALL, Call.SENDMSG, Call.RECV, Call.RECV_INTO, Call.RECVMSG}
)
_IN_PROGRESS = frozenset({errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY})


class _PipeWriter:
    """Writes each event as one line on the pipe; threads take turns, forks start afresh."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        # The pipe as the kernel knows it: a program that closes its descriptors (a daemon's
        # closerange) and opens a file that gets the same number must not find events in it.
        self.identity = _identity(fd)
        self.lock = threading.Lock()
        self.broken = False
        # A fork while another thread holds the lock would leave the child's copy held forever.
        if sys.platform != "win32":  # no fork there
            os.register_at_fork(after_in_child=self._reset_lock)

    def _reset_lock(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, event: TraceEvent) -> None:
        if self.broken:
            return
        line = encode_event(event)
        with self.lock:
            try:
                if _identity(self.fd) != self.identity:
                    self.broken = True  # the program reused the number: not our pipe any more
                    return
                os.write(self.fd, line)
            except OSError:  # socklab trace ended (Ctrl+C): the program goes on untraced
                self.broken = True


def _identity(fd: int) -> tuple[int, int]:
    status = os.fstat(fd)
    return status.st_dev, status.st_ino


_writer: _PipeWriter | None = None


def _send_event(event: TraceEvent) -> None:
    if _writer is not None:
        _writer(event)


class ProgramSocket(TracedSocket):
    """`socket.socket` as the traced program sees it: the standard constructor, traced calls.

    Beyond `TracedSocket` it reports a non-blocking connect() when it completes (event loops and
    selector programs learn that from SO_ERROR), and stays silent on sockets that are not IP.
    """

    __slots__ = ("_connecting",)

    def __init__(
        self,
        family: int = -1,
        type: int = -1,  # the socket module's own parameter name
        proto: int = -1,
        fileno: int | None = None,
    ) -> None:
        self._connecting: tuple[str, int] | None = None
        super().__init__(family, type, proto, fileno, tracer=_send_event)

    def _report(self, call: Call, fd: int | None = None, **facts: Any) -> None:
        if self.family not in _TRACED_FAMILIES:
            return
        if self._connecting is not None and call in _MOVING_BYTES:
            # A selector program learns that its non-blocking connect() completed by writing or
            # reading: the first such call finishes it (or fails with its error).
            address, self._connecting = self._connecting, None
            super()._report(Call.CONNECT, address=address, error=facts.get("error"))
        super()._report(call, fd, **facts)

    def _accepted_socket(self, fd: int) -> TracedSocket:
        return ProgramSocket(self.family, self.type, self.proto, fileno=fd)

    def connect(self, address: Any, /) -> None:
        try:
            super().connect(address)
        except BlockingIOError:
            self._connecting = socket_address(address)
            raise

    def connect_ex(self, address: Any, /) -> int:
        result = super().connect_ex(address)
        if result in _IN_PROGRESS:
            self._connecting = socket_address(address)
        elif result == 0:
            self._report(Call.CONNECT, address=socket_address(address))
        else:
            self._report_connect_error(result, socket_address(address))
        return result

    def getsockopt(self, level: int, option: int, buflen: int | None = None, /) -> Any:
        if buflen is not None:
            return super().getsockopt(level, option, buflen)
        value = super().getsockopt(level, option)
        if (
            self._connecting is not None
            and (level, option) == (socket.SOL_SOCKET, socket.SO_ERROR)
            and value not in _IN_PROGRESS
        ):
            address, self._connecting = self._connecting, None
            if value == 0:
                self._report(Call.CONNECT, address=address)
            else:
                self._report_connect_error(value, address)
        return value

    def _report_connect_error(self, number: int, address: tuple[str, int] | None) -> None:
        self._report(Call.CONNECT, error=f"[Errno {number}] {os.strerror(number)}", address=address)


def _restore_environment() -> None:
    os.environ.pop(FD_VARIABLE, None)
    original = os.environ.pop(PYTHONPATH_VARIABLE, None)
    if original is None:
        return
    if original:
        os.environ["PYTHONPATH"] = original
    else:
        os.environ.pop("PYTHONPATH", None)


def install(fd: int) -> None:
    """Report every IP socket call of this process as a JSON line on `fd`."""
    global _writer
    os.set_inheritable(fd, False)  # programs this one starts do not get the pipe
    _writer = _PipeWriter(fd)
    socket.socket = ProgramSocket  # type: ignore[misc]


def install_from_environment() -> None:
    """Called by the start-up file: trace if socklab trace started us, else do nothing."""
    value = os.environ.get(FD_VARIABLE)
    _restore_environment()
    if value is None:
        return
    try:
        if sys.platform == "win32" and value.startswith(WINDOWS_HANDLE_PREFIX):
            import msvcrt

            fd = msvcrt.open_osfhandle(int(value.removeprefix(WINDOWS_HANDLE_PREFIX)), os.O_WRONLY)
        else:
            fd = int(value)
        install(fd)
    except (OSError, ValueError):  # not open here (a program the traced one started), or no number
        return


def load_next_sitecustomize(own_directory: str) -> None:
    """Import the `sitecustomize` that ours hides (a virtualenv's or the user's), if any.

    Our directory leaves `sys.path` for good: the program sees the path it would have had.
    """
    import importlib

    ours = sys.modules.pop("sitecustomize", None)
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != own_directory]
    try:
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as exc:
        if exc.name != "sitecustomize":
            raise
        if ours is not None:
            sys.modules["sitecustomize"] = ours
