"""What every driver does with a TCP connection besides the protocol, in one place.

The session decides what bytes mean; this module holds the few things a driver does on its
own account and that must look the same under every model:

* sending the notice of a connection it ends for its own reasons (busy, a deadline), made by
  the session (`notice_for_config`: this module never makes protocol bytes), without waiting;
* refusing a connection over `--max-clients`: the busy notice, sent without waiting, then close;
* tuning an accepted socket (TCP_NODELAY) and naming its peer;
* telling the observer (the CLI's `--verbose`) what happened;
* how many clients fit: the model's default, capped by the open-file limit (raised to the hard
  limit at start), and who gets a slot (`Admission`: the bound, the per-host bound);
* running out of descriptors anyway: a spare one turns the waiting client away with the busy
  notice (libuv's and nginx's trick), and the operator hears of it, rate-limited.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from socklab.protocol.closing import CloseReason
from socklab.protocol.session import Session, notice_of
from socklab.runtimes.config import (
    DescriptorsExhausted,
    MessageStalled,
    RequestServed,
    ServerAlert,
    ServerConfig,
    ServerEvent,
)
from socklab.runtimes.deadlines import STALLED_MESSAGE_S, Deadlines
from socklab.runtimes.listening import configure_accepted_socket
from socklab.tracing import poll_quietly

# One recv() takes up to 64 KiB: the largest TCP window without scaling, and what asyncio's
# selector loop reads per readiness event (max_size of _SelectorSocketTransport).
RECEIVE_BYTES = 64 * 1024


# After the shutdown grace, closing the remaining sockets and ending the thread takes a moment;
# blocked threads are woken by shutdown() at once, or (Windows) notice within one 1 s slice.
STOP_MARGIN_S = 2.0

# Default --max-clients. The event-loop models exist to hold many mostly idle connections
# (the C10k lesson): 10,000, Redis' `maxclients` default. A blocking model pays a thread (8 MiB
# of address space) per client: 1,024, memcached's `-c` and Apache's MaxRequestWorkers range.
EVENT_LOOP_MAX_CLIENTS = 10_000
BLOCKING_MAX_CLIENTS = 1024

# Descriptors a server needs besides its clients: stdio, the listener, the selector or loop's
# own, a wake-up pair, the spare below, files the interpreter opens. Redis reserves 32
# (CONFIG_MIN_RESERVED_FDS) and lowers maxclients to the open-file limit minus them.
RESERVED_FILE_DESCRIPTORS = 32

# A shortage is reported at once, then at most once per interval with a count: a storm of
# refused clients makes one line, not one per client.
ALERT_INTERVAL_S = 10.0


# A lingering close, after a refusal while the peer may still be sending (Apache's
# lingering_close reads and discards for up to 2 s per read, 30 s in all; nginx's
# lingering_close for lingering_time 30 s): the sending side is shut down at once, so the peer
# reads the `E:` reply and an EOF, then what it still sends is read and discarded until it
# closes too, up to these bounds. Beyond them the close may send a RST: a peer that keeps
# sending after a refusal gets no more of our time.
LINGER_MAX_BYTES = 256 * 1024
LINGER_S = 2.0


class Lingering:
    """What a lingering close may still read and until when; `drained()` counts each read."""

    __slots__ = ("_bytes_left", "deadline")

    def __init__(self, now: float) -> None:
        self._bytes_left = LINGER_MAX_BYTES
        self.deadline = now + LINGER_S

    def drained(self, size: int) -> bool:
        """Count `size` bytes read and discarded (0: the peer's EOF); True while more may come."""
        self._bytes_left -= size
        return size > 0 and self._bytes_left > 0


def close_lingering_blocking(sock: socket.socket) -> None:
    """The lingering close for a blocking socket: shut down sending, drain within the bounds.

    Called before the socket is closed; any error (a reset, the bounds' timeout) ends it.
    """
    lingering = Lingering(time.monotonic())
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        while True:
            left_s = lingering.deadline - time.monotonic()
            if left_s <= 0:
                return
            poll_quietly(sock, left_s)
            if not lingering.drained(len(sock.recv(RECEIVE_BYTES))):
                return


class WritingDeadlines(Deadlines):
    """Deadlines for a driver that writes by itself: the write deadline runs while output is
    pending and not a byte of it went out since the previous sweep."""

    __slots__ = ("sent_since_sweep",)

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.sent_since_sweep = False

    def sweep_connection(
        self, *, bytes_received: int, session: Session | None, output_pending: bool
    ) -> CloseReason | None:
        """Advance one sweep; the timeout to close for when a deadline passed, else None.

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


def notice_for_config(config: ServerConfig, reason: CloseReason) -> bytes:
    """What a session of `config` sends when ended for `reason` before it was made (cached)."""
    return notice_of(config.session_factory, config.framing, config.max_message_bytes, reason)


def closing_reason(session: Session | None) -> CloseReason:
    """Why a connection closed that the session chose to close: its own reason (a session that
    names none was done), or the peer's close when it never sent a byte (no session)."""
    if session is None:
        return CloseReason.PEER_EOF
    return session.close_reason or CloseReason.LOCAL


def send_notice_nowait(sock: socket.socket, notice: bytes) -> None:
    """Send `notice` if the socket buffer takes it at once; a peer that does not read loses it."""
    with contextlib.suppress(OSError):
        sock.setblocking(False)
        sock.send(notice)


def refuse_busy(sock: socket.socket, config: ServerConfig) -> None:
    """Answer a connection over the bound with the busy notice and close it: it never hangs."""
    send_notice_nowait(sock, notice_for_config(config, CloseReason.BUSY))
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


def report_requests(config: ServerConfig, peer: tuple[str, int], session: Session) -> None:
    """Tell the observer what each request the session handled was, if the session says
    (`ReportingSession`); call only when `config.observer` is set, after feeding the session."""
    take = getattr(session, "take_requests_handled", None)
    if take is None:
        return
    for handled in take():
        notify(config, RequestServed(peer, handled))


def report_stalled_message(
    config: ServerConfig, peer: tuple[str, int], session: Session | None, deadlines: Deadlines
) -> None:
    """After a sweep that closed nothing: tell the observer, once per message, of a begun
    message held unfinished for `STALLED_MESSAGE_S` (a client without the framing's end)."""
    if config.observer is None or session is None or not deadlines.message_stalled_now:
        return
    buffered = getattr(session, "partial_message_bytes", 0)
    if buffered:
        notify(config, MessageStalled(peer, buffered, STALLED_MESSAGE_S))


def watch_requests(config: ServerConfig, session: Session) -> Session:
    """`session`, asked to record what each request was when the server has an observer (-v)
    and the session can (`ReportingSession.record_requests`); a server without one pays
    nothing for it."""
    if config.observer is not None:
        record = getattr(session, "record_requests", None)
        if record is not None:
            record()
    return session


def raise_open_file_limit() -> int | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit now (None: unbounded).

    Many systems start processes with a soft limit of 1,024 open files; raising it up to the
    hard one needs no privilege, and Redis, nginx (`worker_rlimit_nofile`) and Go's runtime
    (since 1.19) do it at start. Windows has no such limit on sockets.
    """
    if sys.platform == "win32":
        return None
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        # macOS refuses values above kern.maxfilesperproc even under an unlimited hard limit;
        # the server then runs with what it has, and max_clients is capped by it.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


def current_open_file_limit() -> int | None:
    """The soft RLIMIT_NOFILE as it is now (it may have been lowered since the start)."""
    if sys.platform == "win32":
        return None
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """How many clients a server takes at once, and why that many."""

    max_clients: int  # the effective bound
    requested: int  # --max-clients, or the model's default
    open_file_limit: int | None  # the soft RLIMIT_NOFILE at start (None: unbounded)
    max_clients_per_host: int | None

    @property
    def capped_by_descriptors(self) -> bool:
        return self.max_clients < self.requested


def resolve_client_limits(config: ServerConfig, default_max_clients: int) -> ClientLimits:
    """The effective bounds of a server: raises the open-file limit, caps max_clients by it."""
    requested = config.max_clients if config.max_clients is not None else default_max_clients
    open_files = raise_open_file_limit()
    effective = requested
    if open_files is not None:
        effective = min(requested, max(1, open_files - RESERVED_FILE_DESCRIPTORS))
    return ClientLimits(effective, requested, open_files, config.max_clients_per_host)


class RateLimitedAlert:
    """Counts occurrences of one shortage; tells the operator at once, then at most once per
    ALERT_INTERVAL_S with the count since the last line, and the rest when the server stops
    (`flush()`), so the counts add up. Thread-safe."""

    __slots__ = ("_config", "_lock", "_make", "_next_report", "_pending")

    def __init__(self, config: ServerConfig, make: Callable[[int], ServerAlert]) -> None:
        self._config = config
        self._make = make
        self._lock = threading.Lock()
        self._pending = 0
        self._next_report = float("-inf")

    def count(self) -> None:
        sink = self._config.alert
        now = time.monotonic()
        with self._lock:
            self._pending += 1
            if now < self._next_report:
                return
            pending, self._pending = self._pending, 0
            self._next_report = now + ALERT_INTERVAL_S
        if sink is not None:
            sink(self._make(pending))

    def flush(self) -> None:
        """Report what was counted since the last line, if anything (the server stopped)."""
        sink = self._config.alert
        with self._lock:
            pending, self._pending = self._pending, 0
        if pending and sink is not None:
            sink(self._make(pending))


class Admission:
    """Who gets a slot: at most `max_clients` at once, at most `max_clients_per_host` from one
    address. One per server; the threads model calls it under its lock, the others from their
    one thread. A refused client gets the busy notice from the caller."""

    __slots__ = ("_per_host", "descriptor_alert", "limits")

    def __init__(self, config: ServerConfig, limits: ClientLimits) -> None:
        self.limits = limits
        self._per_host: dict[str, int] = {}
        self.descriptor_alert = RateLimitedAlert(
            config,
            lambda refused: DescriptorsExhausted(
                refused, current_open_file_limit(), limits.max_clients
            ),
        )

    def admit(self, active: int, host: str) -> bool:
        """Whether a new client from `host` gets a slot, `active` being served; counts it."""
        limits = self.limits
        if active >= limits.max_clients:
            if limits.capped_by_descriptors:
                self.descriptor_alert.count()  # the bound is the descriptors', not the user's
            return False
        per_host = limits.max_clients_per_host
        if per_host is not None:
            held = self._per_host.get(host, 0)
            if held >= per_host:
                return False
            self._per_host[host] = held + 1
        return True

    def release(self, host: str) -> None:
        """A client admitted from `host` has gone."""
        if self.limits.max_clients_per_host is not None:
            held = self._per_host.get(host, 0) - 1
            if held > 0:
                self._per_host[host] = held
            else:
                self._per_host.pop(host, None)


class SpareDescriptor:
    """One descriptor held in reserve, to turn clients away when the process has none left.

    accept() fails with EMFILE while the client waits in the backlog: it would wait there,
    unanswered, until a descriptor frees up (or get a bare close, as libuv's own trick does).
    Closing the spare makes room to accept it, send the busy notice and close it; then the
    spare is taken back. nginx and libuv (uv__emfile_trick) keep such a reserve.
    """

    __slots__ = ("_fd",)

    def __init__(self) -> None:
        self._fd: int | None = None
        self._take()

    def _take(self) -> None:
        try:
            self._fd = os.open(os.devnull, os.O_RDONLY)
        except OSError:
            self._fd = None  # none to spare now; taken again after the next refusal

    def refuse_one(self, listener: socket.socket, config: ServerConfig) -> bool:
        """Accept the next waiting client with the spare and refuse it; True if one was."""
        if self._fd is None:
            self._take()
            if self._fd is None:
                return False
        os.close(self._fd)
        self._fd = None
        try:
            sock, _ = listener.accept()
        except OSError:
            self._take()
            return False  # gone from the backlog, or the descriptor was taken meanwhile
        refuse_busy(sock, config)
        self._take()  # the refused client's descriptor, just closed
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# accept(2) failures that do not concern the listening socket. The man page's advice: network
# errors of the new connection (it was reset while queued) are passed over; running out of
# descriptors or memory is a shortage, during which accepting again at once would only spin.
_ACCEPT_PEER_ERRNOS = frozenset(
    {errno.ECONNABORTED, errno.ECONNRESET, errno.EPROTO, errno.EPERM, errno.EINTR}
)
_ACCEPT_SHORTAGE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_DESCRIPTOR_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE})
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


def recover_from_accept_error(
    exc: OSError,
    listener: socket.socket,
    config: ServerConfig,
    admission: Admission,
    spare: SpareDescriptor,
) -> tuple[float, bool]:
    """After accept() failed with `exc`: (seconds to stop accepting, whether a client was
    refused as busy with the spare descriptor); raises `exc` if the listener itself failed."""
    if exc.errno in _DESCRIPTOR_ERRNOS:
        admission.descriptor_alert.count()
        if spare.refuse_one(listener, config):
            return 0.0, True
    return accept_backoff_s(exc), False
