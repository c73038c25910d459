"""`socklab converter server|client`: the live-coded upper/lowercase converter (port 50000)."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Iterable, Iterator
from typing import assert_never

from socklab.apps.converter import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    decode_reply,
    exchange_datagrams,
    exchange_stream,
    exposure_note,
)
from socklab.cli.arguments import (
    add_framing,
    add_host_port,
    add_loop,
    add_model,
    add_udp_flag,
    non_negative_int,
    positive_int,
    positive_seconds,
)
from socklab.cli.environment import Environment
from socklab.cli.serving import wait_until_stopped
from socklab.cli.status import ExitStatus
from socklab.cli.tracing import add_trace_options, tracer_from_args
from socklab.clients.converter_client import DatagramConverterClient, StreamConverterClient
from socklab.errors import RemoteProtocolError, UsageError
from socklab.i18n import _, ngettext
from socklab.protocol.closing import CloseReason
from socklab.protocol.endpoints import format_endpoint
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.protocol.retransmission import (
    DEFAULT_WINDOW,
    Answered,
    RetransmissionStats,
    SentWithoutReply,
    Unanswered,
)
from socklab.runtimes import DEFAULT_RUNTIME, RUNTIMES, serve
from socklab.runtimes.config import (
    ConnectionClosed,
    ConnectionOpened,
    ConnectionRefusedBusy,
    DescriptorsExhausted,
    MemoryExhausted,
    ServerAlert,
    ServerConfig,
    ServerEvent,
    ThreadsExhausted,
)
from socklab.runtimes.connections import (
    BLOCKING_MAX_CLIENTS,
    EVENT_LOOP_MAX_CLIENTS,
    ClientLimits,
)
from socklab.runtimes.handle import ServerHandle
from socklab.tracing import Tracer

# One source for the defaults: the flags show what ServerConfig does.
SERVER_DEFAULTS = ServerConfig()


def configure(parser: argparse.ArgumentParser) -> None:
    roles = parser.add_subparsers(dest="role", metavar=_("ROLE"), required=True)

    server = roles.add_parser("server", help=_("serve U:/L:/C: requests"))
    _add_endpoint(server)
    add_model(
        server,
        choices=RUNTIMES,
        default=DEFAULT_RUNTIME,
        help=_("how one program serves many sockets (default: %(default)s)"),
    )
    add_loop(server, help=_("event loop of the asyncio model (default: uvloop where installed)"))
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
        default=None,
        help=_(
            "connections served at once; more get 'E:server busy' (default: {event_loops} for asyncio and selectors, {blocking} for threads; never more than the open-file limit allows)"
        ).format(event_loops=f"{EVENT_LOOP_MAX_CLIENTS:,}", blocking=f"{BLOCKING_MAX_CLIENTS:,}"),
    )
    server.add_argument(
        "--max-clients-per-host",
        type=positive_int,
        default=None,
        metavar="N",
        help=_(
            "connections served at once from one IP address; more get 'E:server busy' (default: no such bound; for a classroom server, e.g. 20)"
        ),
    )
    server.add_argument(
        "--idle-timeout",
        type=positive_seconds,
        default=SERVER_DEFAULTS.idle_timeout_s,
        help=_("close connections idle this many seconds (default: %(default)s)"),
    )
    server.add_argument(
        "--message-timeout",
        type=positive_seconds,
        default=SERVER_DEFAULTS.message_timeout_s,
        help=_("a begun message must be complete within this many seconds (default: %(default)s)"),
    )
    server.add_argument(
        "--write-timeout",
        type=positive_seconds,
        default=SERVER_DEFAULTS.write_timeout_s,
        help=_(
            "close a client that does not read its replies for this long (default: %(default)s)"
        ),
    )
    server.add_argument(
        "--shutdown-grace",
        type=positive_seconds,
        default=SERVER_DEFAULTS.shutdown_grace_s,
        help=_(
            "on Ctrl+C or SIGTERM, replies in flight get this many seconds to go out (default: %(default)s)"
        ),
    )
    server.add_argument(
        "--user-timeout",
        type=positive_seconds,
        default=None,
        metavar="S",
        help=_(
            "drop a peer whose data stays unacknowledged this many seconds (TCP_USER_TIMEOUT, Linux only; default: the kernel's, about 15 minutes)"
        ),
    )
    # Tests only: a tiny SO_RCVBUF forces the partial reads the robustness suite checks, a
    # small SO_SNDBUF makes replies to a slow reader wait in send() at a known size.
    server.add_argument(
        "--receive-buffer-bytes", type=positive_int, default=None, help=argparse.SUPPRESS
    )
    server.add_argument(
        "--send-buffer-bytes", type=positive_int, default=None, help=argparse.SUPPRESS
    )
    server.add_argument(
        "--verbose", "-v", action="store_true", help=_("print a line per connection")
    )
    add_trace_options(server)
    # graceful_stop: Ctrl+C and SIGTERM stop the server and it exits 0 (cli.serving).
    server.set_defaults(handler=run_server, graceful_stop=True)

    client = roles.add_parser("client", help=_("send requests and print the replies"))
    _add_endpoint(client)
    client.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        help=_("seconds to wait for each reply (default: %(default)s)"),
    )
    client.add_argument(
        "--retries",
        type=non_negative_int,
        metavar="N",
        help=_(
            "UDP: resend an unanswered request up to N times, matching replies by request id "
            "(needs socklab's server; without it, plain slide datagrams are sent)"
        ),
    )
    client.add_argument(
        "--stats",
        action="store_true",
        help=_("UDP: print the retries and losses seen at the end (on standard error)"),
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
    add_udp_flag(parser, help=_("use UDP datagrams instead of TCP"))
    add_host_port(
        parser,
        host_default=DEFAULT_HOST,
        port_default=DEFAULT_PORT,
        host_help=_("address (default: %(default)s)"),
        port_help=_("port (default: %(default)s)"),
    )
    add_framing(parser, help=_("how TCP messages are delimited (default: %(default)s)"))


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
                address=format_endpoint(host, port), model=model
            )
        )
    else:
        env.say(
            _(
                "Converter server listening on {address} (TCP, {framing} framing, model {model})"
            ).format(address=format_endpoint(host, port), framing=args.framing, model=model)
        )
    note = exposure_note(args.host)
    if note is not None:
        env.say(note)
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
                env.say(_("Connection from {peer}").format(peer=format_endpoint(*peer)))
            case ConnectionClosed(peer, reason):
                env.say(
                    _("Connection from {peer} closed ({reason})").format(
                        peer=format_endpoint(*peer), reason=describe_close_reason(reason)
                    )
                )
            case ConnectionRefusedBusy(peer):
                env.say(_("Refused {peer}: server busy").format(peer=format_endpoint(*peer)))

    if args.user_timeout is not None and not hasattr(socket, "TCP_USER_TIMEOUT"):
        raise UsageError(_("--user-timeout needs TCP_USER_TIMEOUT, which only Linux offers"))
    config = ServerConfig(
        host=args.host,
        port=args.port,
        transport=args.transport,
        framing=args.framing,
        max_message_bytes=args.max_message_bytes,
        max_clients=args.max_clients,
        max_clients_per_host=args.max_clients_per_host,
        idle_timeout_s=args.idle_timeout,
        message_timeout_s=args.message_timeout,
        write_timeout_s=args.write_timeout,
        event_loop=args.loop,
        workers=args.workers,
        shutdown_grace_s=args.shutdown_grace,
        user_timeout_s=args.user_timeout,
        receive_buffer_bytes=args.receive_buffer_bytes,
        send_buffer_bytes=args.send_buffer_bytes,
        observer=observe if args.verbose else None,
        alert=lambda alert: env.warn(describe_alert(alert)),
        tracer=tracer_from_args(args, env),
    )
    handle = serve(args.model, config)
    if args.verbose and handle.client_limits is not None:
        env.say(describe_client_limits(handle.client_limits, workers=args.workers))
    wait_until_stopped(handle, lambda: _announce_server(args, handle, env))
    stats = handle.stats
    env.say(
        _("Server stopped: {connections} connections, {requests} requests served.").format(
            connections=stats.connections_accepted, requests=stats.requests_served
        )
    )
    if args.verbose and args.transport == "tcp":
        env.say(
            _("Largest output queue for one client: {size:,} bytes.").format(
                size=stats.largest_output_queue_bytes
            )
        )
    return ExitStatus.OK


def describe_client_limits(limits: ClientLimits, *, workers: int = 1) -> str:
    """The -v line with the effective --max-clients, and what capped it."""
    line = _("Serving at most {clients:,} clients at once").format(clients=limits.max_clients)
    if workers > 1:
        line += _(" in each worker")
    if limits.capped_by_descriptors:
        line += _(
            " (asked for {requested:,}; the open-file limit of {limit:,} leaves room for no more)"
        ).format(requested=limits.requested, limit=limits.open_file_limit)
    if limits.max_clients_per_host is not None:
        line += _(", at most {per_host:,} from one address").format(
            per_host=limits.max_clients_per_host
        )
    return line + "."


def describe_close_reason(reason: CloseReason) -> str:
    """Why a connection closed, in a few words of the user's language (the `-v` line)."""
    match reason:
        case CloseReason.PEER_EOF:
            return _("the client closed it")
        case CloseReason.RESET:
            return _("reset or broken")
        case CloseReason.CLIENT_REQUESTED:
            return _("the client asked to close")
        case CloseReason.PROTOCOL_ERROR:
            return _("protocol error")
        case CloseReason.TOO_MANY_ERRORS:
            return _("too many bad requests in a row")
        case CloseReason.MESSAGE_TOO_LONG:
            return _("message too long")
        case CloseReason.TRUNCATED:
            return _("ended inside a message")
        case CloseReason.LOCAL:
            return _("closed by the server")
        case CloseReason.IDLE_TIMEOUT:
            return _("idle timeout")
        case CloseReason.MESSAGE_TIMEOUT:
            return _("message timeout")
        case CloseReason.WRITE_TIMEOUT:
            return _("write timeout: the replies were not read")
        case CloseReason.SERVER_STOPPING:
            return _("server stopping")
        case CloseReason.BUSY:
            return _("server busy")
        case CloseReason.OUT_OF_MEMORY:
            return _("server out of memory")
        case _:
            assert_never(reason)


