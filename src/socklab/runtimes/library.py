"""`socklab.serve`: a library user's protocol served by any of the four runtimes.

The user brings the protocol, socklab everything around it: the framing, the limits, the
timeouts, backpressure, the busy notice, a clean stop. A stateless protocol is one function,
`reply(message) -> bytes | None`, adapted to a session by `socklab.protocol.reply_session` (over
UDP, to a datagram handler that the reflection rules wrap); a stateful one is a `Session`
factory, made once per connection, exactly as the converter is served. Nothing here knows a
protocol: this module only checks the options, builds a `ServerConfig` and picks the runtime.
"""

from __future__ import annotations

import logging
from typing import Final, Literal, TypedDict, Unpack, cast, overload

from socklab.errors import UsageError
from socklab.protocol.converter import handle_datagram as handle_converter_datagram
from socklab.protocol.framing import FRAMINGS
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.protocol.reply_session import (
    ReplyFunction,
    datagram_handler,
    reply_session_factory,
)
from socklab.protocol.session import SessionFactory
from socklab.runtimes import RUNTIMES
from socklab.runtimes import serve as serve_config
from socklab.runtimes.config import ServerConfig, Transport
from socklab.runtimes.handle import ServerHandle

_logger = logging.getLogger("socklab")


class ServerLimits(TypedDict, total=False):
    """The limits and timeouts `serve(**limits)` accepts: `ServerConfig`'s fields of the same
    names, where each default is explained (64 KiB messages, 300 s idle, 30 s per message...)."""

    max_message_bytes: int
    max_clients: int | None
    max_clients_per_host: int | None
    idle_timeout_s: float
    message_timeout_s: float
    write_timeout_s: float
    max_buffered_output_bytes: int
    backlog: int
    shutdown_grace_s: float
    user_timeout_s: float | None


LIMITS: Final = frozenset(ServerLimits.__annotations__)
# Limits that may be None ("no such bound" or "the kernel's default").
_OPTIONAL_LIMITS: Final = frozenset({"max_clients", "max_clients_per_host", "user_timeout_s"})
# Limits counted in whole bytes or clients; the others are seconds.
_COUNT_LIMITS: Final = frozenset(
    {
        "max_message_bytes",
        "max_clients",
        "max_clients_per_host",
        "max_buffered_output_bytes",
        "backlog",
    }
)
_TRANSPORTS: Final = ("tcp", "udp")


def _report_reply_failure(exc: Exception) -> None:
    """A reply function raised: the client got `E:server error`; the traceback goes to the log."""
    _logger.error(
        "the reply function raised %s; its client got E:server error",
        type(exc).__name__,
        exc_info=exc,
    )


def _checked_limits(limits: dict[str, object]) -> None:
    unknown = sorted(set(limits) - LIMITS)
    if unknown:
        raise TypeError(
            f"serve() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"the limits are {', '.join(sorted(LIMITS))}"
        )
    for name, value in limits.items():
        if value is None and name in _OPTIONAL_LIMITS:
            continue
        counted = name in _COUNT_LIMITS
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (counted and not isinstance(value, int))
            or value <= 0
        ):
            kind = "a positive whole number" if counted else "a positive number"
            raise UsageError(f"{name} must be {kind}, not {value!r}")


@overload
def serve(
    reply: ReplyFunction,
    *,
    model: str = "asyncio",
    transport: str = "tcp",
    framing: str = "line",
    host: str = "127.0.0.1",
    port: int = 0,
    greeting: bytes | None = None,
    **limits: Unpack[ServerLimits],
) -> ServerHandle: ...


@overload
def serve(
    *,
    session: SessionFactory,
    model: str = "asyncio",
    transport: Literal["tcp"] = "tcp",
    framing: str = "line",
    host: str = "127.0.0.1",
    port: int = 0,
    **limits: Unpack[ServerLimits],
) -> ServerHandle: ...


