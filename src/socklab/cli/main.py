"""Entry point: choose the language, build the parser from the command registry, run, exit.

No traceback reaches a user: socklab errors become one line (cli.failures), Ctrl+C exits 130
(a server stops and exits 0 instead: cli.stop_signals), and anything unexpected is one line
asking for a bug report (SOCKLAB_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from socklab import __version__
from socklab.cli import stop_signals
from socklab.cli.commands import command_summaries
from socklab.cli.environment import Environment
from socklab.cli.failures import describe_error, format_error_line
from socklab.cli.logfile import copying_lines
from socklab.cli.status import ExitStatus, exit_status_table
from socklab.errors import SocklabError
from socklab.i18n import SUPPORTED_LANGUAGES, _, choose_language, set_language
from socklab.protocol.escaping import escape_for_terminal

# Where the parsers leave the words that name the command being run ("socklab hello client").
PROGRAM_ATTRIBUTE = "socklab_program"


def _terminal_columns() -> int:
    """Columns of the terminal: $COLUMNS, else the terminal's own, else 80 (as shutil does)."""
    with contextlib.suppress(KeyError, ValueError):
        columns = int(os.environ["COLUMNS"])
        if columns > 0:
            return columns
    stdout = sys.__stdout__
    if stdout is not None:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            return os.get_terminal_size(stdout.fileno()).columns or 80
    return 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, told the width: its own lookup imports shutil, and shutil brings
    bz2, lzma and zlib into every server process (about 1 MB of resident memory)."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class _TopHelpFormatter(_HelpFormatter):
    """The top-level help: the epilog's table keeps its lines (argparse would reflow them)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = super()._fill_text
        return "\n".join(
            indent + line if line.startswith(" ") or not line else fill(line, width, indent)
            for line in text.splitlines()
        )


class _VersionAction(argparse.Action):
    """`--version`: socklab's, Python's, the event loop's and the platform's, computed only when
    asked (the platform lookup reads files that a server's start-up has no use for)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(version_report() + "\n")
        sys.stdout.flush()
        parser.exit(ExitStatus.OK)


def version_report() -> str:
    """What `socklab --version` prints: a bug report's first lines."""
    import platform

    try:
        import uvloop
    except ImportError:
        loop = _("asyncio (uvloop: none)")
    else:
        loop = f"uvloop {getattr(uvloop, '__version__', '?')}"
    implementation = platform.python_implementation()
    return "\n".join(
        (
            f"socklab {__version__}",
            _("Python: {version} ({implementation})").format(
                version=platform.python_version(), implementation=implementation
            ),
            _("Event loop: {loop}").format(loop=loop),
            _("Platform: {platform}").format(platform=platform.platform()),
        )
    )


def exit_status_epilog() -> str:
    """The table of exit statuses under `socklab --help` (the same rows as the docs' table)."""
    rows = [f"  {int(status):>3}  {meaning}" for status, meaning in exit_status_table().items()]
    return "\n".join([_("Exit statuses:"), *rows])


class _Parser(argparse.ArgumentParser):
    """argparse that reports an error as one line in socklab's style, with the USAGE status.

    `socklab converter client: argument --port: 'x' is not a port number. Try 'socklab converter
    client --help'.`: no usage block first (it pushed the reason off a small terminal), and a
    misspelt command gets a suggestion instead of the list of every choice.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        # The innermost parser finishes first: its prog ("socklab hello client") names the
        # command in error lines; the outer parsers keep it.
        if getattr(parsed, PROGRAM_ATTRIBUTE, None) is None:
            setattr(parsed, PROGRAM_ATTRIBUTE, self.prog)
        return parsed, extras

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            raise argparse.ArgumentError(None, describe_unknown_command(value, action.choices))
        super()._check_value(action, value)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # Reported by the command they were given to, not by the top-level parser.
            program = getattr(parsed, PROGRAM_ATTRIBUTE, None) or self.prog
            message = _("unrecognized arguments: %s") % " ".join(extras)
            self.exit(ExitStatus.USAGE, _usage_error_line(program, message))
        return parsed

    def error(self, message: str) -> NoReturn:
        self.exit(ExitStatus.USAGE, _usage_error_line(self.prog, message))


def _usage_error_line(program: str, message: str) -> str:
    message = message.rstrip()
    if not message.endswith((".", "?", "!")):
        message += "."
    hint = _("Try '{prog} --help'.").format(prog=program)
    return format_error_line(program, f"{message} {hint}") + "\n"


def describe_unknown_command(word: str, commands: Iterable[str]) -> str:
    """'unknown command 'helo': did you mean 'hello'?' (difflib, as git and pip suggest)."""
    shown = escape_for_terminal(word, max_bytes=40)
    names = list(commands)
    close = difflib.get_close_matches(word, names, n=1)
    if close:
        return _("unknown command '{word}': did you mean '{match}'?").format(
            word=shown, match=close[0]
        )
    return _("unknown command '{word}' (commands: {names})").format(
        word=shown, names=", ".join(names)
    )


def build_parser(
    argv: Sequence[str] = (), *, every_command: bool = False
) -> argparse.ArgumentParser:
    """The parser; only the command named in `argv` is imported and fully configured.

    The other commands get a bare entry with their summary, which is all `socklab --help` shows.
    Importing every command would load the capture, chat and bench code into every server.
    `every_command` configures them all: shell completions and man pages describe every option.
    """
    parser = _Parser(
        prog="socklab",
        description=_(
            "Socket programming made visible: the course's programs, tools to look at sockets, and more."
        ),
        epilog=exit_status_epilog(),
        formatter_class=_TopHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help=_("show the versions of socklab, Python and the event loop, the platform, and exit"),
    )
    parser.add_argument(
        "--lang",
        choices=SUPPORTED_LANGUAGES,
        help=_("language of messages (default: from LANG, else English)"),
    )
    subparsers = parser.add_subparsers(dest="command", metavar=_("COMMAND"), parser_class=_Parser)
    summaries = command_summaries()
    chosen = next((arg for arg in argv if arg in summaries), None)
    for name, summary in summaries.items():
        command_parser = subparsers.add_parser(name, help=summary)
        if every_command or name == chosen:
            importlib.import_module(f"socklab.cli.{name}").configure(command_parser)
    return parser


def _preparse_language(argv: Sequence[str]) -> str | None:
    pre = argparse.ArgumentParser(add_help=False, formatter_class=_HelpFormatter)
    pre.add_argument("--lang")
    known, _rest = pre.parse_known_args(argv)
    lang: str | None = known.lang
    return lang


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """The command's exit status: an ExitStatus, or the traced program's own (`socklab trace`)."""
    # Signals during parsing and start-up are recorded, then acted on by the command's mode.
    with stop_signals.installed():
        return _run(argv, env)


def _run(argv: Sequence[str] | None, env: Environment | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = env or Environment.from_process()
    set_language(choose_language(_preparse_language(argv), env.environ))
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return ExitStatus(exc.code) if isinstance(exc.code, int) else ExitStatus.USAGE
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(env.stdout)
        return ExitStatus.USAGE
    program = getattr(args, PROGRAM_ATTRIBUTE, None) or parser.prog
    env.program, env.arguments = program, tuple(argv)
    try:
        # The command's --log file (servers, impair) records its lines, the error line included.
        with copying_lines(env, args):
            return _call(handler, args, env)
    except SocklabError as error:  # the log file cannot be opened
        line, status = describe_error(error)
        env.fail(line)
        return status


def _call(handler: Any, args: argparse.Namespace, env: Environment) -> int:
    """The command's handler, its failures turned into one line and an exit status."""
    try:
        # A server stops on the first Ctrl+C or SIGTERM and exits 0; other commands get
        # KeyboardInterrupt. Outside the block (the handlers below) a signal is only recorded.
        with stop_signals.handling(graceful=getattr(args, "graceful_stop", False)):
            status: int = handler(args, env)
        return status
    except SocklabError as error:
        line, status = describe_error(error, getattr(args, "port_option", "--port"))
        env.fail(line)
        return status
    except KeyboardInterrupt:
        env.fail(_("Interrupted."))
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`socklab ports | head`): not an error for us.
        return ExitStatus.OK
    except Exception as exc:
        if env.environ.get("SOCKLAB_DEBUG"):
            traceback.print_exc(file=env.stderr)
        env.fail(
            _(
                "Internal error: {error}. Please report it; SOCKLAB_DEBUG=1 shows the details."
            ).format(error=f"{type(exc).__name__}: {exc}")
        )
        return ExitStatus.ERROR


def console_main() -> None:
    """The console script's old entry point: scripts installed before `cli.console` existed call
    it until the package is installed again (`make` does when pyproject.toml changes)."""
    from socklab.cli.console import console_main as run_console

    run_console()
