"""`socklab examples [NAME…] [--dir DIR]`: write the course's programs as Python 3 files.

The files and their list are in socklab.apps.examples; this parses, writes, and says for each
file how to run it against socklab's counterpart and how to grade it.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from socklab.apps.examples import EXAMPLE_NAMES, Example, find_examples, write_examples
from socklab.cli.environment import Environment
from socklab.cli.status import ExitStatus
from socklab.i18n import _

# The port a checker or a second terminal uses in the hints: each program's default.
DEFAULT_PORTS = {"hello": 9999, "upper": 12000, "converter": 50000}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = _(
        "Writes the course texts' programs as Python 3 files, with comments in the chosen "
        "language (--lang). Without NAME: all of them."
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=_("which programs: {choices}").format(choices=", ".join(EXAMPLE_NAMES)),
    )
    parser.add_argument(
        "--dir",
        default=".",
        metavar="DIR",
        help=_("where to write them (created if missing; default: the current directory)"),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    examples = find_examples(list(args.names))
    directory = Path(args.dir)
    paths = write_examples(examples, directory)
    for example, path in zip(examples, paths, strict=True):
        env.say(_("wrote {path}").format(path=path))
        env.say("    " + _("run:   {command}").format(command=run_command(example, path)))
        env.say("    " + _("with:  {command}").format(command=counterpart_command(example)))
        env.say("    " + _("check: {command}").format(command=check_command(example, path)))
    return ExitStatus.OK


def _port(example: Example) -> int:
    return DEFAULT_PORTS[example.counterpart[0]]


def run_command(example: Example, path: Path) -> str:
    return shlex.join(["python3", str(path)])


def counterpart_command(example: Example) -> str:
    return shlex.join(["socklab", *example.counterpart])


def check_command(example: Example, path: Path) -> str:
    """The command that grades the program (a server must be running on its port first)."""
    if example.role == "server":
        address = f"127.0.0.1:{_port(example)}"
        return shlex.join(["socklab", "check", example.check[0], address, *example.check[1:]])
    # {host} and {port} unquoted: the shell leaves them alone, and they read as in docs/CHECK.md.
    command = shlex.join(["socklab", "check", *example.check, "--", "python3", str(path)])
    return command + " {host} {port}"
