"""`socklab check converter-server|converter-client`: grade a program against the protocol.

Parses, calls socklab.tools.check, renders: one line per check as it completes (on a terminal with
a progress line and colour, in a pipe plain), JSON with `--json` (the schema is in
docs/CHECK.md). Exit status 0 when every check passes, NOT_CONFORMING when any check failed,
INTERRUPTED after Ctrl+C (the results so far are still shown).
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
from socklab.cli.progress import ProgressLine
from socklab.cli.status import ExitStatus
from socklab.i18n import _
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.tools.check.client import (
    DEFAULT_CLIENT_TIMEOUT_S,
    DEFAULT_INPUT,
    ClientTarget,
    check_converter_client,
    client_checks,
)
from socklab.tools.check.results import CheckReport, CheckResult
from socklab.tools.check.server import (
    DEFAULT_CONCURRENT_CLIENTS,
    DEFAULT_TIMEOUT_S,
    ServerTarget,
    check_converter_server,
    datagram_checks,
    stream_checks,
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
        env.fail(
            _("--clients {count} is more than the {limit} a check opens at most").format(
                count=args.clients, limit=MAX_CONCURRENT_CLIENTS
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
    live = LiveLines(env, as_json=args.json)
    report = check_converter_server(
        target, udp=args.transport == "udp", only=frozenset(args.only or ()), observer=live
    )
    return live.finish(report)


def run_client_check(args: argparse.Namespace, env: Environment) -> ExitStatus:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        env.fail(_("give the client command after '--', e.g. -- python3 client.py {port}"))
        return ExitStatus.USAGE
    target = ClientTarget(
        command=tuple(command),
        framing=args.framing,
        transport=args.transport,
        timeout_s=args.timeout,
        input_lines=tuple(args.input) if args.input is not None else DEFAULT_INPUT,
    )
    live = LiveLines(env, as_json=args.json)
    report = check_converter_client(target, observer=live)
    return live.finish(report)


def exit_status(report: CheckReport) -> ExitStatus:
    """Interrupted: 130; any FAIL: NOT_CONFORMING; else OK. A check that was not reached is
    never the only reason (a check it depends on failed), and counts as no failure of its own."""
    if report.interrupted:
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK if report.conforming else ExitStatus.NOT_CONFORMING


class LiveLines:
    """The report as it happens: each check's line as soon as it completes, then the summary.

    A `CheckObserver`. On a terminal, the check under way shows in a progress line that the next
    result overwrites; in a pipe only the result lines are written (no decorations), each
    flushed at once. With `--json` nothing is written until the end: one JSON object.
    The heading waits for the first result, so a run that cannot start (nothing listening)
    writes no heading, only its error line.
    """

    def __init__(self, env: Environment, *, as_json: bool) -> None:
        self.env = env
        self.as_json = as_json
        self.decorate = env.stdout_isatty and not as_json
        self._progress = ProgressLine(env)
        self._progress.enabled = self.decorate
        self._report: CheckReport | None = None
        self._heading_shown = False
        self._verdict_width = max(len(_("PASS")), len(_("FAIL")), len(NOT_REACHED_MARK))

    def run_started(self, report: CheckReport) -> None:
        self._report = report
        if report.subject.endswith("-client"):
            self._progress.show(_("running {target} …").format(target=report.target))

    def check_started(self, check_id: str, title: str, number: int, total: int) -> None:
        self._progress.show(
            _("[{number}/{total}] {check}: {title} …").format(
                number=number, total=total, check=check_id, title=title
            )
        )

    def check_done(self, result: CheckResult) -> None:
        if self.as_json:
            return
        self._progress.clear()
        if not self._heading_shown and self._report is not None:
            self.env.say(_heading(self._report))
            self._heading_shown = True
        for line in self._result_lines(result):
            self.env.say(line)

    def finish(self, report: CheckReport) -> ExitStatus:
        self._progress.clear()
        if self.as_json:
            self.env.say(json.dumps(report_as_json(report), ensure_ascii=False, indent=2))
            return exit_status(report)
        if not self._heading_shown:
            self.env.say(_heading(report))
            self._heading_shown = True
        if report.results:
            self.env.say(_summary(report))
        if report.interrupted:
            self.env.say(_("interrupted"))
        return exit_status(report)

    def _result_lines(self, result: CheckResult) -> list[str]:
        width = max(len(check_id) for check_id in self._check_ids())
        word = _verdict_word(result)
        padded = f"{word:<{self._verdict_width}}"
        if self.decorate:
            padded = _colour(result, padded)
        lines = [f"{padded}  {result.check_id:<{width}}  {result.title}"]
        indent = " " * 6
        if result.failed:
            lines.append(indent + _("expected: {expected}").format(expected=result.expected))
            lines.append(indent + _("received: {received}").format(received=result.received))
            if result.note:
                lines.append(indent + result.note)
        elif not result.reached:
            lines.append(indent + result.received)
        return lines

    def _check_ids(self) -> list[str]:
        # Known from the catalogue of the subject: the id column stays aligned from the first
        # line on, before the later results exist.
        report = self._report
        if report is not None and report.subject == "converter-client":
            return [check.check_id for check in client_checks()]
        if report is not None and report.transport == "udp":
            return [check.check_id for check in datagram_checks()]
        return [check.check_id for check in stream_checks()]


# The verdict column of a check that was not reached: no verdict of its own.
NOT_REACHED_MARK = "----"


def _colour(result: CheckResult, text: str) -> str:
    """ANSI colour for the verdict on a terminal: green PASS, bold red FAIL, dim not reached."""
    if result.passed:
        return f"\x1b[32m{text}\x1b[0m"
    if result.failed:
        return f"\x1b[1;31m{text}\x1b[0m"
    return f"\x1b[2m{text}\x1b[0m"


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
        "not_reached": report.not_reached_count,
        "interrupted": report.interrupted,
        "checks": [
            {
                "id": result.check_id,
                "title": result.title,
                "verdict": result.verdict.value,
                "expected": result.expected,
                "received": result.received,
                "note": result.note,
                "blocked_by": result.blocked_by,
            }
            for result in report.results
        ],
    }


def _heading(report: CheckReport) -> str:
    if report.transport == "udp":
        how = "UDP"
    else:
        how = _("TCP, {framing} framing").format(framing=report.framing)
    return _("Checking {subject} {target} ({how})").format(
        subject=report.subject, target=report.target, how=how
    )


def _verdict_word(result: CheckResult) -> str:
    if not result.reached:
        return NOT_REACHED_MARK
    return _("PASS") if result.passed else _("FAIL")


def _summary(report: CheckReport) -> str:
    total = len(report.results)
    if report.conforming:
        return _("All {total} checks passed: the program conforms.").format(total=total)
    if report.not_reached_count:
        return _(
            "{failed} of {total} checks failed, {not_reached} not reached: the program does not conform."
        ).format(failed=report.failed_count, total=total, not_reached=report.not_reached_count)
    if report.interrupted:
        return _("{failed} of {total} checks failed so far.").format(
            failed=report.failed_count, total=total
        )
    return _("{failed} of {total} checks failed: the program does not conform.").format(
        failed=report.failed_count, total=total
    )
