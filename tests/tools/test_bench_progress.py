"""`bench --compare`'s progress: a line per model run on stderr (only on a terminal) with an
estimate of the time left; standard output is untouched. The callback is driven in-process
with the starts a comparison announces, so no benchmark has to run."""

from __future__ import annotations

import io
import re

from socklab.cli.bench import CompareProgress, format_time_left
from socklab.cli.environment import Environment
from socklab.tools.bench.compare import CellStart, estimate_left_s, planned_cells


def environment(*, stderr_isatty: bool) -> tuple[Environment, io.StringIO, io.StringIO]:
    stdout, stderr = io.StringIO(), io.StringIO()
    env = Environment(
        stdin=io.StringIO(),
        stdout=stdout,
        stderr=stderr,
        environ={"LANG": "C.UTF-8"},
        stdin_isatty=False,
        stdout_isatty=True,
        stderr_isatty=stderr_isatty,
    )
    return env, stdout, stderr


def test_estimate_uses_the_runs_so_far() -> None:
    assert estimate_left_s([], 4, 3.0) == 12.0  # before any run: the least each takes
    assert estimate_left_s([5.0, 7.0], 3, 3.0) == 18.0  # mean 6 s, 3 to go
    assert estimate_left_s([1.0], 2, 3.0) == 6.0  # never below the least a run takes


def test_time_left_reads_as_minutes_and_seconds() -> None:
    assert format_time_left(0.2) == "1 s"
    assert format_time_left(59) == "59 s"
    assert format_time_left(125) == "2 min 05 s"
    assert format_time_left(3720) == "1 h 02 min"


def test_one_line_per_run_on_a_terminal_stderr() -> None:
    env, stdout, stderr = environment(stderr_isatty=True)
    progress = CompareProgress(env)
    plan = planned_cells(["c1_64", "udp32_64"])
    for number, (server, scenario) in enumerate(plan, start=1):
        assert progress(CellStart(server.label, scenario, number, len(plan), 2.5)) is None
    lines = stderr.getvalue().splitlines()
    assert len(lines) == len(plan)
    first_server, first_scenario = plan[0][0].label, plan[0][1]
    # Before any run finished: every run takes at least its warm-up plus measurement.
    assert lines[0] == (
        f"[1/{len(plan)}] {first_server}: {first_scenario} "
        f"(about {format_time_left(2.5 * len(plan))} left)"
    )
    last = rf"^\[{len(plan)}/{len(plan)}\] {re.escape(plan[-1][0].label)}: udp32_64 \(about "
    assert re.match(last + r"\d+ s left\)$", lines[-1]), lines[-1]
    assert stdout.getvalue() == ""


def test_nothing_when_stderr_is_not_a_terminal() -> None:
    env, stdout, stderr = environment(stderr_isatty=False)
    progress = CompareProgress(env)
    progress(CellStart("threads", "c1_64", 1, 3, 1.0))
    assert stderr.getvalue() == "" and stdout.getvalue() == ""
