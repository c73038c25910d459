"""`socklab bench`: load the converter server, verify every reply, report throughput and latency.

Parse, call socklab.tools.bench, render: a rich progress bar while it runs (only on a terminal),
then a table, or `--json` for machines. `--compare` runs every model under the same scenarios.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socklab.cli.arguments import (
    add_framing,
    add_loop,
    add_model,
    add_udp_flag,
    host_port,
    non_negative_int,
    positive_int,
    positive_seconds,
)
from socklab.cli.environment import Environment
from socklab.cli.pictures import PictureFile
from socklab.cli.status import ExitStatus
from socklab.errors import UsageError
from socklab.i18n import _, format_count, format_number
from socklab.protocol.endpoints import format_endpoint
from socklab.runtimes import DEFAULT_RUNTIME
from socklab.tools.bench.results import format_megabytes
from socklab.tools.bench.workload import SCENARIOS, Workload, describe_workload

if TYPE_CHECKING:
    from socklab.tools.bench.compare import CellStart
    from socklab.tools.bench.results import BenchResult, Comparison
    from socklab.tools.bench.run import Progress, ProgressCallback

# `--json`'s format version (a run's object and --compare's): raised when a key changes meaning
# or goes away, not when one is added.
JSON_SCHEMA_VERSION = 1


def _phase_label(phase: str) -> str:
    labels = {
        "setup": _("connecting"),
        "warmup": _("warming up"),
        "measure": _("measuring"),
        "done": _("done"),
    }
    return labels.get(phase, phase)


def configure(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--target",
        type=host_port,
        metavar="HOST:PORT",
        help=_("measure the converter server running there"),
    )
    add_model(
        where,
        choices=None,
        default=None,
        help=_(
            "start 'socklab converter server --model M' on loopback and measure it (default: {model})"
        ).format(model=DEFAULT_RUNTIME),
    )
    where.add_argument(
        "--compare",
        action="store_true",
        help=_("run every model (and uvloop vs the standard loop) under the same scenarios"),
    )
    add_framing(parser, help=_("TCP message framing (default: %(default)s)"))
    add_loop(parser, help=_("event loop of a started asyncio server (default: %(default)s)"))
    add_udp_flag(parser, help=_("send UDP datagrams, N outstanding at once"))
    parser.add_argument(
        "--connections",
        type=positive_int,
        default=100,
        help=_("active connections, or outstanding datagrams with --udp (default: %(default)s)"),
    )
    parser.add_argument(
        "--size",
        type=positive_int,
        default=64,
        help=_("bytes of text per request (default: %(default)s)"),
    )
    parser.add_argument(
        "--duration",
        type=positive_seconds,
        default=5.0,
        help=_("seconds measured (default: %(default)s)"),
    )
    parser.add_argument(
        "--warmup",
        type=_non_negative_seconds,
        default=1.0,
        help=_("seconds of load before measuring (default: %(default)s)"),
    )
    parser.add_argument(
        "--idle",
        type=non_negative_int,
        default=0,
        help=_("extra connections that stay silent, as thousands of idle clients would"),
    )
    parser.add_argument(
        "--pipeline",
        type=positive_int,
        default=1,
        help=_("requests sent at once per connection before waiting (default: %(default)s)"),
    )
    parser.add_argument(
        "--processes",
        type=positive_int,
        help=_("load-generator processes (default: one per core the server does not use)"),
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help=_(
            "do not give the server that bench starts a core of its own, apart from bench and its load processes (default: it gets one; a --target server is never moved)"
        ),
    )
    parser.add_argument(
        "--scenarios",
        help=_("with --compare: comma-separated subset of {names}").format(
            names=",".join(SCENARIOS)
        ),
    )
    parser.add_argument("--json", action="store_true", help=_("print the results as JSON"))
    parser.add_argument(
        "--svg",
        type=Path,
        metavar="FILE",
        help=_(
            "with --compare: also draw the comparison as an SVG chart in FILE (requests/s and peak memory per model)"
        ),
    )
    parser.set_defaults(handler=run)


def _non_negative_seconds(text: str) -> float:
    if text.strip() in ("0", "0.0"):
        return 0.0
    return positive_seconds(text)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    # Imported here, not at the top: every socklab command builds this parser at start-up.
    from socklab.tools.bench.run import BenchTarget, run_bench

    if args.compare:
        return _run_compare(args, env)
    if args.svg is not None:
        raise UsageError(
            _("--svg draws the comparison: add --compare (socklab bench --compare --svg FILE)")
        )
    if args.scenarios:
        env.fail(
            _("--scenarios applies to --compare only: add --compare, or leave --scenarios out.")
        )
        return ExitStatus.USAGE
    workload = Workload(
        transport=args.transport,
        connections=args.connections,
        size=args.size,
        duration_s=args.duration,
        warmup_s=args.warmup,
        idle=args.idle,
        pipeline=args.pipeline,
        framing=args.framing,
    )
    if args.target is not None:
        target = BenchTarget(address=args.target)
    else:
        target = BenchTarget(model=args.model or DEFAULT_RUNTIME, event_loop=args.loop)
    with _progress_bar(env, enabled=not args.json) as progress:
        result = run_bench(
            target, workload, processes=args.processes, progress=progress, pin=args.pin
        )
    if args.json:
        env.say(json.dumps(result_to_json(result), indent=2))
    else:
        _render_result(env, result)
    return _status_of(result)


def _status_of(result: BenchResult) -> ExitStatus:
    errors = result.errors
    if errors.mismatched or errors.bad_greeting:
        return ExitStatus.PROTOCOL
    if errors.total:
        return ExitStatus.NETWORK
    return ExitStatus.OK


# --- progress --------------------------------------------------------------------------------------


@contextmanager
def _progress_bar(env: Environment, *, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich progress bar on a terminal; nothing when output goes to a pipe or file."""
    if not (enabled and env.stdout_isatty):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    console = Console(file=env.stdout, force_terminal=True)  # env says it is a terminal
    bar = RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task(_("connecting"), total=1.0, rate="")

    def update(progress: Progress) -> None:
        rate = ""
        if progress.phase == "measure":
            measured = progress.elapsed_s - progress.warmup_s
            if measured > 0:
                rate = _("{rate} req/s").format(rate=format_number(progress.requests / measured))
        bar.update(
            task,
            completed=progress.elapsed_s / progress.total_s if progress.total_s else 1.0,
            description=_phase_label(progress.phase),
            rate=rate,
        )

    with bar:
        yield update


