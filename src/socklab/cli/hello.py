"""`socklab hello server|client`: the prep sheet's first programs."""

from __future__ import annotations

import argparse

from socklab.apps.hello import RECEIVE_TIMEOUT_S, run_hello_client, run_hello_server
from socklab.cli.arguments import port_number, positive_seconds
from socklab.cli.environment import Environment
from socklab.cli.status import ExitStatus
from socklab.cli.tracing import add_trace_options, tracer_from_args
from socklab.i18n import _


def configure(parser: argparse.ArgumentParser) -> None:
    roles = parser.add_subparsers(dest="role", metavar=_("ROLE"), required=True)

    server = roles.add_parser(
        "server", help=_("listen, accept one client, print its message, exit")
    )
    server.add_argument(
        "--host",
        default="0.0.0.0",
        help=_("address to listen on (default: %(default)s, all interfaces)"),
    )
    server.add_argument(
        "--port", type=port_number, default=9999, help=_("port to listen on (default: %(default)s)")
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
    server.set_defaults(handler=run_server)

    client = roles.add_parser("client", help=_("connect, send one message, close"))
    client.add_argument(
        "--host", default="127.0.0.1", help=_("server address (default: %(default)s)")
    )
    client.add_argument(
        "--port", type=port_number, default=9999, help=_("server port (default: %(default)s)")
    )
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


def run_server(args: argparse.Namespace, env: Environment) -> ExitStatus:
    ok = run_hello_server(
        args.host,
        args.port,
        env.say,
        env.warn,
        tracer=tracer_from_args(args, env),
        receive_timeout_s=args.receive_timeout,
    )
    return ExitStatus.OK if ok else ExitStatus.NETWORK


def run_client(args: argparse.Namespace, env: Environment) -> ExitStatus:
    ok = run_hello_client(
        args.host, args.port, args.message, env.say, args.timeout, tracer_from_args(args, env)
    )
    return ExitStatus.OK if ok else ExitStatus.NETWORK
