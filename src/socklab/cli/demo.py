"""`socklab demo`: a guided tour on loopback (topics grow with the lessons)."""

from __future__ import annotations

import argparse

from socklab.apps.demo import TOPICS, run_demo
from socklab.cli.environment import Environment
from socklab.cli.status import ExitStatus
from socklab.i18n import _


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "topic",
        nargs="?",
        choices=sorted(TOPICS),
        help=_("one lesson only (default: the full tour)"),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    return ExitStatus.OK if run_demo(args.topic, env.say) else ExitStatus.ERROR