# --- rendering -------------------------------------------------------------------------------------


def _render_result(env: Environment, result: BenchResult) -> None:
    from rich.console import Console
    from rich.table import Table

    workload = result.workload
    host, port = result.target
    table = Table(title=_("socklab bench"), show_header=False)
    table.add_column("metric")  # header hidden
    table.add_column("value", justify="right")
    table.add_row(
        _("target"), format_endpoint(host, port) + (f" ({result.model})" if result.model else "")
    )
    table.add_row(_("workload"), describe_workload(workload))
    table.add_row(_("measured"), _("{s} s").format(s=format_number(result.elapsed_s, 1)))
    table.add_row(_("requests"), format_number(result.requests))
    table.add_row(_("requests/s"), format_number(result.requests_per_s))
    latency = result.latency
    for label, value in (
        ("p50", latency.p50_us),
        ("p90", latency.p90_us),
        ("p99", latency.p99_us),
        ("p99.9", latency.p999_us),
        ("max", latency.max_us),
    ):
        table.add_row(_("latency {which}").format(which=label), f"{format_number(value)} µs")
    errors = result.errors
    table.add_row(_("errors"), format_number(errors.total))
    for label, count in (
        (_("wrong replies"), errors.mismatched),
        (_("wrong greetings"), errors.bad_greeting),
        (_("closed by the server"), errors.closed),
        (_("connections failed"), errors.connect_failed),
        (_("requests unanswered"), errors.unanswered),
    ):
        if count:
            table.add_row("  " + label, format_number(count))
    if workload.transport == "udp":
        table.add_row(_("datagrams lost"), format_number(errors.lost))
        if errors.late:
            table.add_row(_("late replies"), format_number(errors.late))
    if workload.idle:
        table.add_row(
            _("idle connections open"),
            f"{format_number(result.idle_connected)}/{format_number(workload.idle)}",
        )
    if result.server is not None:
        table.add_row(
            _("server CPU"),
            _("{cores} cores").format(cores=format_number(result.server.cpu_cores, 2)),
        )
        table.add_row(_("server peak RSS"), format_megabytes(result.server.peak_rss_bytes))
    table.add_row(
        _("bench CPU"),
        _("{cores} cores (busiest of {processes})").format(
            cores=format_number(result.bench_cpu_cores, 2),
            processes=format_count("{count} process", "{count} processes", result.processes),
        ),
    )
    if result.placement is not None:
        table.add_row(
            _("CPU placement"),
            _("server on CPUs {server}, bench on CPUs {bench}").format(
                server=_cpu_list(result.placement.server_cpus),
                bench=_cpu_list(result.placement.bench_cpus),
            ),
        )
    console = Console(file=env.stdout, width=max(60, min(100, Console().width)))
    console.print(table)
    if result.bench_is_bottleneck:
        env.say(
            _(
                "Note: the load generator was busy {percent} % of a core: it, not the server, limits this figure. On a machine with more cores use --processes N."
            ).format(percent=format_number(result.bench_cpu_cores * 100))
        )


