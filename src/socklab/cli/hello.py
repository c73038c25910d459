"""`socklab hello server|client`: the prep sheet's first programs."""

from __future__ import annotations

import argparse

from socklab.apps.hello import RECEIVE_TIMEOUT_S, run_hello_client, run_hello_server
from socklab.cli.arguments import (
    add_host_port,
    positive_seconds,
)
from socklab.cli.environment import Environment
from socklab.cli.logfile import add_log_option
from socklab.cli.status import ExitStatus
from socklab.cli.tracing import add_trace_options, tracer_from_args
from socklab.i18n import _


def configure(parser: argparse.ArgumentParser) -> None:
    roles = parser.add_subparsers(dest="role", metavar=_("ROLE"), required=True)

    server = roles.add_parser(
        "server", help=_("listen, accept one client, print its message, exit")
    )
    add_host_port(
        server,
        host_default="0.0.0.0",
        port_default=9999,
        host_help=_("address to listen on (default: %(default)s, all interfaces)"),
        port_help=_("port to listen on (default: %(default)s)"),
    )
    server.add_argument(
        "--receive-timeout",
        type=positive_seconds,
        default=RECEIVE_TIMEOUT_S,
        metavar="S",
        help=_(
            "seconds the client may take to send its message; then it is closed (default: %(default)s)"
        ),
    )
    add_trace_options(server)
    add_log_option(server)
    server.set_defaults(handler=run_server)

    client = roles.add_parser("client", help=_("connect, send one message, close"))
    add_host_port(client, host_default="127.0.0.1", port_default=9999)
    client.add_argument(
        "--message", default="Hi server!", help=_("what to send (default: %(default)s)")
    )
    client.add_argument(
        "--timeout",
        type=positive_seconds,
        default=10.0,
        help=_("connect timeout in seconds (default: %(default)s)"),
    )
    add_trace_options(client)
    client.set_defaults(handler=run_client)


# The sheet's own error line goes to standard output, as the sheet prints it; the error raised
# after it becomes the hint on standard error, with the status of every other command (3
# network, 5 permission, 6 port in use).


def run_server(args: argparse.Namespace, env: Environment) -> ExitStatus:
    error = run_hello_server(
        args.host,
        args.port,
        env.say,
        tracer=tracer_from_args(args, env),
        receive_timeout_s=args.receive_timeout,
    )
    if error is not None:
        raise error
    return ExitStatus.OK


def run_client(args: argparse.Namespace, env: Environment) -> ExitStatus:
    error = run_hello_client(
        args.host, args.port, args.message, env.say, args.timeout, tracer_from_args(args, env)
    )
    if error is not None:
        raise error
    return ExitStatus.OK
