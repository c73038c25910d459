"""What every driver does with a TCP connection besides the protocol, in one place.

The session decides what bytes mean; this module holds the few things a driver does on its
own account and that must look the same under every model:

* the notices a server sends without being asked (`E:server busy`, the deadline notices),
  framed with the connection's framing, so a length-prefix client can read them too;
* refusing a connection over `--max-clients`: the busy notice, sent without waiting, then close;
* tuning an accepted socket (TCP_NODELAY) and naming its peer;
* telling the observer (the CLI's `--verbose`) what happened;
* making room for `max_clients` sockets in the process's open-file limit.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import socket
import sys
from typing import Any

from socklab.protocol.framing import make_framer
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.protocol.session import Session
from socklab.runtimes.config import ServerConfig, ServerEvent
from socklab.runtimes.deadlines import Deadlines
from socklab.runtimes.listening import configure_accepted_socket

# One recv() takes up to 64 KiB: the largest TCP window without scaling, and what asyncio's
# selector loop reads per readiness event (max_size of _SelectorSocketTransport).
RECEIVE_BYTES = 64 * 1024

BUSY_REPLY = b"E:server busy, try again later"

# After the shutdown grace, closing the remaining sockets and ending the thread takes a moment;
# blocked threads are woken by shutdown() at once, or (Windows) notice within one 1 s slice.
STOP_MARGIN_S = 2.0

# Sockets a server holds besides its clients: the listener, a wake-up pair, a connection being
# refused as busy, files the interpreter opens. Generous, as a shortfall fails accept() (EMFILE).
SPARE_FILE_DESCRIPTORS = 64


class WritingDeadlines(Deadlines):
    """Deadlines for a driver that writes by itself: the write deadline runs while output is
    pending and not a byte of it went out since the previous sweep."""

    __slots__ = ("sent_since_sweep",)

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.sent_since_sweep = False

    def sweep_connection(
        self, *, bytes_received: int, session: Session | None, output_pending: bool
    ) -> bytes | None:
        """Advance one sweep; the `E:` notice to close with when a deadline passed, else None.

        `session` is None while a connection has not sent a byte (no session was made yet).
        """
        blocked = output_pending and not self.sent_since_sweep
        self.sent_since_sweep = False
        return self.sweep(
            bytes_received=bytes_received,
            partial_message=session is not None and session.has_partial_message,
            output_blocked=blocked,
        )


def stop_timeout_s(config: ServerConfig) -> float:
    """How long stop() waits by default: the shutdown grace, plus time to close everything."""
    return config.shutdown_grace_s + STOP_MARGIN_S


@functools.lru_cache(maxsize=32)
def frame_notice(framing: str, line: bytes) -> bytes:
    """`line` (an `E:` notice, with or without its newline) framed as a message of `framing`."""
    framer = make_framer(framing, DEFAULT_MAX_MESSAGE_BYTES)
    return framer.encode(line.rstrip(b"\n"))


def send_notice_nowait(sock: socket.socket, notice: bytes) -> None:
    """Send `notice` if the socket buffer takes it at once; a peer that does not read loses it."""
    with contextlib.suppress(OSError):
        sock.setblocking(False)
        sock.send(notice)


def refuse_busy(sock: socket.socket, config: ServerConfig) -> None:
    """Answer a connection over the bound with the busy notice and close it: it never hangs."""
    send_notice_nowait(sock, frame_notice(config.framing, BUSY_REPLY))
    sock.close()


def configure_accepted_socket_safely(sock: socket.socket, config: ServerConfig) -> None:
    """The common options of an accepted socket; a peer that already reset it is no error."""
    with contextlib.suppress(OSError):  # the next recv() reports the reset
        configure_accepted_socket(sock, config)


def peer_of(address: Any) -> tuple[str, int]:
    """(host, port) of an accept()/recvfrom() address (IPv6 adds flow info and scope id)."""
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return str(address), 0


def notify(config: ServerConfig, event: ServerEvent) -> None:
    observer = config.observer
    if observer is not None:
        observer(event)


def raise_open_file_limit(max_clients: int) -> None:
    """Raise the soft RLIMIT_NOFILE so `max_clients` connections fit (never above the hard limit).

    Many systems start processes with a soft limit of 1024 open files, which the default of
    1024 clients would exceed; raising the soft limit up to the hard one needs no privilege
    (Go's runtime does the same at start-up since Go 1.19).
    """
    if sys.platform == "win32":
        return  # no RLIMIT_NOFILE; Windows sockets are not bounded by the C runtime's file table
    import resource

    wanted = max_clients + SPARE_FILE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        # macOS refuses values above kern.maxfilesperproc even under an unlimited hard limit;
        # the server then runs with what it has and accept() backs off on EMFILE.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# accept(2) failures that do not concern the listening socket. The man page's advice: network
# errors of the new connection (it was reset while queued) are passed over; running out of
# descriptors or memory is a shortage, during which accepting again at once would only spin.
_ACCEPT_PEER_ERRNOS = frozenset(
    {errno.ECONNABORTED, errno.ECONNRESET, errno.EPROTO, errno.EPERM, errno.EINTR}
)
_ACCEPT_SHORTAGE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# asyncio pauses accepting for 1 s after EMFILE (base_events: "socket.accept() out of system
# resource"); the same pause here.
ACCEPT_BACKOFF_S = 1.0


def accept_backoff_s(exc: OSError) -> float:
    """Seconds to stop accepting after accept() failed with `exc` (0: go on); raise if fatal."""
    if exc.errno in _ACCEPT_PEER_ERRNOS:
        return 0.0
    if exc.errno in _ACCEPT_SHORTAGE_ERRNOS:
        return ACCEPT_BACKOFF_S
    raise exc
