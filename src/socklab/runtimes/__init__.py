"""How one program waits for many sockets: the RUNTIMES registry.

Every runtime has the same entry point, `serve(ServerConfig) -> ServerHandle`, and differs only
in how it dispatches a connection to the session `config.session_factory` makes (any
`socklab.protocol.session.Session`; the converter's by default). The CLI's `--model` choices
and the parametrized conformance tests both read this registry, so a new runtime is served and
tested by adding one entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from socklab.runtimes.config import ServerConfig, Transport
from socklab.runtimes.connections import BLOCKING_MAX_CLIENTS, EVENT_LOOP_MAX_CLIENTS
from socklab.runtimes.handle import ServerHandle, ServerStats


@dataclass(frozen=True, slots=True)
class RuntimeInfo:
    """One concurrency model: its module and what it serves."""

    name: str
    module: str  # imported when the model serves: a server loads its own model's code only
    transports: frozenset[Transport]
    summary: str  # one English line; the CLI translates it
    # --max-clients when not given (capped by the open-file limit at start)
    default_max_clients: int = BLOCKING_MAX_CLIENTS
    # The handle serves a connection this program dialled too (`ServerHandle.adopt()`): what a
    # peer in a mesh (the chat) needs.
    adopts_connections: bool = False

    @property
    def serve(self) -> Callable[[ServerConfig], ServerHandle]:
        serve: Callable[[ServerConfig], ServerHandle] = importlib.import_module(
            f"socklab.runtimes.{self.module}"
        ).serve
        return serve


RUNTIMES: dict[str, RuntimeInfo] = {
    "asyncio": RuntimeInfo(
        "asyncio",
        "asyncio_loop",
        frozenset({"tcp", "udp"}),
        "one thread, an event loop (uvloop where installed), a Protocol per connection",
        EVENT_LOOP_MAX_CLIENTS,
        adopts_connections=True,
    ),
    "iterative": RuntimeInfo(
        "iterative",
        "iterative",
        frozenset({"tcp", "udp"}),
        "one client at a time, as on the slides; the others wait in the listen backlog",
    ),
    "selectors": RuntimeInfo(
        "selectors",
        "selector_loop",
        frozenset({"tcp", "udp"}),
        "one thread, non-blocking sockets and selectors.DefaultSelector",
        EVENT_LOOP_MAX_CLIENTS,
        adopts_connections=True,
    ),
    "threads": RuntimeInfo(
        "threads",
        "threaded",
        frozenset({"tcp"}),
        "a thread per connection, up to --max-clients",
        adopts_connections=True,
    ),
}

DEFAULT_RUNTIME = "asyncio"


def serve(model: str, config: ServerConfig) -> ServerHandle:
    """Start a server of `model` with `config`; the handle is already serving.

    With `config.workers` > 1 the handle supervises that many processes sharing the port.
    """
    info = RUNTIMES[model]
    if config.transport not in info.transports:
        from socklab.errors import UsageError
        from socklab.i18n import lazy_gettext

        raise UsageError(
            lazy_gettext(
                "the {model} model does not serve {transport}",
                model=model,
                transport=config.transport.upper(),
            )
        )
    if config.workers > 1:
        from socklab.runtimes.workers import WorkerPool

        return WorkerPool(model, config)
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
