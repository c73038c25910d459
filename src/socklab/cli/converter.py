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
    exposure_note,
)
from socklab.apps.peer_lines import PeerLineLimiter, summarize_datagrams, summarize_requests
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
from socklab.cli.logfile import add_log_option
from socklab.cli.serving import wait_until_stopped
from socklab.cli.status import ExitStatus
from socklab.cli.tracing import add_trace_options, count_bytes, tracer_from_args
from socklab.clients.converter_client import DatagramConverterClient, StreamConverterClient
from socklab.errors import NetworkTimeoutError, RemoteProtocolError, UsageError
from socklab.i18n import _, format_count, format_number, ngettext
from socklab.protocol.closing import CloseReason
from socklab.protocol.converter import (
    CLOSE,
    ERROR_PREFIX,
    LOWER,
    UPPER,
    CloseRequest,
    ErrorReply,
    handle_request,
    split_request_id,
)
from socklab.protocol.endpoints import format_endpoint
from socklab.protocol.escaping import escape_for_terminal
from socklab.protocol.framing import describe_framing
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.protocol.reflection import Silence, answer_datagram
from socklab.protocol.retransmission import (
    DEFAULT_WINDOW,
    Answered,
    RetransmissionStats,
    SentWithoutReply,
    Unanswered,
)
from socklab.protocol.session import RequestHandled
from socklab.runtimes import DEFAULT_RUNTIME, RUNTIMES, serve
from socklab.runtimes.config import (
    ConnectionClosed,
    ConnectionOpened,
    ConnectionRefusedBusy,
    DatagramAnswered,
    DatagramUnanswered,
    DescriptorsExhausted,
    MemoryExhausted,
    MessageStalled,
    RequestServed,
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
# The client's wait for a reply when --timeout is not given.
DEFAULT_CLIENT_TIMEOUT_S = 5.0


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
        ).format(
            event_loops=format_number(EVENT_LOOP_MAX_CLIENTS),
            blocking=format_number(BLOCKING_MAX_CLIENTS),
        ),
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
        "--verbose",
        "-v",
        action="store_true",
        help=_(
            "print a line per connection and per request (with --udp per datagram), and name a message left without its newline"
        ),
    )
    add_trace_options(server)
    add_log_option(server)
    # graceful_stop: Ctrl+C and SIGTERM stop the server and it exits 0 (cli.serving).
    server.set_defaults(handler=run_server, graceful_stop=True)

    client = roles.add_parser(
        "client",
        help=_("send requests and print the replies"),
        epilog=_(
            "Standard output holds one line per reply, whether the requests come as arguments or through a pipe; a person typing at a terminal sees the server's greeting first. Exit status: 0 every request answered; 1 a request got an 'E:' reply; 2 bad options, or (--udp) a request that is no converter command; 3 no connection, no answer in time, or the server closed the connection early or refused to serve (busy); 4 the server broke the protocol."
        ),
    )
    _add_endpoint(client)
    client.add_argument(
        "--timeout",
        type=positive_seconds,
        default=None,
        metavar="S",
        help=_(
            "seconds to wait for each reply; with --retries, for each attempt, as dig +time and snmpget -t count (default: {seconds}; with --retries, a timer that adapts to the round trip, RFC 6298, giving up when the retries are spent and at least {seconds} s have passed)"
        ).format(seconds=format_number(DEFAULT_CLIENT_TIMEOUT_S, decimals=None)),
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
        "--send-anyway",
        action="store_true",
        help=_(
            "UDP: send requests that are no converter command (the server drops its error reply)"
        ),
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
            ).format(
                address=format_endpoint(host, port),
                framing=describe_framing(args.framing),
                model=model,
            )
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

    # -v names each request (TCP) and each datagram (UDP, with why one is left unanswered),
    # a few lines a second at most: a benchmark against a -v server prints a summary a second.
    datagram_lines = PeerLineLimiter(env.say, summarize_datagrams)
    request_lines = PeerLineLimiter(env.say, summarize_requests)

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
            case RequestServed(peer, handled):
                request_lines.offer(peer, lambda: describe_request(peer, handled))
            case MessageStalled(peer, buffered, held_s):
                env.say(describe_stalled_message(peer, buffered, held_s, args.framing))
            case DatagramUnanswered(peer, request, why):
                datagram_lines.offer(peer, lambda: describe_unanswered_datagram(peer, request, why))
            case DatagramAnswered(peer, request, reply):
                datagram_lines.offer(peer, lambda: describe_answered_datagram(peer, request, reply))

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
    try:
        wait_until_stopped(handle, lambda: _announce_server(args, handle, env))
    finally:
        request_lines.flush()
        datagram_lines.flush()
    stats = handle.stats
    env.say(
        _("Server stopped: {connections}, {requests} served.").format(
            connections=format_count(
                "{count} connection", "{count} connections", stats.connections_accepted
            ),
            requests=format_count("{count} request", "{count} requests", stats.requests_served),
        )
    )
    if args.verbose and args.transport == "tcp":
        env.say(
            _("Largest output queue for one client: {size}.").format(
                size=format_count("{count} byte", "{count} bytes", stats.largest_output_queue_bytes)
            )
        )
    return ExitStatus.OK