def serve(
    reply: ReplyFunction | None = None,
    *,
    session: SessionFactory | None = None,
    model: str = "asyncio",
    transport: str = "tcp",
    framing: str = "line",
    host: str = "127.0.0.1",
    port: int = 0,
    greeting: bytes | None = None,
    **limits: Unpack[ServerLimits],
) -> ServerHandle:
    """Serve a protocol on `host`:`port` and return the running server's handle.

    Give the protocol one of two ways:

    * `reply`, a function `reply(message: bytes) -> bytes | None` called with each whole
      message (None: send no reply). Over TCP the `framing` cuts the stream into messages
      ("line", "length", or the naive "raw" of the lecture, which only works while each message
      arrives in one piece); over UDP (`transport="udp"`) one datagram is one message and
      `framing` does not apply. `greeting`, if given, is sent to each TCP client first. If
      `reply` raises, that client gets `E:server error` and is closed, and the exception is
      logged to the "socklab" logger; other clients are served on.
    * `session`, a `SessionFactory` (such as a class implementing `socklab.Session`), called
      once per TCP connection: for protocols with state per connection.

    `model` is the concurrency model: "asyncio", "iterative", "selectors" or "threads" (TCP
    only). `port=0` lets the OS pick a free port: read it from the handle's `address`. The
    `limits` are the converter's, with its defaults: `max_message_bytes` (a longer message is
    answered `E:message of … exceeds the …-byte limit` and its connection closed),
    `idle_timeout_s`, `message_timeout_s`, `write_timeout_s`, `max_clients`,
    `max_clients_per_host`, `max_buffered_output_bytes`, `backlog`, `shutdown_grace_s`,
    `user_timeout_s`. Over UDP, no reply is sent to an empty datagram, an `E:` datagram, a
    source port below 1024, or when the reply would equal the request (no reflection loops).

    The handle is a context manager with `.address` (host, port) and `.stop()`; the server is
    already accepting when `serve` returns. Raises `TypeError` for an unknown limit or when
    neither or both of `reply` and `session` are given, `UsageError` for a value that cannot
    work, and a `NetworkError` (e.g. `AddressInUseError`) when the address cannot be bound.
    """
    if (reply is None) == (session is None):
        raise TypeError("serve() takes a reply function or session=, exactly one of them")
    _checked_limits(dict(limits))
    if model not in RUNTIMES:
        raise UsageError(f"unknown model {model!r}; choose one of {', '.join(RUNTIMES)}")
    if transport not in _TRANSPORTS:
        raise UsageError(f"unknown transport {transport!r}; choose tcp or udp")
    if framing not in FRAMINGS:
        raise UsageError(f"unknown framing {framing!r}; choose one of {', '.join(FRAMINGS)}")
    if greeting is not None and not isinstance(greeting, bytes):
        raise UsageError(f"greeting must be bytes, not {type(greeting).__name__}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"port must be a whole number from 0 to 65535, not {port!r}")
    if session is not None and greeting is not None:
        raise UsageError(
            "a session sends its own greeting; drop greeting= or pass a reply function"
        )
    if transport == "udp" and greeting is not None:
        raise UsageError("a UDP server has no connection to greet; drop greeting= or use TCP")
    handle_datagram: ReplyFunction | None = None
    if session is None:
        assert reply is not None
        if not callable(reply):
            raise UsageError(f"reply must be a function, not {type(reply).__name__}")
        if isinstance(reply, type):
            # A class called with each message would answer with an instance, never bytes.
            raise UsageError(
                f"{reply.__name__} is a class: pass a session class as session={reply.__name__}"
            )
        session = reply_session_factory(
            reply, greeting=greeting, report_error=_report_reply_failure
        )
        if transport == "udp":
            handle_datagram = datagram_handler(
                reply,
                max_message_bytes=limits.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES),
                report_error=_report_reply_failure,
            )
    elif transport == "udp":
        raise UsageError("a session serves TCP connections; over UDP, pass a reply function")
    config = ServerConfig(
        host=host,
        port=port,
        transport=cast(Transport, transport),  # checked against _TRANSPORTS above
        framing=framing,
        session_factory=session,
        datagram_handler=handle_datagram or handle_converter_datagram,
        **limits,
    )
    return serve_config(model, config)


__all__ = ["ServerHandle", "ServerLimits", "serve"]