def describe_alert(alert: ServerAlert) -> str:
    """One line for the operator about a shortage (rate-limited by the runtime)."""
    match alert:
        case DescriptorsExhausted(refused=refused, open_file_limit=limit, max_clients=clients):
            line = ngettext(
                "Out of file descriptors: {refused:,} client got 'server busy'.",
                "Out of file descriptors: {refused:,} clients got 'server busy'.",
                refused,
            ).format(refused=refused)
            if limit is None:
                return line + _(
                    " The system's file table is full (fs.file-max): close other programs or raise it."
                )
            return line + _(
                " The open-file limit of {limit:,} leaves room for {clients:,} clients at once; raise it (ulimit -n, or LimitNOFILE= for a systemd service) before starting the server."
            ).format(limit=limit, clients=clients)
        case ThreadsExhausted(refused=refused, detail=detail):
            return ngettext(
                "Could not start a thread for {refused:,} client ({detail}); it got 'server busy'.",
                "Could not start a thread for {refused:,} clients ({detail}); they got 'server busy'.",
                refused,
            ).format(refused=refused, detail=detail) + _(
                " The memory limit (ulimit -v) or the thread limit (ulimit -u) is reached: lower --max-clients or raise the limit."
            )
        case MemoryExhausted(clients=clients):
            return ngettext(
                "Out of memory while answering {clients:,} client; it got an 'E:' line and was closed.",
                "Out of memory while answering {clients:,} clients; each got an 'E:' line and was closed.",
                clients,
            ).format(clients=clients) + _(
                " Lower --max-clients or raise the memory limit (ulimit -v)."
            )
        case _:
            assert_never(alert)


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
        return _run_datagram_client(args, env, requests, interactive=interactive, tracer=tracer)
    if args.retries is not None or args.stats:
        raise UsageError(
            _("{flag} is for --udp: TCP retransmits lost data by itself.").format(
                flag="--retries" if args.retries is not None else "--stats"
            )
        )
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


