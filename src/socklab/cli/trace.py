"""`socklab trace [--explain] [--output FILE] -- COMMAND ...`: any program's socket calls.

The program runs as it is (no change to its file, no copy); every socket call it makes is shown
in the view of `--trace`, rendered by `socklab.cli.tracing` (one view, one set of explanations),
on stderr or in `--output FILE`. The program's stdin, stdout and stderr stay its own, and its
exit status is this command's. Ctrl+C reaches the program (from the terminal, or passed on), and
the command waits for it to end.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import shutil
import sys
from typing import TextIO

from socklab.cli.environment import Environment
from socklab.cli.status import ExitStatus
from socklab.cli.tracing import make_tracer
from socklab.errors import UsageError
from socklab.i18n import _
from socklab.protocol.escaping import escape_for_terminal
from socklab.tools.trace.runner import TracedProgram, TraceMethod, method_for, strace_path
from socklab.tracing.events import Tracer


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = _(
        "Run a program as it is and show every socket call it makes, with its bytes: Python programs from inside, other programs (C, Java) through strace on Linux. The program's own input and output stay untouched; its exit status is trace's."
    )
    parser.epilog = _("Example: socklab trace --explain -- python3 client.py localhost 12000")
    parser.add_argument(
        "--explain",
        action="store_true",
        help=_("add one sentence per call saying what it does"),
    )
    parser.add_argument(
        "--output",
        metavar=_("FILE"),
        help=_("write the trace to FILE instead of standard error"),
    )
    parser.add_argument(
        "--strace",
        action="store_true",
        help=_("trace a Python program through strace too, as programs in other languages are"),
    )
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar=_("COMMAND"),
        help=_("the program to run and its arguments, after --"),
    )
    parser.set_defaults(handler=run)


def _program_exists(program: str) -> bool:
    return shutil.which(program) is not None or (os.sep in program and os.path.exists(program))


def run(args: argparse.Namespace, env: Environment) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError(
            _("name the program to trace after --: socklab trace -- python3 client.py")
        )
    program = escape_for_terminal(command[0], max_bytes=200)
    if not _program_exists(command[0]):
        env.fail(
            _("No program named {program} was found: check its name, or give its path.").format(
                program=program
            )
        )
        return ExitStatus.NOT_FOUND
    if os.sep in command[0] and not os.access(command[0], os.X_OK):
        # strace would only say "exec: Permission denied" after starting: say it as Python would
        return _cannot_run(program, os.strerror(errno.EACCES), env)
    method = method_for(command, force_strace=args.strace)
    if method is TraceMethod.STRACE and strace_path() is None:
        if sys.platform.startswith("linux"):
            env.fail(
                _(
                    "strace is needed to trace programs not written in Python: sudo apt install strace"
                )
            )
        else:
            env.fail(
                _(
                    "Here socklab trace follows Python programs only: socklab trace -- python3 PROGRAM.py (other languages need Linux and strace)."
                )
            )
        return ExitStatus.ERROR
    output: TextIO | None = None

    def cannot_write(exc: OSError) -> None:
        env.fail(
            _(
                "Cannot write the trace to {file}: {error}. Choose another file with --output."
            ).format(file=escape_for_terminal(args.output), error=exc.strerror or exc)
        )

    if args.output is not None:
        try:
            output = open(args.output, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
        except OSError as exc:
            cannot_write(exc)
            return ExitStatus.ERROR
    try:
        trace_env = env if output is None else dataclasses.replace(env, stderr=output)
        return _run_program(
            command, program, method, make_tracer(trace_env, explain=args.explain), env
        )
    finally:
        if output is not None:
            try:
                output.close()
            except OSError as exc:
                # The file filled up (a disk, a quota) while the program ran: the lines that did
                # not fit are lost, say so; the exit status stays the program's.
                cannot_write(exc)


def _run_program(
    command: list[str],
    program: str,
    method: TraceMethod,
    tracer: Tracer,
    env: Environment,
) -> int:
    try:
        traced = TracedProgram(
            command,
            tracer,
            method=method,
            startup_failure=_(
                "socklab trace cannot trace this Python: {error}. Use Python 3.11 or newer, or --strace."
            ),
        )
    except OSError as exc:
        return _cannot_run(program, exc.strerror or str(exc), env)
    while True:
        try:
            return traced.wait()
        except KeyboardInterrupt:
            traced.interrupt()


def _cannot_run(program: str, error: str, env: Environment) -> int:
    env.fail(
        _(
            "Cannot run {program}: {error}. Check that it is a program you may run (chmod +x for your own)."
        ).format(program=program, error=error)
    )
    return ExitStatus.ERROR