def _cpu_list(cpus: tuple[int, ...]) -> str:
    return ",".join(str(cpu) for cpu in cpus)


def result_to_json(result: BenchResult) -> dict[str, Any]:
    workload = result.workload
    latency = result.latency
    errors = result.errors
    server = result.server
    return {
        "schema": JSON_SCHEMA_VERSION,
        "target": f"{result.target[0]}:{result.target[1]}",
        "model": result.model,
        "transport": workload.transport,
        "framing": workload.framing,
        "connections": workload.connections,
        "size": workload.size,
        "duration_s": workload.duration_s,
        "warmup_s": workload.warmup_s,
        "idle": workload.idle,
        "pipeline": workload.pipeline,
        "processes": result.processes,
        "elapsed_s": round(result.elapsed_s, 3),
        "requests": result.requests,
        "requests_per_s": round(result.requests_per_s, 1),
        "latency_us": {
            "p50": round(latency.p50_us, 1),
            "p90": round(latency.p90_us, 1),
            "p99": round(latency.p99_us, 1),
            "p99.9": round(latency.p999_us, 1),
            "max": round(latency.max_us, 1),
            "mean": round(latency.mean_us, 1),
        },
        "errors": errors.total,
        "error_counts": {
            "mismatched": errors.mismatched,
            "bad_greeting": errors.bad_greeting,
            "closed": errors.closed,
            "connect_failed": errors.connect_failed,
            "unanswered": errors.unanswered,
        },
        "lost": errors.lost,
        "late": errors.late,
        "idle_connected": result.idle_connected,
        "server": None
        if server is None
        else {
            "pid": server.pid,
            "cpu_cores": round(server.cpu_cores, 3),
            "peak_rss_bytes": server.peak_rss_bytes,
        },
        "bench_cpu_cores": round(result.bench_cpu_cores, 3),
        "bench_is_bottleneck": result.bench_is_bottleneck,
        "cpus": None
        if result.placement is None
        else {
            "server": list(result.placement.server_cpus),
            "bench": list(result.placement.bench_cpus),
        },
    }


# --- compare ---------------------------------------------------------------------------------------