def describe_request(peer: tuple[str, int], handled: RequestHandled) -> str:
    """The -v line for one request over TCP: its command, its size, the reply's or the `E:`."""
    values = {
        "peer": format_endpoint(*peer),
        "command": escape_for_terminal(handled.command, quoted=True),
        "bytes_in": count_bytes(handled.bytes_in),
        "bytes_out": count_bytes(handled.bytes_out),
        "error": escape_for_terminal(handled.error or b"", max_bytes=_SHOWN_BYTES, quoted=True),
    }
    if handled.closes:
        return _("Request from {peer}: {command}, {bytes_in} in: close requested").format(**values)
    if not handled.command:
        # A message refused before it was read whole (over --max-message-bytes).
        return _("Request from {peer}: {bytes_in} in, sent {error}").format(**values)
    if handled.error is not None:
        return _("Request from {peer}: {command}, {bytes_in} in, sent {error}").format(**values)
    return _("Request from {peer}: {command}, {bytes_in} in, {bytes_out} out").format(**values)


def describe_stalled_message(
    peer: tuple[str, int], buffered: int, held_s: float, framing: str
) -> str:
    """The -v line for a message begun and left unfinished: the framing mismatch named."""
    values = {
        "peer": format_endpoint(*peer),
        "bytes": format_number(buffered),
        "seconds": format_number(held_s, None),
    }
    if framing == "length":
        return ngettext(
            "From {peer}: {bytes} byte of a length-prefixed message still incomplete after {seconds} s: a client without length framing? see --framing line",
            "From {peer}: {bytes} bytes of a length-prefixed message still incomplete after {seconds} s: a client without length framing? see --framing line",
            buffered,
        ).format(**values)
    return ngettext(
        "From {peer}: {bytes} byte without '\\n' after {seconds} s: a client without line framing? see --framing raw",
        "From {peer}: {bytes} bytes without '\\n' after {seconds} s: a client without line framing? see --framing raw",
        buffered,
    ).format(**values)


def describe_answered_datagram(peer: tuple[str, int], request: bytes, reply: bytes) -> str:
    """The -v line for a datagram the UDP server answered."""
    return _("From {peer}: {request} ({request_bytes}) answered {reply} ({reply_bytes})").format(
        peer=format_endpoint(*peer),
        request=escape_for_terminal(request, max_bytes=_SHOWN_BYTES, quoted=True, name_size=False),
        request_bytes=count_bytes(len(request)),
        reply=escape_for_terminal(reply, max_bytes=_SHOWN_BYTES, quoted=True, name_size=False),
        reply_bytes=count_bytes(len(reply)),
    )


def describe_unanswered_datagram(peer: tuple[str, int], request: bytes, why: Silence) -> str:
    """The -v line for a datagram the UDP server did not answer, with the reason."""
    match why:
        case Silence.NO_REPLY:
            _id, message = split_request_id(request)
            reply = handle_request(message)
            if isinstance(reply, CloseRequest):
                reason = _("C: has no reply over UDP, where there is no connection to close")
            else:
                payload = reply.payload if isinstance(reply, ErrorReply) else reply
                reason = _(
                    "its reply {reply} ({reply_size}) would be longer than the request ({request_size}), and no UDP reply is, so that no one can use the server to amplify traffic"
                ).format(
                    reply=escape_for_terminal(
                        payload, max_bytes=_SHOWN_BYTES, quoted=True, name_size=False
                    ),
                    reply_size=format_count(
                        "{count} byte", "{count} bytes", len(_id) + len(payload)
                    ),
                    request_size=format_count("{count} byte", "{count} bytes", len(request)),
                )
        case Silence.EMPTY:
            reason = _("an empty datagram")
        case Silence.SYSTEM_PORT:
            reason = _("its source port is below 1024, where standard services answer")
        case Silence.ERROR:
            reason = _("it is an error reply, and no error is answered")
        case Silence.ECHO:
            reason = _("the reply would equal the request")
        case _:
            assert_never(why)
    return _("From {peer}: {request} not answered: {why}.").format(
        peer=format_endpoint(*peer),
        request=escape_for_terminal(request, max_bytes=_SHOWN_BYTES, quoted=True),
        why=reason,
    )


