"""`socklab demo`: a guided tour on loopback (topics grow with the lessons)."""

from __future__ import annotations

import argparse

from socklab.apps.demo import TOPICS, run_demo
from socklab.apps.demo_topics.narration import PacedSay, Say
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
    parser.add_argument(
        "--step",
        action="store_true",
        help=_(
            "wait for Enter after each point a lesson makes, for an instructor's pace (reads standard input; at its end goes on without pausing)"
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    say: Say = PacedSay(env.say, env.stdin.readline) if args.step else env.say
    return ExitStatus.OK if run_demo(args.topic, say) else ExitStatus.ERROR
