"""A check report as JUnit XML: the format the graders of GitHub Classroom, GitLab, Jenkins and
Moodle read.

One <testsuite> per report (named after the subject), one <testcase> per check (its id as the
name, `socklab.check.SUBJECT` as the class), a FAIL as <failure> with the expected/received
lines, a check that was not reached as <skipped> with the reason. What the program sent is
already escaped by the checker (`show_bytes`); characters XML 1.0 cannot carry are replaced
here as a last guard, so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from socklab.i18n import _
from socklab.tools.check.results import CheckReport, CheckResult

# Everything XML 1.0 forbids: C0 controls but tab, newline and carriage return; surrogates; FFFE/F.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", text)


def _failure_text(result: CheckResult) -> str:
    lines = [
        _("expected: {expected}").format(expected=result.expected),
        _("received: {received}").format(received=result.received),
    ]
    if result.note:
        lines.append(result.note)
    return "\n".join(lines)


def report_as_junit(report: CheckReport) -> str:
    """The report as a JUnit XML document (a str, with its XML declaration)."""
    suites = ET.Element("testsuites", name="socklab check")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=report.subject,
        tests=str(len(report.results)),
        failures=str(report.failed_count),
        errors="0",
        skipped=str(report.not_reached_count),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("target", report.target),
        ("transport", report.transport),
        ("framing", report.framing),
        ("conforming", str(report.conforming).lower()),
        ("interrupted", str(report.interrupted).lower()),
    ):
        ET.SubElement(properties, "property", name=name, value=_clean(value))
    for key in ("tests", "failures", "errors", "skipped"):
        suites.set(key, suite.get(key, "0"))
    for result in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            name=result.check_id,
            classname=f"socklab.check.{report.subject}",
        )
        ET.SubElement(case, "system-out").text = _clean(result.title)
        if result.failed:
            text = _clean(_failure_text(result))
            message = "; ".join(text.splitlines()[:2])  # expected and received, one line
            failure = ET.SubElement(case, "failure", message=message, type="FAIL")
            failure.text = text
        elif not result.reached:
            ET.SubElement(case, "skipped", message=_clean(result.received))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")
