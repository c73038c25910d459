"""What every runtime is told: the endpoint, the framing, the session it serves and the limits
that keep it safe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from socklab.protocol.closing import CloseReason
from socklab.protocol.converter import handle_datagram
from socklab.protocol.framing import FramingName
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.protocol.reflection import DatagramHandler, Silence
from socklab.protocol.session import ConverterSession, RequestHandled, Session, SessionFactory
from socklab.tracing.events import Tracer

Transport = Literal["tcp", "udp"]
# The asyncio model's loop: "auto" takes uvloop where installed.
EventLoopName = Literal["auto", "asyncio", "uvloop"]


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """A client was admitted and is served from now on."""

    peer: tuple[str, int]


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """A served client's connection ended; `reason` is the same member in every model (the
    session's own reason when it decided to close, else the runtime's)."""

    peer: tuple[str, int]
    reason: CloseReason
    # The connection's session in its final state (None: the peer never sent a byte), so an
    # observer can report what was served (the `upper` server logs its one sentence).
    session: Session | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RequestServed:
    """A client's request was answered (or refused with `E:`): what the session reported.
    Sent only to an observer, and only by a session that reports its requests."""

    peer: tuple[str, int]
    handled: RequestHandled


@dataclass(frozen=True, slots=True)
class MessageStalled:
    """A client began a message and has not finished it for `held_s` seconds: `buffered_bytes`
    wait for the framing's end (a newline, the rest of a length-prefixed message). Told once
    per message, long before the message deadline closes the connection: the commonest cause
    is a client that uses no framing at all (the slides' `send(b'U:lower')`)."""

    peer: tuple[str, int]
    buffered_bytes: int
    held_s: float


@dataclass(frozen=True, slots=True)
class ConnectionRefusedBusy:
    """A connection over --max-clients got `E:server busy` and was closed."""

    peer: tuple[str, int]


@dataclass(frozen=True, slots=True)
class DatagramUnanswered:
    """A UDP server stayed silent for a datagram; `why` is the core's reason
    (`socklab.protocol.reflection`). Sent only to an observer, so a server without one pays
    nothing for it."""

    peer: tuple[str, int]
    request: bytes
    why: Silence


@dataclass(frozen=True, slots=True)
class DatagramAnswered:
    """A UDP server answered a datagram with `reply`. Sent only to an observer."""

    peer: tuple[str, int]
    request: bytes
    reply: bytes


ServerEvent = (
    ConnectionOpened
    | ConnectionClosed
    | ConnectionRefusedBusy
    | RequestServed
    | MessageStalled
    | DatagramUnanswered
    | DatagramAnswered
)
ServerObserver = Callable[[ServerEvent], None]


@dataclass(frozen=True, slots=True)
class DescriptorsExhausted:
    """Clients got `E:server busy` because the process ran out of file descriptors.

    Reported at once, then at most once per interval with the count since the last report.
    `open_file_limit` is the soft RLIMIT_NOFILE (None where the OS has none); `max_clients`
    is how many clients it leaves room for.
    """

    refused: int
    open_file_limit: int | None
    max_clients: int


@dataclass(frozen=True, slots=True)
class ThreadsExhausted:
    """Clients got `E:server busy` because no thread could be started for them (memory or the
    thread limit); rate-limited like DescriptorsExhausted."""

    refused: int
    detail: str


@dataclass(frozen=True, slots=True)
class MemoryExhausted:
    """MemoryError while serving clients: each got an `E:` line and was closed; rate-limited."""

    clients: int


# Lines for the operator, printed whether or not --verbose is given.
ServerAlert = DescriptorsExhausted | ThreadsExhausted | MemoryExhausted
ServerAlertSink = Callable[[ServerAlert], None]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything a runtime is told: endpoint, framing, the session it serves, the limits."""

    host: str = "127.0.0.1"
    port: int = 50000
    transport: Transport = "tcp"
    framing: FramingName = "line"
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # Clients served at once; None: the model's default (runtimes/connections.py: 10,000 for
    # the event-loop models, Redis' maxclients; 1,024 for the blocking ones), always capped by
    # the open-file limit minus a reserve.
    max_clients: int | None = None
    # Clients served at once from one IP address (nginx's limit_conn); None: no such bound.
    max_clients_per_host: int | None = None
    # Redis closes idle clients only when `timeout` is set; nginx's keepalive default is 75 s.
    # 300 s tolerates a student pausing at a prompt while still reclaiming abandoned sockets.
    idle_timeout_s: float = 300.0
    # A whole message must arrive within this time once it has begun: a total deadline, not an
    # idle timer, so a slowloris trickling one byte at a time cannot hold a connection
    # (HAProxy's `timeout http-request`, default 10 s in its sample configs; we allow 30 s).
    message_timeout_s: float = 30.0
    # A peer that does not read its replies is disconnected after this long (nginx send_timeout 60 s).
    write_timeout_s: float = 30.0
    # Output queued for a slow reader before we stop reading its requests (asyncio's default
    # high-water mark is 64 KiB; we allow 4x for replies already produced).
    max_buffered_output_bytes: int = 256 * 1024
    # Linux caps this at net.core.somaxconn (4096 since 5.4); 1024 survives connect storms.
    backlog: int = 1024
    # Graceful stop: in-flight replies get this long to drain before sockets are closed.
    shutdown_grace_s: float = 3.0
    reuse_port: bool = False
    # Processes serving the port together (SO_REUSEPORT), one model instance each; 1: this one.
    workers: int = 1
    # TCP_USER_TIMEOUT (RFC 5482, Linux tcp(7)): how long sent data may stay unacknowledged before
    # the kernel drops the connection. None keeps the kernel's default, ~15 minutes of
    # retransmissions (net.ipv4.tcp_retries2 = 15), during which a blackholed peer holds a slot;
    # HAProxy's `tcp-ut` and nginx's `so_keepalive` exist for the same reason. Linux only.
    user_timeout_s: float | None = None
    # SO_RCVBUF of the listening socket, inherited by accepted ones (socket(7)); None keeps the
    # kernel's autotuning. Only tests set it: a tiny buffer forces partial reads (Linux clamps
    # the value to its minimum, about 2 KiB).
    receive_buffer_bytes: int | None = None
    # SO_SNDBUF the same way; tests set it so that a slow reader makes sends wait at a size
    # they choose (autotuning lets a loopback send buffer grow to 4 MiB).
    send_buffer_bytes: int | None = None
    event_loop: EventLoopName = "auto"  # the asyncio model's only
    # Makes the session of each TCP connection: the protocol served (socketserver's
    # RequestHandlerClass).
    session_factory: SessionFactory = field(default=ConverterSession, compare=False)
    # Answers one UDP datagram (None: no reply); the loop guards of
    # `socklab.protocol.reflection` apply to whatever it answers.
    datagram_handler: DatagramHandler = field(default=handle_datagram, compare=False)
    observer: ServerObserver | None = field(default=None, compare=False)
    # Shortages the operator must hear about (out of descriptors, threads, memory), rate-limited.
    alert: ServerAlertSink | None = field(default=None, compare=False)
    # --trace: every socket call of the server reported as it happens (None: no cost at all).
    tracer: Tracer | None = field(default=None, compare=False)