def describe_client_limits(limits: ClientLimits, *, workers: int = 1) -> str:
    """The -v line with the effective --max-clients, and what capped it."""
    line = ngettext(
        "Serving at most {clients} client at once",
        "Serving at most {clients} clients at once",
        limits.max_clients,
    ).format(clients=format_number(limits.max_clients))
    if workers > 1:
        line += _(" in each worker")
    if limits.capped_by_descriptors:
        line += _(
            " (asked for {requested}; the open-file limit of {limit} leaves room for no more)"
        ).format(
            requested=format_number(limits.requested),
            limit=format_number(limits.open_file_limit or 0),
        )
    if limits.max_clients_per_host is not None:
        line += _(", at most {per_host} from one address").format(
            per_host=format_number(limits.max_clients_per_host)
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
                "Out of file descriptors: {refused} client got 'server busy'.",
                "Out of file descriptors: {refused} clients got 'server busy'.",
                refused,
            ).format(refused=format_number(refused))
            if limit is None:
                return line + _(
                    " The system's file table is full (fs.file-max): close other programs or raise it."
                )
            return line + ngettext(
                " The open-file limit of {limit} leaves room for {clients} client at once; raise it (ulimit -n, or LimitNOFILE= for a systemd service) before starting the server.",
                " The open-file limit of {limit} leaves room for {clients} clients at once; raise it (ulimit -n, or LimitNOFILE= for a systemd service) before starting the server.",
                clients,
            ).format(limit=format_number(limit), clients=format_number(clients))
        case ThreadsExhausted(refused=refused, detail=detail):
            return ngettext(
                "Could not start a thread for {refused} client ({detail}); it got 'server busy'.",
                "Could not start a thread for {refused} clients ({detail}); they got 'server busy'.",
                refused,
            ).format(refused=format_number(refused), detail=detail) + _(
                " The memory limit (ulimit -v) or the thread limit (ulimit -u) is reached: lower --max-clients or raise the limit."
            )
        case MemoryExhausted(clients=clients):
            return ngettext(
                "Out of memory while answering {clients} client; it got an 'E:' line and was closed.",
                "Out of memory while answering {clients} clients; each got an 'E:' line and was closed.",
                clients,
            ).format(clients=format_number(clients)) + _(
                " Lower --max-clients or raise the memory limit (ulimit -v)."
            )
        case _:
            assert_never(alert)


def _stdin_requests(env: Environment) -> Iterator[str]:
    for line in env.stdin:
        line = line.rstrip("\r\n")
        if line:
            yield line


# Replies and the greeting shown on the terminal are cut here in the one-line messages.
_SHOWN_BYTES = 60
# The slides' UDP server reads recvfrom(2048): a longer datagram is cut off there (socklab's
# `upper` server says so with -v) and, on a server that notices, not answered.
_SLIDES_DATAGRAM_BYTES = 2048
_COMMANDS = (UPPER, LOWER, CLOSE)


def _show(data: bytes) -> str:
    return escape_for_terminal(data, max_bytes=_SHOWN_BYTES)


def describe_unknown_command(request: bytes) -> str | None:
    """Why the converter would refuse `request` as a command, with a hint; None if it knows it."""
    command = request[:2]
    if command in _COMMANDS:
        return None
    if command.upper() in _COMMANDS:
        return _(
            "'{command}' is not a converter command: did you mean '{suggestion}'? (--send-anyway sends it as it is)"
        ).format(command=_show(command), suggestion=command.upper().decode())
    return _(
        "'{request}' is not a converter request: a request starts with U:, L: or C:. (--send-anyway sends it as it is)"
    ).format(request=_show(request))