def _run_datagram_client(
    args: argparse.Namespace,
    env: Environment,
    requests: Iterable[str],
    *,
    interactive: bool,
    tracer: Tracer | None,
) -> ExitStatus:
    with DatagramConverterClient(
        args.host, args.port, timeout_s=args.timeout, tracer=tracer
    ) as client:
        if args.retries is None:
            sent = answered = 0
            try:
                for reply in exchange_datagrams(client, requests):
                    sent += 1
                    if reply is not None:
                        answered += 1
                        env.say(reply)
            finally:
                if args.stats:
                    env.warn(
                        _(
                            "Stats: {sent} requests, {answered} answered; plain datagrams, no retries (--retries N resends lost ones)."
                        ).format(sent=sent, answered=answered)
                    )
            return ExitStatus.OK
        # A person typing sees each answer before the next line is read: one request at a time.
        window = 1 if interactive and env.stdin_isatty else DEFAULT_WINDOW
        messages = (request.encode("utf-8") for request in requests)
        try:
            for result in client.exchange_reliably(messages, retries=args.retries, window=window):
                match result:
                    case Answered(reply=answer):
                        env.say(decode_reply(answer))
                    case Unanswered(message=message, attempts=attempts):
                        return _report_unanswered(env, client, message, attempts)
                    case SentWithoutReply():
                        pass
                    case _:
                        assert_never(result)
        finally:
            if args.stats and client.stats is not None:
                env.warn(describe_retransmission_stats(client.stats))
    return ExitStatus.OK


