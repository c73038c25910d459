"""`socklab check`: grade a student's converter server or client against the protocol.

`server` runs the server checks (TCP per framing, or UDP), `client` runs a client command
against a scripted server; both return a `CheckReport` of frozen `CheckResult`s, which the CLI
renders. docs/CHECK.md explains every check.
"""

from socklab.tools.check.results import CheckReport, CheckResult, Verdict, show_bytes

__all__ = ["CheckReport", "CheckResult", "Verdict", "show_bytes"]
