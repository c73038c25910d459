"""The whole socklab exception tree, in one place.

    SocklabError
    ├── UsageError                 bad options or arguments from the user
    ├── ProtocolError              someone broke the converter/chat rules
    │   ├── LocalProtocolError     our own code misused an API (a bug: raise loudly)
    │   └── RemoteProtocolError    the peer sent something the protocol forbids
    └── NetworkError               an OSError, translated once at the boundary (runtimes.oserrors)
        ├── RefusedError           nobody listens at the address
        ├── AddressInUseError          the port is taken (carries the port and transport)
        ├── AddressNotAvailableError   bind() to an address that is not this computer's
        ├── PermissionDeniedError      privileged port, raw socket without rights, ...
        ├── HostNotFoundError          name resolution failed
        ├── NetworkTimeoutError        a blocking call ran out of time
        │   └── ReplyTimeoutError      connected, but no whole message came (what did)
        ├── UnreachableError           no route to the host or network
        └── ResourceError              a socket that no longer works
            ├── ClosedResourceError    closed by us (using it is our bug)
            └── BrokenResourceError    broken by the peer or the network (reset, pipe)

Each error carries the numbers a message needs (host, port, limits); the CLI turns each class
into one translated line with a next step and an exit status, in one place. This module imports
nothing, so the sans-I/O core can raise these without loading `socket`.
"""

from __future__ import annotations


class SocklabError(Exception):
    """Base of every error socklab raises on purpose."""


class UsageError(SocklabError):
    """The user's options or arguments cannot work; the message says which and why."""


class ProtocolError(SocklabError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """Our own code used a protocol object out of order: a bug, never the peer's fault."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes the protocol does not allow."""


class NetworkError(SocklabError):
    """An operating-system level network failure, with the address it concerned."""

    def __init__(self, message: str, *, host: str | None = None, port: int | None = None):
        super().__init__(message)
        self.host = host
        self.port = port


class RefusedError(NetworkError):
    """Nothing listens at host:port (RST in reply to SYN, or ICMP port unreachable for UDP)."""


class AddressInUseError(NetworkError):
    """bind() failed because another socket holds the port."""

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        port: int | None = None,
        transport: str | None = None,
    ):
        super().__init__(message, host=host, port=port)
        # "tcp" or "udp" where a server bound the port: the CLI then names the program holding it.
        self.transport = transport


class AddressNotAvailableError(NetworkError):
    """bind() to an IP address that no interface of this computer has (EADDRNOTAVAIL)."""


class PermissionDeniedError(NetworkError):
    """The OS refused: a port below 1024 without privileges, raw sockets without CAP_NET_RAW."""


class HostNotFoundError(NetworkError):
    """The host name did not resolve."""


class NetworkTimeoutError(NetworkError):
    """A blocking call (connect, recv) did not complete within its timeout."""


class ReplyTimeoutError(NetworkTimeoutError):
    """Connected, but no whole message from the server within `timeout_s`, with what did come:
    `partial_bytes` of a message the reader's `framing` could not end (0: not a byte), and
    whether the greeting was awaited (`awaiting_greeting`). The numbers tell a framing
    mismatch (bytes without a newline) from a server busy with another client (no byte)."""

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        port: int | None = None,
        timeout_s: float,
        framing: str,
        partial_bytes: int,
        awaiting_greeting: bool,
    ):
        super().__init__(message, host=host, port=port)
        self.timeout_s = timeout_s
        self.framing = framing
        self.partial_bytes = partial_bytes
        self.awaiting_greeting = awaiting_greeting


class UnreachableError(NetworkError):
    """No route to the host or network."""


class ResourceError(NetworkError):
    """A socket that can no longer be used."""


class ClosedResourceError(ResourceError):
    """We closed it ourselves and then used it again."""


class BrokenResourceError(ResourceError):
    """The peer or the network broke the connection (reset, broken pipe, aborted)."""
