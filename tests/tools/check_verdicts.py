"""Every check's verdict at a glance, for `socklab check`'s tests: a report's verdicts as
{id: verdict}, and the expected ones written as one letter per check, in report order.

P pass, F fail, N not reached (a check it depends on failed, or what it judges never happened
in that run).
"""

from __future__ import annotations

from typing import Any

VERDICT_WORDS = {"P": "pass", "F": "fail", "N": "not reached"}


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {check["id"]: check["verdict"] for check in report["checks"]}


def expect(letters: str, ids: list[str]) -> dict[str, str]:
    """`"PFNNNPP"` as {id: verdict} over `ids`."""
    assert len(letters) == len(ids), (letters, ids)
    return {check_id: VERDICT_WORDS[letter] for check_id, letter in zip(ids, letters, strict=True)}


def assert_counts_match(report: dict[str, Any], letters: str) -> None:
    """The report's counts agree with its verdicts, and each not-reached check says why."""
    assert report["passed"] == letters.count("P")
    assert report["failed"] == letters.count("F")
    assert report["not_reached"] == letters.count("N")
    for check in report["checks"]:
        if check["verdict"] == "not reached":
            assert check["received"].startswith("not reached: "), check
