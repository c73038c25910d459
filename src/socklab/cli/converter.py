"""`socklab converter server|client`: the live-coded upper/lowercase converter (port 50000)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from socklab.apps.converter import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    exchange_datagrams,
    exchange_stream,
    is_exposed,
)
from socklab.cli.arguments import port_number, positive_int, positive_seconds
from socklab.cli.environment import Environment
from socklab.cli.serving import wait_until_interrupted
from socklab.cli.status import ExitStatus
from socklab.cli.tracing import add_trace_options, tracer_from_args
from socklab.clients.converter_client import DatagramConverterClient, StreamConverterClient
from socklab.errors import UsageError
from socklab.i18n import _
from socklab.protocol.framing import FRAMINGS
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.runtimes import DEFAULT_RUNTIME, RUNTIMES, serve
from socklab.runtimes.config import (
    ConnectionClosed,
    ConnectionOpened,
    ConnectionRefusedBusy,
    ServerConfig,
    ServerEvent,
)
from socklab.runtimes.handle import ServerHandle


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "converter", help=_("the upper/lowercase converter (port 50000), TCP and UDP")
    )
    roles = parser.add_subparsers(dest="role", metavar=_("ROLE"), required=True)

    server = roles.add_parser("server", help=_("serve U:/L:/C: requests"))
    _add_endpoint(server)
    server.add_argument(
        "--model",
        choices=sorted(RUNTIMES),
        default=DEFAULT_RUNTIME,
        help=_("how one program serves many sockets (default: %(default)s)"),
    )
    server.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help=_("event loop of the asyncio model (default: uvloop where installed)"),
    )
    server.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help=_(
            "processes sharing the port with SO_REUSEPORT, to use several cores (Linux, macOS; default: %(default)s)"
        ),
    )
    server.add_argument(
        "--max-message-bytes",
        type=positive_int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help=_("longest message accepted (default: %(default)s)"),
    )
    server.add_argument(
        "--max-clients",
        type=positive_int,
        default=1024,
        help=_("connections served at once; more get 'E:server busy' (default: %(default)s)"),
    )
    server.add_argument(
        "--idle-timeout",
        type=positive_seconds,
        default=300.0,
        help=_("close connections idle this many seconds (default: %(default)s)"),
    )
    server.add_argument(
        "--message-timeout",
        type=positive_seconds,
        default=30.0,
        help=_("a begun message must be complete within this many seconds (default: %(default)s)"),
    )
    server.add_argument(
        "--write-timeout",
        type=positive_seconds,
        default=30.0,
        help=_(
            "close a client that does not read its replies for this long (default: %(default)s)"
        ),
    )
    server.add_argument(
        "--shutdown-grace",
        type=positive_seconds,
        default=3.0,
        help=_(
            "on Ctrl+C or SIGTERM, replies in flight get this many seconds to go out (default: %(default)s)"
        ),
    )
    server.add_argument(
        "--verbose", "-v", action="store_true", help=_("print a line per connection")
    )
    add_trace_options(server)
    server.set_defaults(handler=run_server)

    client = roles.add_parser("client", help=_("send requests and print the replies"))
    _add_endpoint(client)
    client.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        help=_("seconds to wait for each reply (default: %(default)s)"),
    )
    client.add_argument(
        "requests",
        nargs="*",
        metavar="REQUEST",
        help=_("requests such as U:hello; without any, lines are read from standard input"),
    )
    add_trace_options(client)
    client.set_defaults(handler=run_client)


def _add_endpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--udp",
        dest="transport",
        action="store_const",
        const="udp",
        default="tcp",
        help=_("use UDP datagrams instead of TCP"),
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=_("address (default: %(default)s)"))
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=_("port (default: %(default)s)")
    )
    parser.add_argument(
        "--framing",
        choices=sorted(FRAMINGS),
        default="line",
        help=_("how TCP messages are delimited (default: %(default)s)"),
    )


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _announce_server(args: argparse.Namespace, handle: ServerHandle, env: Environment) -> None:
    """The "listening on" line (tests and scripts parse it) and how to stop."""
    host, port = handle.address
    model = args.model
    loop_name = getattr(handle, "loop_name", None)
    if loop_name:
        model = f"{model}/{loop_name}"
    if args.workers > 1:
        model = _("{model}, {workers} workers").format(model=model, workers=args.workers)
    if args.transport == "udp":
        env.say(
            _("Converter server listening on {address} (UDP, model {model})").format(
                address=_format_address(host, port), model=model
            )
        )
    else:
        env.say(
            _(
                "Converter server listening on {address} (TCP, {framing} framing, model {model})"
            ).format(address=_format_address(host, port), framing=args.framing, model=model)
        )
    if is_exposed(args.host):
        env.say(
            _(
                "Note: listening on all interfaces, so other computers can connect. Use --host 127.0.0.1 to stay local."
            )
        )
    env.say(_("Press Ctrl+C to stop."))


def run_server(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.loop != "auto" and args.model != "asyncio":
        raise UsageError(
            _("--loop {loop} applies to the asyncio model only, not to --model {model}").format(
                loop=args.loop, model=args.model
            )
        )

    def observe(event: ServerEvent) -> None:
        match event:
            case ConnectionOpened(peer):
                env.say(_("Connection from {peer}").format(peer=_format_address(*peer)))
            case ConnectionClosed(peer, reason):
                env.say(
                    _("Connection from {peer} closed ({reason})").format(
                        peer=_format_address(*peer), reason=reason
                    )
                )
            case ConnectionRefusedBusy(peer):
                env.say(_("Refused {peer}: server busy").format(peer=_format_address(*peer)))

    config = ServerConfig(
        host=args.host,
        port=args.port,
        transport=args.transport,
        framing=args.framing,
        max_message_bytes=args.max_message_bytes,
        max_clients=args.max_clients,
        idle_timeout_s=args.idle_timeout,
        message_timeout_s=args.message_timeout,
        write_timeout_s=args.write_timeout,
        event_loop=args.loop,
        workers=args.workers,
        shutdown_grace_s=args.shutdown_grace,
        observer=observe if args.verbose else None,
        tracer=tracer_from_args(args, env),
    )
    handle = serve(args.model, config)
    try:
        _announce_server(args, handle, env)
    except KeyboardInterrupt:
        # SIGTERM or Ctrl+C right after the start (a script stopping us at once): still a
        # clean stop with status 0, not "Interrupted".
        handle.stop()
    else:
        wait_until_interrupted(handle)
    stats = handle.stats
    env.say(
        _("Server stopped: {connections} connections, {requests} requests served.").format(
            connections=stats.connections_accepted, requests=stats.requests_served
        )
    )
    return ExitStatus.OK


def _stdin_requests(env: Environment) -> Iterator[str]:
    for line in env.stdin:
        line = line.rstrip("\r\n")
        if line:
            yield line


def run_client(args: argparse.Namespace, env: Environment) -> ExitStatus:
    interactive = not args.requests
    tracer = tracer_from_args(args, env)
    requests = args.requests or _stdin_requests(env)
    if args.transport == "udp":
        with DatagramConverterClient(
            args.host, args.port, timeout_s=args.timeout, tracer=tracer
        ) as datagram_client:
            for reply in exchange_datagrams(datagram_client, requests):
                if reply is not None:
                    env.say(reply)
        return ExitStatus.OK
    with StreamConverterClient(
        args.host, args.port, framing=args.framing, timeout_s=args.timeout, tracer=tracer
    ) as client:
        if interactive:
            env.say(client.greeting.decode("utf-8", errors="replace"))
        for reply in exchange_stream(client, requests):
            if reply is None:
                break
            env.say(reply)
    return ExitStatus.OK
