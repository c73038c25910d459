#!/usr/bin/env python3
"""Write the man pages man/socklab.1 and man/socklab-COMMAND.1 from the argparse definitions.

The pages come from the same parser as `socklab --help` and the shell completions (with every
command configured, in English), through argparse-manpage; an EXIT STATUS section is added from
`socklab.cli.status.exit_status_table()`. The pages are committed, so the sdist and the wheel
(share/man/man1, see pyproject.toml) carry them without a build step.
Usage: make_manpages.py [--check]   (--check: fail if a committed page is out of date)

A page is rewritten only when its text changed: the date in its header (.TH) is the day it was
written (or SOURCE_DATE_EPOCH's), and --check ignores that line.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAN_DIR = ROOT / "man"
sys.path.insert(0, str(ROOT / "src"))

# The width the help texts are wrapped to, whatever the terminal running this script.
os.environ["COLUMNS"] = "80"

from argparse_manpage.manpage import Manpage  # noqa: E402

from socklab import __version__  # noqa: E402
from socklab.cli.main import build_parser  # noqa: E402
from socklab.cli.status import exit_status_table  # noqa: E402
from socklab.i18n import set_language  # noqa: E402

URL = "https://pypi.org/project/socklab/"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _exit_status_section() -> str:
    rows = [f".TP\n.B {int(status)}\n{meaning}" for status, meaning in exit_status_table().items()]
    return "\n".join(rows) + "\n"


def _page(parser: argparse.ArgumentParser, name: str, summary: str, see_also: list[str]) -> str:
    parser.epilog = None  # the exit statuses get a section of their own
    page = Manpage(
        parser,
        _data={
            "project_name": "socklab",
            "version": __version__,
            "manual_title": "socklab manual",
            "description": summary,
            "authors": ["the socklab authors"],
            "url": URL,
        },
    )
    page.prog = name  # the page's name: socklab-converter, as git-commit(1)
    page.add_section("exit status", "=", _exit_status_section())
    references = ",\n".join(f".BR {other} (1)" for other in see_also)
    page.add_section("see also", "=", references + "\n")
    return str(page)


def pages() -> dict[str, str]:
    """File name -> the page's text, for socklab and each of its commands."""
    set_language("en")
    parser = build_parser(every_command=True)
    commands = _subcommands(parser)
    names = [f"socklab-{command}" for command in commands]
    summary = "socket programming made visible: the course's programs and tools for sockets"
    result = {"socklab.1": _page(parser, "socklab", summary, names)}
    summaries = {
        choice.dest: choice.help or ""
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions
    }
    for command, command_parser in commands.items():
        name = f"socklab-{command}"
        result[f"{name}.1"] = _page(command_parser, name, summaries[command], ["socklab"])
    return result


def _body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith(".TH "))


def main(argv: list[str]) -> int:
    check = "--check" in argv
    wanted = pages()
    present = {path.name: path.read_text(encoding="utf-8") for path in MAN_DIR.glob("*.1")}
    stale = sorted(
        name
        for name in wanted.keys() | present.keys()
        if _body(wanted.get(name, "")) != _body(present.get(name, ""))
    )
    if check:
        if stale:
            print(f"out of date: {', '.join(stale)}; run make man", file=sys.stderr)
            return 1
        return 0
    MAN_DIR.mkdir(exist_ok=True)
    for name in stale:
        if name in wanted:
            (MAN_DIR / name).write_text(wanted[name], encoding="utf-8")
        else:
            (MAN_DIR / name).unlink()
        print(f"wrote man/{name}" if name in wanted else f"removed man/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