def _run_compare(args: argparse.Namespace, env: Environment) -> ExitStatus:
    from socklab.tools.bench.compare import parse_scenarios, run_comparison

    scenarios = parse_scenarios(args.scenarios)
    on_cell = CompareProgress(env)
    picture = PictureFile(args.svg) if args.svg is not None else None
    try:
        comparison = run_comparison(
            scenarios,
            duration_s=args.duration,
            warmup_s=args.warmup,
            framing=args.framing,
            processes=args.processes,
            pin=args.pin,
            on_cell=on_cell,
        )
        if picture is not None:
            from socklab.tools.bench.chart import render_comparison_svg

            picture.write(render_comparison_svg(comparison))
    finally:
        if picture is not None:
            picture.discard()
    if args.json:
        env.say(json.dumps(comparison_to_json(comparison), indent=2))
    else:
        _render_comparison(env, comparison)
        if picture is not None:
            env.say(_("Chart written to {path}.").format(path=picture.path))
    failed = any(cell.result is not None and cell.result.errors.total for cell in comparison.cells)
    return ExitStatus.PROTOCOL if failed else ExitStatus.OK


class CompareProgress:
    """One line per model run on stderr, when stderr is a terminal: which run of how many, and
    an estimate of the time left (the mean of the runs so far times the runs still to come).
    Standard output (the table, or the JSON) is the same with or without it."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._enabled = env.stderr_isatty
        self._finished_s: list[float] = []
        self._started: float | None = None

    def __call__(self, cell: CellStart) -> ProgressCallback | None:
        from socklab.tools.bench.compare import estimate_left_s

        now = time.monotonic()
        if self._started is not None:
            self._finished_s.append(now - self._started)
        self._started = now
        if self._enabled:
            left_s = estimate_left_s(self._finished_s, cell.total - cell.number + 1, cell.least_s)
            self._env.warn(
                _("[{number}/{total}] {server}: {scenario} (about {left} left)").format(
                    number=cell.number,
                    total=cell.total,
                    server=cell.server,
                    scenario=cell.scenario,
                    left=format_time_left(left_s),
                )
            )
        return None


def format_time_left(seconds: float) -> str:
    """`45 s`, `3 min 05 s`, `1 h 02 min`: rounded up to whole seconds."""
    whole = math.ceil(seconds)
    if whole < 60:
        return _("{s} s").format(s=whole)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return _("{m} min {s:02d} s").format(m=minutes, s=secs)
    hours, minutes = divmod(minutes, 60)
    return _("{h} h {m:02d} min").format(h=hours, m=minutes)


def comparison_to_json(comparison: Comparison) -> dict[str, Any]:
    return {
        "schema": JSON_SCHEMA_VERSION,
        "servers": list(comparison.servers),
        "scenarios": list(comparison.scenarios),
        "cells": [
            {
                "server": cell.server,
                "scenario": cell.scenario,
                "failure": cell.failure,
                "result": None if cell.result is None else result_to_json(cell.result),
            }
            for cell in comparison.cells
        ],
    }


def _render_comparison(env: Environment, comparison: Comparison) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=_("requests/s (p99 latency) per model and scenario"))
    table.add_column(_("model"))
    for scenario in comparison.scenarios:
        table.add_column(scenario, justify="right")
    table.add_column(_("peak RSS"), justify="right")
    for server in comparison.servers:
        row = [server]
        peak = 0
        present = False
        for scenario in comparison.scenarios:
            cell = comparison.cell(server, scenario)
            if cell is None:
                row.append("")
                continue
            present = True
            if cell.result is None:
                row.append(_("failed"))
                continue
            result = cell.result
            text = f"{format_number(result.requests_per_s)} ({format_number(result.latency.p99_us)} µs)"
            if result.errors.total:
                text += " " + format_count("{count} error", "{count} errors", result.errors.total)
            row.append(text)
            if result.server is not None and result.server.peak_rss_bytes:
                peak = max(peak, result.server.peak_rss_bytes)
        if present:
            row.append(format_megabytes(peak or None))
            table.add_row(*row)
    Console(file=env.stdout, width=200).print(table)
    for cell in comparison.cells:
        if cell.failure:
            env.say(
                _("{server} {scenario} failed: {reason}").format(
                    server=cell.server, scenario=cell.scenario, reason=cell.failure
                )
            )
