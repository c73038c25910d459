"""`socklab check converter-server|converter-client`: grade a program against the protocol.

Parses, calls socklab.tools.check, renders: a rich table on a terminal, plain lines in a pipe,
JSON with `--json` (the schema is in docs/CHECK.md). Exit status 0 when every check passes,
NOT_CONFORMING otherwise.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from socklab.cli.arguments import (
    add_framing,
    add_udp_flag,
    host_port,
    positive_int,
    positive_seconds,
)
from socklab.cli.environment import Environment
from socklab.cli.status import ExitStatus
from socklab.i18n import _, format_number, ngettext
from socklab.protocol.framing import describe_framing
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.tools.check.client import (
    DEFAULT_CLIENT_TIMEOUT_S,
    DEFAULT_INPUT,
    ClientTarget,
    check_converter_client,
)
from socklab.tools.check.results import CheckReport, CheckResult
from socklab.tools.check.server import (
    DEFAULT_CONCURRENT_CLIENTS,
    DEFAULT_TIMEOUT_S,
    ServerTarget,
    check_converter_server,
)

JSON_SCHEMA_VERSION = 1
# Enough to tell concurrent from sequential serving; more would only test the fd limit.
MAX_CONCURRENT_CLIENTS = 64


def configure(parser: argparse.ArgumentParser) -> None:
    subjects = parser.add_subparsers(dest="subject", metavar=_("SUBJECT"), required=True)

    server = subjects.add_parser(
        "converter-server", help=_("check a converter server listening at HOST:PORT")
    )
    server.add_argument(
        "address", type=host_port, metavar="HOST:PORT", help=_("where the server listens")
    )
    add_udp_flag(server, help=_("check the UDP server instead of TCP"))
    add_framing(server, help=_("the framing the server should speak (default: %(default)s)"))
    server.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        help=_("seconds each check may take (default: %(default)s)"),
    )
    server.add_argument(
        "--max-message-bytes",
        type=positive_int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help=_("the server's message limit, for the over-long check (default: %(default)s)"),
    )
    server.add_argument(
        "--clients",
        type=positive_int,
        default=DEFAULT_CONCURRENT_CLIENTS,
        help=_("clients connected at once in the concurrency check (default: %(default)s)"),
    )
    server.add_argument(
        "--only",
        action="append",
        metavar="CHECK",
        help=_("run only this check (repeatable; ids as in the report)"),
    )
    _add_output(server)
    server.set_defaults(handler=run_server_check)

    client = subjects.add_parser(
        "converter-client",
        help=_("run a converter client command against a scripted server"),
        description=_(
            "Runs COMMAND against a scripted converter server on a free loopback port. "
            "{host} and {port} in COMMAND are replaced by its address (also in the "
            "environment as SOCKLAB_CHECK_HOST and SOCKLAB_CHECK_PORT)."
        ),
    )
    add_udp_flag(client, help=_("check a UDP client instead of TCP"))
    add_framing(client, help=_("the framing the client should speak (default: %(default)s)"))
    client.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_CLIENT_TIMEOUT_S,
        help=_("seconds the client may run (default: %(default)s)"),
    )
    client.add_argument(
        "--input",
        action="append",
        metavar="LINE",
        help=_("a line for the client's standard input (repeatable; default: {lines})").format(
            lines=" ".join(DEFAULT_INPUT)
        ),
    )
    _add_output(client)
    client.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND",
        help=_("the client to run, e.g. -- python3 client.py {port}"),
    )
    client.set_defaults(handler=run_client_check)


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help=_("print the results as JSON for grading scripts")
    )


def run_server_check(args: argparse.Namespace, env: Environment) -> ExitStatus:
    host, port = args.address
    if args.clients > MAX_CONCURRENT_CLIENTS:
        env.warn(
            _("Error: --clients {count} is more than the {limit} a check opens at most").format(
                count=args.clients, limit=format_number(MAX_CONCURRENT_CLIENTS)
            )
        )
        return ExitStatus.USAGE
    target = ServerTarget(
        host=host,
        port=port,
        framing=args.framing,
        timeout_s=args.timeout,
        max_message_bytes=args.max_message_bytes,
        concurrent_clients=args.clients,
    )
    report = check_converter_server(
        target, udp=args.transport == "udp", only=frozenset(args.only or ())
    )
    return render(report, args.json, env)


def run_client_check(args: argparse.Namespace, env: Environment) -> ExitStatus:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        env.warn(_("Error: give the client command after '--', e.g. -- python3 client.py {port}"))
        return ExitStatus.USAGE
    target = ClientTarget(
        command=tuple(command),
        framing=args.framing,
        transport=args.transport,
        timeout_s=args.timeout,
        input_lines=tuple(args.input) if args.input is not None else DEFAULT_INPUT,
    )
    report = check_converter_client(target)
    return render(report, args.json, env)


def render(report: CheckReport, as_json: bool, env: Environment) -> ExitStatus:
    if as_json:
        env.say(json.dumps(report_as_json(report), ensure_ascii=False, indent=2))
    elif env.stdout_isatty:
        render_table(report, env)
    else:
        render_lines(report, env)
    return ExitStatus.OK if report.conforming else ExitStatus.NOT_CONFORMING


def report_as_json(report: CheckReport) -> dict[str, Any]:
    return {
        "schema": JSON_SCHEMA_VERSION,
        "subject": report.subject,
        "target": report.target,
        "transport": report.transport,
        "framing": report.framing,
        "conforming": report.conforming,
        "passed": report.passed_count,
        "failed": report.failed_count,
        "checks": [
            {
                "id": result.check_id,
                "title": result.title,
                "verdict": result.verdict.value,
                "expected": result.expected,
                "received": result.received,
                "note": result.note,
            }
            for result in report.results
        ],
    }


def _heading(report: CheckReport) -> str:
    if report.transport == "udp":
        how = "UDP"
    else:
        how = _("TCP, {framing} framing").format(framing=describe_framing(report.framing))
    return _("Checking {subject} {target} ({how})").format(
        subject=report.subject, target=report.target, how=how
    )


def _verdict_word(result: CheckResult) -> str:
    return _("PASS") if result.passed else _("FAIL")


def _summary(report: CheckReport) -> str:
    total = len(report.results)
    if report.conforming:
        return ngettext(
            "{total} check passed: the program conforms.",
            "All {total} checks passed: the program conforms.",
            total,
        ).format(total=format_number(total))
    return ngettext(
        "{failed} of {total} check failed: the program does not conform.",
        "{failed} of {total} checks failed: the program does not conform.",
        total,
    ).format(failed=format_number(report.failed_count), total=format_number(total))


def render_lines(report: CheckReport, env: Environment) -> None:
    env.say(_heading(report))
    width = max((len(result.check_id) for result in report.results), default=0)
    verdict_width = max(len(_("PASS")), len(_("FAIL")))
    for result in report.results:
        verdict = _verdict_word(result)
        env.say(f"{verdict:<{verdict_width}}  {result.check_id:<{width}}  {result.title}")
        if not result.passed:
            env.say("      " + _("expected: {expected}").format(expected=result.expected))
            env.say("      " + _("received: {received}").format(received=result.received))
            if result.note:
                env.say("      " + result.note)
    env.say(_summary(report))


def render_table(report: CheckReport, env: Environment) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=env.stdout, highlight=False)
    table = Table(title=_heading(report), title_justify="left", show_lines=True)
    table.add_column(_("Check"))
    table.add_column(_("Verdict"))
    table.add_column(_("Expected"), overflow="fold")
    table.add_column(_("Received"), overflow="fold")
    for result in report.results:
        verdict = (
            f"[green]{escape(_verdict_word(result))}[/]"
            if result.passed
            else f"[bold red]{escape(_verdict_word(result))}[/]"
        )
        received = escape(result.received)
        if result.note:
            received += f"\n[italic]{escape(result.note)}[/]"
        table.add_row(
            f"{escape(result.check_id)}\n[dim]{escape(result.title)}[/]",
            verdict,
            escape(result.expected),
            received,
        )
    console.print(table)
    console.print(escape(_summary(report)))
    env.stdout.flush()
