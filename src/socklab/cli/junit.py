"""`--junit FILE` of `socklab check`: the report written as JUnit XML (tools/check/junit.py)."""

from __future__ import annotations

from pathlib import Path

from socklab.errors import UsageError
from socklab.i18n import _
from socklab.tools.check.junit import report_as_junit
from socklab.tools.check.results import CheckReport


def write_junit(report: CheckReport, path: str) -> None:
    """Write the report to `path`; an unwritable path is one line (UsageError)."""
    try:
        Path(path).write_text(report_as_junit(report) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            _("cannot write the JUnit file {path}: {reason}").format(
                path=path, reason=exc.strerror or exc
            )
        ) from exc
