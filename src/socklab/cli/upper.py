"""`socklab upper server|client (--udp|--tcp)`: the lecture's uppercase services (port 12000)."""

from __future__ import annotations

import argparse
import threading

from socklab.apps.converter import exposure_note
from socklab.apps.upper import DEFAULT_HOST, UDP_RECEIVE_BYTES, UpperServer, run_upper_client
from socklab.cli import stop_signals
from socklab.cli.arguments import (
    add_host_port,
    add_model,
    add_transport_choice,
    positive_seconds,
)
from socklab.cli.environment import Environment
from socklab.cli.logfile import add_log_option
from socklab.cli.status import ExitStatus
from socklab.cli.tracing import add_trace_options, tracer_from_args
from socklab.errors import UsageError
from socklab.i18n import _, format_number
from socklab.protocol.endpoints import format_host
from socklab.protocol.escaping import escape_lines_for_terminal
from socklab.protocol.upper import handle_upper_datagram
from socklab.runtimes import DEFAULT_RUNTIME, RUNTIMES

# How long Ctrl+C waits for the server's thread: TCP's stop takes up to the shutdown grace
# (3 s) plus a margin (2 s) to close every connection.
STOP_WAIT_S = 10.0


def _add_transport(parser: argparse.ArgumentParser) -> None:
    add_transport_choice(
        parser,
        tcp_help=_("use a TCP connection"),
        udp_help=_("use UDP datagrams"),
        udp_first=True,
    )


def configure(parser: argparse.ArgumentParser) -> None:
    roles = parser.add_subparsers(dest="role", metavar=_("ROLE"), required=True)

    server = roles.add_parser("server", help=_("answer every message upper-cased, forever"))
    _add_transport(server)
    add_host_port(
        server,
        host_default=DEFAULT_HOST,
        port_default=12000,
        host_help=_(
            "address to listen on (default: %(default)s, this computer only; 0.0.0.0 for all interfaces, as on the slides)"
        ),
        port_help=_("port (default: %(default)s)"),
    )
    add_model(
        server,
        choices=RUNTIMES,
        default=None,
        help=_("TCP: how the server serves many clients (default: {model})").format(
            model=DEFAULT_RUNTIME
        ),
    )
    add_trace_options(server)
    add_log_option(server)
    # graceful_stop: Ctrl+C and SIGTERM stop the server and it exits 0 (cli.stop_signals).
    server.set_defaults(handler=run_server, graceful_stop=True)

    client = roles.add_parser("client", help=_("read a sentence, send it, print the reply"))
    _add_transport(client)
    add_host_port(client, host_default="127.0.0.1", port_default=12000)
    client.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        help=_("seconds to wait for the reply (default: %(default)s)"),
    )
    add_trace_options(client)
    client.set_defaults(handler=run_client)


def run_server(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.model is not None and args.transport == "udp":
        raise UsageError(
            _("--model applies to --tcp: the UDP server answers each datagram as it comes")
        )
    server = UpperServer(
        args.transport,
        args.host,
        args.port,
        env.say,
        tracer_from_args(args, env),
        model=args.model or DEFAULT_RUNTIME,
    )
    host, port = server.address
    env.say(
        _("Uppercase server ({transport}) on {host}:{port}. Press Ctrl+C to stop.").format(
            transport=args.transport.upper(), host=format_host(host), port=port
        )
    )
    note = exposure_note(args.host)
    if note is not None:
        env.say(note)
    thread = threading.Thread(target=server.serve_forever, name="upper-server", daemon=True)
    thread.start()
    # A stop signal is recorded, never raised (graceful_stop): the first one ends the wait at
    # any moment, as for the converter server (cli.stop_signals).
    while thread.is_alive() and not stop_signals.wait_for_stop(0.5):
        pass
    server.stop()
    thread.join(STOP_WAIT_S)
    if server.failure is not None:
        raise server.failure  # one line with a next step, from the CLI's error handling
    env.say(_("Server stopped."))
    return ExitStatus.OK


def run_client(args: argparse.Namespace, env: Environment) -> ExitStatus:
    prompt = _("Input lowercase sentence:")
    env.stdout.write(prompt + (" " if env.stdin_isatty else "\n"))
    env.stdout.flush()
    line = env.stdin.readline()
    if not line:
        env.fail(_("No sentence given: standard input was empty. Type one, or pipe it in."))
        return ExitStatus.USAGE
    sentence = line.rstrip("\r\n").encode("utf-8")
    if args.transport == "udp" and sentence and handle_upper_datagram(sentence) == sentence:
        env.warn(
            _(
                "Your sentence is upper case already: socklab's UDP server does not answer it, since the same datagram back could bounce between two servers forever."
            )
        )
    if args.transport == "udp" and len(sentence) > UDP_RECEIVE_BYTES:
        env.warn(
            _(
                "Your sentence is {size} bytes: a UDP server that reads at most {limit} bytes, as the slides' server does, cuts it off, and socklab's upper server does not answer it."
            ).format(size=format_number(len(sentence)), limit=format_number(UDP_RECEIVE_BYTES))
        )
    reply = run_upper_client(
        args.transport,
        args.host,
        args.port,
        line.rstrip("\r\n"),
        args.timeout,
        tracer_from_args(args, env),
    )
    env.say(_("From Server: {reply}").format(reply=escape_lines_for_terminal(reply)))
    return ExitStatus.OK