def _report_unanswered(
    env: Environment, client: DatagramConverterClient, message: bytes, attempts: int
) -> ExitStatus:
    stats = client.stats
    if stats is not None and stats.replies_without_id and not stats.answered:
        raise RemoteProtocolError(
            _(
                "the server's replies carry no request id, so they cannot be matched; it does not know the id extension. Run without --retries to send plain datagrams."
            )
        )
    env.warn(
        _(
            "No answer to '{request}' from {address} after {attempts} sends within {timeout} s: the requests or the replies were lost. Try a longer --timeout or more --retries."
        ).format(
            request=decode_reply(message[:60]),
            address=format_endpoint(client.host, client.port),
            attempts=attempts,
            timeout=f"{client.timeout_s:g}",
        )
    )
    return ExitStatus.NETWORK


def describe_retransmission_stats(stats: RetransmissionStats) -> str:
    rtt = (
        _("{ms} ms").format(ms=f"{stats.smoothed_rtt_s * 1000:.1f}")
        if stats.smoothed_rtt_s is not None
        else "-"
    )
    return _(
        "Stats: {requests} requests, {answered} answered, {unanswered} unanswered; {sent} datagrams sent, {retries} retries; losses seen {losses}, duplicate replies {duplicates}, reordered replies {reordered}, stray replies {stray}; smoothed round trip {rtt}"
    ).format(
        requests=stats.requests,
        answered=stats.answered,
        unanswered=stats.unanswered,
        sent=stats.datagrams_sent,
        retries=stats.retries,
        losses=stats.losses_seen,
        duplicates=stats.duplicate_replies,
        reordered=stats.reordered_replies,
        stray=stats.stray_replies + stats.replies_without_id,
        rtt=rtt,
    )