def run_client(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.port == 0:
        raise UsageError(
            _(
                "port 0 cannot be dialled: a server given port 0 gets a free port from the system, and its 'listening on' line names it. Use that port."
            )
        )
    interactive = not args.requests
    tracer = tracer_from_args(args, env)
    requests: Iterable[str] = args.requests or _stdin_requests(env)
    if args.transport == "udp":
        if args.requests and not args.send_anyway:
            for request in args.requests:
                refusal = describe_unknown_command(request.encode("utf-8"))
                if refusal is not None:
                    raise UsageError(refusal)
        return _run_datagram_client(args, env, requests, interactive=interactive, tracer=tracer)
    if args.retries is not None or args.stats or args.send_anyway:
        flag = "--retries" if args.retries is not None else "--stats" if args.stats else None
        if flag is None:
            raise UsageError(_("--send-anyway is for --udp: a TCP server answers every request."))
        raise UsageError(
            _("{flag} is for --udp: TCP retransmits lost data by itself.").format(flag=flag)
        )
    with StreamConverterClient(
        args.host,
        args.port,
        framing=args.framing,
        timeout_s=args.timeout or DEFAULT_CLIENT_TIMEOUT_S,
        tracer=tracer,
    ) as client:
        address = format_endpoint(client.host, client.port)
        if client.greeting.startswith(ERROR_PREFIX):
            # Instead of a greeting, a refusal ("E:server busy, try again later"): shown as it came.
            env.fail(
                _("{address} refused to serve this client: {line}").format(
                    address=address, line=_show(client.greeting)
                )
            )
            return ExitStatus.NETWORK
        # stdout holds the replies, one line per request, whether the requests come as
        # arguments or through a pipe; a person typing at a terminal sees the greeting first.
        if interactive and env.stdin_isatty:
            env.say(decode_reply(client.greeting))
        refused = 0
        for request in requests:
            message = request.encode("utf-8")
            reply = client.request(message)
            if reply is None:
                if message[:2] == CLOSE:
                    break
                env.fail(
                    _(
                        "The server at {address} closed the connection before answering '{request}'."
                    ).format(address=address, request=_show(message))
                )
                return ExitStatus.NETWORK
            if reply.startswith(ERROR_PREFIX):
                refused += 1
            env.say(decode_reply(reply))
    return ExitStatus.ERROR if refused else ExitStatus.OK


def _run_datagram_client(
    args: argparse.Namespace,
    env: Environment,
    requests: Iterable[str],
    *,
    interactive: bool,
    tracer: Tracer | None,
) -> ExitStatus:
    skipped = 0

    def checked(requests: Iterable[str]) -> Iterator[bytes]:
        # Typed lines are checked one by one: a typo is refused and the session goes on.
        nonlocal skipped
        for request in requests:
            message = request.encode("utf-8")
            refusal = None if args.send_anyway else describe_unknown_command(message)
            if refusal is not None:
                env.fail(refusal)
                skipped += 1
                continue
            yield message

    with DatagramConverterClient(
        args.host, args.port, timeout_s=args.timeout or DEFAULT_CLIENT_TIMEOUT_S, tracer=tracer
    ) as client:
        refused = 0
        if args.retries is None:
            sent = answered = 0
            try:
                for message in checked(requests):
                    sent += 1
                    client.send_datagram(message)
                    if not message or message[:2] == CLOSE:
                        continue  # UDP has no connection: C: gets no reply
                    try:
                        reply = client.receive_datagram()
                    except NetworkTimeoutError:
                        env.fail(_describe_silence(client, message))
                        return ExitStatus.NETWORK
                    answered += 1
                    if reply.startswith(ERROR_PREFIX):
                        refused += 1
                    env.say(decode_reply(reply))
            finally:
                if args.stats:
                    env.warn(
                        _(
                            "Stats: {sent}, {answered} answered; plain datagrams, no retries (--retries N resends lost ones)."
                        ).format(
                            sent=format_count("{count} request", "{count} requests", sent),
                            answered=format_number(answered),
                        )
                    )
            return _client_status(refused, skipped)
        # A person typing sees each answer before the next line is read: one request at a time.
        window = 1 if interactive and env.stdin_isatty else DEFAULT_WINDOW
        try:
            # --timeout S --retries N: each attempt waits S, N retransmissions follow (dig,
            # snmpget); without --timeout the adaptive timer of RFC 6298.
            for result in client.exchange_reliably(
                checked(requests),
                retries=args.retries,
                window=window,
                attempt_timeout_s=args.timeout,
            ):
                match result:
                    case Answered(reply=answer):
                        if answer.startswith(ERROR_PREFIX):
                            refused += 1
                        env.say(decode_reply(answer))
                    case Unanswered() as unanswered:
                        return _report_unanswered(env, client, unanswered)
                    case SentWithoutReply():
                        pass
                    case _:
                        assert_never(result)
        finally:
            if args.stats and client.stats is not None:
                env.warn(describe_retransmission_stats(client.stats))
    return _client_status(refused, skipped)


def _client_status(refused: int, skipped: int) -> ExitStatus:
    """USAGE when a typed request was refused here, ERROR when the server answered one `E:`."""
    if skipped:
        return ExitStatus.USAGE
    return ExitStatus.ERROR if refused else ExitStatus.OK


def _refused_reply_note() -> str:
    return _(
        "The server may have refused to answer a reply longer than the request: over UDP no reply is longer than its request, and an error reply for a short request is. Is the server running?"
    )


def _describe_silence(client: DatagramConverterClient, message: bytes) -> str:
    """The line for a datagram that got no reply in time, naming the likeliest cause."""
    line = _("No answer to '{request}' from {address} within {timeout} s.").format(
        request=_show(message),
        address=format_endpoint(client.host, client.port),
        timeout=format_number(client.timeout_s, None),
    )
    # The same decision the server makes: silence where the reply would be longer than the
    # request (no amplification) or could start a loop.
    if isinstance(answer_datagram(message, client.local_port), Silence):
        return f"{line} {_refused_reply_note()}"
    if len(message) > _SLIDES_DATAGRAM_BYTES:
        return (
            line
            + " "
            + _(
                "A server that reads at most {limit} bytes, as the slides' server does, cuts this datagram of {size} bytes off; socklab's upper server then does not answer it. Is the server running?"
            ).format(limit=format_number(_SLIDES_DATAGRAM_BYTES), size=format_number(len(message)))
        )
    return (
        line
        + " "
        + _(
            "Is the server running? Try a longer --timeout, or --retries N to resend lost datagrams."
        )
    )


def _report_unanswered(
    env: Environment, client: DatagramConverterClient, unanswered: Unanswered
) -> ExitStatus:
    message = unanswered.message
    stats = client.stats
    if stats is not None and stats.replies_without_id and not stats.answered:
        raise RemoteProtocolError(
            _(
                "the server's replies carry no request id, so they cannot be matched; it does not know the id extension. Run without --retries to send plain datagrams."
            )
        )
    values = {
        "request": _show(message),
        "address": format_endpoint(client.host, client.port),
        "attempts": format_count("{count} send", "{count} sends", unanswered.attempts),
        "timeout": format_number(unanswered.waited_s, 1),
    }
    if isinstance(answer_datagram(message, client.local_port), Silence):
        line = " ".join(
            (
                _("No answer to '{request}' from {address} after {attempts} within {timeout} s."),
                _refused_reply_note(),
            )
        )
    elif stats is not None and not stats.answered:
        line = _(
            "No answer to '{request}' from {address} after {attempts} within {timeout} s, and none to any request. Is the server running? A server that does not know request ids (the slides' server) may not answer datagrams that start with '#<id> ': then leave --retries out to send plain datagrams."
        )
    else:
        line = _(
            "No answer to '{request}' from {address} after {attempts} within {timeout} s: the requests or the replies were lost. Try a longer --timeout or more --retries."
        )
    env.fail(line.format(**values))
    return ExitStatus.NETWORK


def describe_retransmission_stats(stats: RetransmissionStats) -> str:
    rtt = (
        _("{ms} ms").format(ms=format_number(stats.smoothed_rtt_s * 1000, 1))
        if stats.smoothed_rtt_s is not None
        else "-"
    )
    return _(
        "Stats: {requests}, {answered} answered, {unanswered} unanswered; {sent} sent, {retries}; losses seen {losses}, duplicate replies {duplicates}, reordered replies {reordered}, stray replies {stray}; smoothed round trip {rtt}"
    ).format(
        requests=format_count("{count} request", "{count} requests", stats.requests),
        answered=format_number(stats.answered),
        unanswered=format_number(stats.unanswered),
        sent=format_count("{count} datagram", "{count} datagrams", stats.datagrams_sent),
        retries=format_count("{count} retry", "{count} retries", stats.retries),
        losses=format_number(stats.losses_seen),
        duplicates=format_number(stats.duplicate_replies),
        reordered=format_number(stats.reordered_replies),
        stray=format_number(stats.stray_replies + stats.replies_without_id),
        rtt=rtt,
    )
