"""The registry of subcommands, in the order `--help` lists them: one module of `socklab.cli` each.

Each module defines `configure(parser)`, which adds its arguments and sets `handler` to a function
`run(args, env) -> ExitStatus`. Only the module of the command being run is imported, so
`socklab converter server` does not load the capture, chat or bench code (start-up time and the
server's resident memory stay small). Adding a command is one entry here.
"""

from __future__ import annotations

from socklab.i18n import _


def command_summaries() -> dict[str, str]:
    """Command name -> its one-line summary in the current language (the order of --help)."""
    return {
        "hello": _("the prep sheet's hello server and client (port 9999)"),
        "upper": _("the lecture's uppercase server and client (port 12000)"),
        "converter": _("the upper/lowercase converter (port 50000), TCP and UDP"),
        "demo": _("a guided tour: each program started, used and explained"),
        "impair": _("relay TCP or UDP through reproducible faults: loss, delay, slicing, resets"),
        "chat": _("the lecture's P2P chat: every peer is client and server"),
        "check": _(
            "grade a program of the course (hello, upper, converter, chat) against its protocol"
        ),
        "ports": _("every TCP/UDP socket with its ports, state and process (like ss, netstat)"),
        "capture": _(
            "capture packets, one line each; ladder and stream views (like tcpdump, RawCap)"
        ),
        "trace": _("run any program unchanged and show every socket call it makes"),
        "live": _(
            "the instructor's live view in the browser: sockets, handshakes and messages as they happen"
        ),
        "bench": _("load a converter server, verify every reply, report requests/s and latency"),
        "examples": _("write the course's programs as Python 3 files, ready to run and check"),
        "completion": _("print a completion script for bash, zsh or fish"),
        "wireshark": _("the Lua dissector that lets Wireshark decode the converter and the chat"),
    }
