"""How one program waits for many sockets: the RUNTIMES registry.

Every runtime has the same entry point, `serve(ServerConfig) -> ServerHandle`, and differs only
in how it dispatches a connection to the shared `ConverterSession`. The CLI's `--model` choices
and the parametrized conformance tests both read this registry, so a new runtime is served and
tested by adding one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from socklab.runtimes import asyncio_loop
from socklab.runtimes.config import ServerConfig
from socklab.runtimes.handle import ServerHandle, ServerStats


@dataclass(frozen=True, slots=True)
class RuntimeInfo:
    name: str
    serve: Callable[[ServerConfig], ServerHandle]
    transports: frozenset[str]
    summary: str  # one English line; the CLI translates it


RUNTIMES: dict[str, RuntimeInfo] = {
    "asyncio": RuntimeInfo(
        "asyncio",
        asyncio_loop.serve,
        frozenset({"tcp", "udp"}),
        "one thread, an event loop (uvloop where installed), a Protocol per connection",
    ),
}

DEFAULT_RUNTIME = "asyncio"


def serve(model: str, config: ServerConfig) -> ServerHandle:
    """Start the converter server of `model` with `config`; the handle is already serving."""
    info = RUNTIMES[model]
    if config.transport not in info.transports:
        from socklab.errors import UsageError

        raise UsageError(f"the {model} model does not serve {config.transport.upper()}")
    return info.serve(config)


__all__ = [
    "DEFAULT_RUNTIME",
    "RUNTIMES",
    "RuntimeInfo",
    "ServerConfig",
    "ServerHandle",
    "ServerStats",
    "serve",
]
