"""socklab: a socket-programming toolkit for learning, teaching and debugging TCP/UDP protocols.

As a library (docs/LIBRARY.md):

    import socklab

    with socklab.serve(lambda message: message.upper()) as server:
        with socklab.connect(*server.address) as client:
            assert client.request(b"hello") == b"HELLO"

The names in `__all__` are the public, typed API: `serve` and `connect`, the framers, the
`Session` protocol and the sessions socklab ships, and the error tree. What is not exported is
internal and may change. Layers (dependencies point down): cli -> apps / tools / clients ->
runtimes -> protocol.

The exports are loaded lazily, on first use (websockets does the same), so `import socklab`
loads no socket, selector or event-loop module: a program that only uses the sans-I/O core
(`socklab.protocol`) never pays for the runtimes. Type checkers read the imports below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Each public name and the module that defines it (or re-exports it, for the core).
_LAZY_EXPORTS: dict[str, str] = {
    # the sans-I/O core
    "CloseReason": "socklab.protocol",
    "ConverterSession": "socklab.protocol",
    "FrameTooLong": "socklab.protocol",
    "Framer": "socklab.protocol",
    "LengthPrefixFramer": "socklab.protocol",
    "LineFramer": "socklab.protocol",
    "RawFramer": "socklab.protocol",
    "ReplySession": "socklab.protocol",
    "Session": "socklab.protocol",
    "SessionFactory": "socklab.protocol",
    "TruncatedFrame": "socklab.protocol",
    "make_framer": "socklab.protocol",
    # serving and connecting
    "ServerHandle": "socklab.runtimes.library",
    "ServerLimits": "socklab.runtimes.library",
    "serve": "socklab.runtimes.library",
    "Client": "socklab.clients.message_client",
    "connect": "socklab.clients.message_client",
    # the error tree
    "AddressInUseError": "socklab.errors",
    "AddressNotAvailableError": "socklab.errors",
    "BrokenResourceError": "socklab.errors",
    "ClosedResourceError": "socklab.errors",
    "HostNotFoundError": "socklab.errors",
    "LocalProtocolError": "socklab.errors",
    "NetworkError": "socklab.errors",
    "NetworkTimeoutError": "socklab.errors",
    "PermissionDeniedError": "socklab.errors",
    "ProtocolError": "socklab.errors",
    "RefusedError": "socklab.errors",
    "RemoteProtocolError": "socklab.errors",
    "ReplyTimeoutError": "socklab.errors",
    "ResourceError": "socklab.errors",
    "SocklabError": "socklab.errors",
    "UnreachableError": "socklab.errors",
    "UsageError": "socklab.errors",
}

# Spelt out, not computed, so that type checkers and linters read it.
__all__ = [
    "AddressInUseError",
    "AddressNotAvailableError",
    "BrokenResourceError",
    "Client",
    "CloseReason",
    "ClosedResourceError",
    "ConverterSession",
    "FrameTooLong",
    "Framer",
    "HostNotFoundError",
    "LengthPrefixFramer",
    "LineFramer",
    "LocalProtocolError",
    "NetworkError",
    "NetworkTimeoutError",
    "PermissionDeniedError",
    "ProtocolError",
    "RawFramer",
    "RefusedError",
    "RemoteProtocolError",
    "ReplySession",
    "ReplyTimeoutError",
    "ResourceError",
    "ServerHandle",
    "ServerLimits",
    "Session",
    "SessionFactory",
    "SocklabError",
    "TruncatedFrame",
    "UnreachableError",
    "UsageError",
    "__version__",
    "connect",
    "make_framer",
    "serve",
]

if TYPE_CHECKING:
    from socklab.clients.message_client import Client, connect
    from socklab.errors import (
        AddressInUseError,
        AddressNotAvailableError,
        BrokenResourceError,
        ClosedResourceError,
        HostNotFoundError,
        LocalProtocolError,
        NetworkError,
        NetworkTimeoutError,
        PermissionDeniedError,
        ProtocolError,
        RefusedError,
        RemoteProtocolError,
        ReplyTimeoutError,
        ResourceError,
        SocklabError,
        UnreachableError,
        UsageError,
    )
    from socklab.protocol import (
        CloseReason,
        ConverterSession,
        Framer,
        FrameTooLong,
        LengthPrefixFramer,
        LineFramer,
        RawFramer,
        ReplySession,
        Session,
        SessionFactory,
        TruncatedFrame,
        make_framer,
    )
    from socklab.runtimes.library import ServerHandle, ServerLimits, serve
else:
    # Hidden from type checkers (they take the imports above), so that a misspelt name is an
    # error for them instead of an attribute of type object.

    def __getattr__(name: str) -> object:
        """Import the module that defines `name` on first use, then keep the name here."""
        module_name = _LAZY_EXPORTS.get(name)
        if module_name is None:
            raise AttributeError(f"module 'socklab' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module_name), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        """The module's own names and every lazy export, for dir() and completion."""
        return sorted({*globals(), *_LAZY_EXPORTS})
