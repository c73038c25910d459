"""One benchmark run: start the server if asked, spread the load over processes, merge, report.

The load runs in this process when one process suffices; otherwise in worker processes
(`multiprocessing`, spawn start method: the same on every OS) that each take a share of the
connections, set up, wait for one common go signal, and send back their report with the
histogram. Progress is published through a shared counter, so the caller's progress bar works
the same either way.

How many processes by default: a Python load generator needs about a core to keep one fast
server busy, so bench uses every core the server does not (the server is assumed to use one),
up to 4, and never more processes than connections. When the busiest load process is still at
a full core the result says so (`bench_is_bottleneck`): the figure is then a lower bound.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from socklab.errors import SocklabError, UsageError
from socklab.i18n import format_number, ngettext
from socklab.tools.bench.histogram import LatencyHistogram
from socklab.tools.bench.load import (
    PHASE_DONE,
    PHASE_MEASURE,
    PHASE_SETUP,
    PHASE_WARMUP,
    PROGRESS_INTERVAL_S,
    LoadControl,
    LoadPlan,
    LoadReport,
    check_load_options,
    run_load,
)
from socklab.tools.bench.placement import current_cpus, plan_placement, running_on
from socklab.tools.bench.results import BenchResult, ErrorCounts, LatencySummary, ServerUsage
from socklab.tools.bench.server import ServerProcess, ensure_model_exists, server_command
from socklab.tools.bench.workload import Workload

MAX_AUTO_PROCESSES = 4
# Files each connection costs; spare for the interpreter, the poller and pipes.
_FD_SPARE = 256


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str  # setup, warmup, measure, done
    elapsed_s: float  # since the go signal (0 during setup)
    total_s: float  # warmup + duration
    warmup_s: float
    requests: int  # counted in the measured window so far


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class BenchTarget:
    """Either an address to measure, or a model for bench to start (then `address` is None)."""

    address: tuple[str, int] | None = None
    model: str | None = None
    event_loop: str = "auto"


def available_cores() -> int:
    cpus = current_cpus()
    return len(cpus) if cpus else max(1, os.cpu_count() or 1)


def auto_processes(workload: Workload) -> int:
    return max(1, min(available_cores() - 1, MAX_AUTO_PROCESSES, workload.connections))


def raise_file_limit(needed: int) -> None:
    """Raise the soft limit on open files towards the hard one (children inherit it)."""
    try:
        import resource
    except ImportError:  # Windows: no such per-process limit for sockets
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + _FD_SPARE
    if soft != resource.RLIM_INFINITY and soft < want:
        new_soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < want:
        raise UsageError(
            ngettext(
                "{needed} connection needs {want} open files, but the limit is {soft} (raise it with 'ulimit -n {raw}')",
                "{needed} connections need {want} open files, but the limit is {soft} (raise it with 'ulimit -n {raw}')",
                needed,
            ).format(
                needed=format_number(needed),
                want=format_number(want),
                soft=format_number(soft),
                raw=want,
            )
        )


def split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def summarize(histogram: LatencyHistogram) -> LatencySummary:
    def micros(percent: float) -> float:
        return histogram.percentile_ns(percent) / 1000

    return LatencySummary(
        p50_us=micros(50),
        p90_us=micros(90),
        p99_us=micros(99),
        p999_us=micros(99.9),
        max_us=histogram.max_ns / 1000,
        mean_us=histogram.mean_ns / 1000,
    )


def merge_errors(reports: list[LoadReport]) -> ErrorCounts:
    fields = ErrorCounts.__dataclass_fields__
    totals = {name: sum(getattr(report.errors, name) for report in reports) for name in fields}
    return ErrorCounts(**totals)


# --- in-process and worker-process control -------------------------------------------------------


class _LocalControl(LoadControl):
    def __init__(self, on_phase: Callable[[str, int], None]) -> None:
        self._on_phase = on_phase

    def progress(self, phase: str, requests: int) -> None:
        self._on_phase(phase, requests)


class _WorkerControl(LoadControl):
    """In a worker process: publish progress in shared memory, wait on the common go event."""

    def __init__(self, ready: Any, go: Any, counter: Any) -> None:
        self._ready = ready
        self._go = go
        self._counter = counter

    def wait_for_go(self) -> None:
        self._ready.release()
        self._go.wait()

    def progress(self, phase: str, requests: int) -> None:
        self._counter.value = requests


def _worker_main(plan: LoadPlan, ready: Any, go: Any, counter: Any, results: Any) -> None:
    try:
        report: LoadReport | SocklabError = run_load(plan, _WorkerControl(ready, go, counter))
    except SocklabError as error:
        ready.release()  # do not keep the others waiting for a worker that failed
        report = error
    except Exception as exc:  # a bug: reported by the parent as one line, not a hang
        ready.release()
        report = SocklabError(f"a load process failed: {type(exc).__name__}: {exc}")
    results.put(report)


# --- the run -------------------------------------------------------------------------------------


def run_bench(
    target: BenchTarget,
    workload: Workload,
    *,
    processes: int | None = None,
    progress: ProgressCallback | None = None,
    pin: bool = True,
) -> BenchResult:
    """Measure the converter server of `target` under `workload`.

    With `pin`, a server bench starts runs on a core of its own, bench on the others
    (`placement`); a server at `target.address` is wherever its owner put it.
    """
    check_load_options(workload)
    count = processes if processes is not None else auto_processes(workload)
    if count < 1:
        raise UsageError("--processes must be at least 1")
    count = min(count, workload.connections)
    total_sockets = workload.connections + workload.idle
    # Bench and the server it starts (which inherits the limit) each hold one socket per
    # connection, in their own process.
    raise_file_limit(total_sockets)
    if target.model is None:
        assert target.address is not None
        return _measure(target.address, None, workload, count, progress)
    ensure_model_exists(target.model, workload.transport)
    command = server_command(
        target.model,
        framing=workload.framing,
        transport=workload.transport,
        event_loop=target.event_loop,
        max_clients=total_sockets + 16,
    )
    placement = plan_placement() if pin else None
    with ServerProcess(command, cpus=placement.server_cpus if placement else None) as server:
        bench_cpus = placement.bench_cpus if placement and server.pinned else None
        with running_on(bench_cpus) as bench_pinned:  # the load processes inherit it
            result = _measure(server.address, server, workload, count, progress)
    return replace(result, placement=placement if bench_pinned else None)


def _measure(
    address: tuple[str, int],
    server: ServerProcess | None,
    workload: Workload,
    count: int,
    progress: ProgressCallback | None,
) -> BenchResult:
    total_s = workload.warmup_s + workload.duration_s
    shares = split_evenly(workload.connections, count)
    idle_shares = split_evenly(workload.idle, count)
    plans = [
        LoadPlan(address[0], address[1], workload, shares[i], idle_shares[i]) for i in range(count)
    ]
    go_time = 0.0
    last_phase = PHASE_SETUP
    server_cpu = 0.0

    def on_phase(phase: str, requests: int) -> None:
        nonlocal go_time, last_phase, server_cpu
        now = time.perf_counter()
        if phase == PHASE_WARMUP and last_phase == PHASE_SETUP:
            go_time = now
        if server is not None:
            server.sample()
            if phase == PHASE_MEASURE and last_phase != PHASE_MEASURE:
                server.mark_cpu()
            if phase == PHASE_DONE and last_phase != PHASE_DONE:
                server_cpu = server.cpu_cores_since_mark()
        last_phase = phase
        if progress is not None:
            elapsed = now - go_time if go_time else 0.0
            progress(Progress(phase, min(elapsed, total_s), total_s, workload.warmup_s, requests))

    if count == 1:
        reports = [run_load(plans[0], _LocalControl(on_phase))]
    else:
        reports = _run_workers(plans, workload, on_phase)
    if server is not None:
        server.check_alive()
    histogram = LatencyHistogram()
    for report in reports:
        histogram.merge(report.histogram)
    elapsed = max(report.elapsed_s for report in reports)
    usage = None
    if server is not None:
        usage = ServerUsage(
            pid=server.pid,
            cpu_cores=server_cpu,
            peak_rss_bytes=server.peak_rss_bytes(),
            command=server.command,
        )
    return BenchResult(
        target=address,
        workload=workload,
        model=server.model_label if server is not None else None,
        processes=count,
        requests=sum(report.requests for report in reports),
        elapsed_s=elapsed,
        latency=summarize(histogram),
        errors=merge_errors(reports),
        idle_connected=sum(report.idle_connected for report in reports),
        bench_cpu_cores=max(report.cpu_cores for report in reports),
        server=usage,
    )


def _run_workers(
    plans: list[LoadPlan], workload: Workload, on_phase: Callable[[str, int], None]
) -> list[LoadReport]:
    context = multiprocessing.get_context("spawn")
    ready = context.Semaphore(0)
    go = context.Event()
    results = context.Queue()
    counters = [context.Value("q", 0, lock=False) for _ in plans]
    workers = [
        context.Process(
            target=_worker_main,
            args=(plan, ready, go, counter, results),
            name=f"socklab-bench-{index}",
            daemon=True,
        )
        for index, (plan, counter) in enumerate(zip(plans, counters, strict=True))
    ]
    for worker in workers:
        worker.start()
    try:
        on_phase(PHASE_SETUP, 0)
        for _ in workers:
            # Each worker's own setup is bounded (SETUP_TIMEOUT_S); this bound covers start-up.
            if not ready.acquire(timeout=120):
                raise SocklabError("a load process did not finish its setup")
        go.set()
        start = time.perf_counter()
        warm_end = start + workload.warmup_s
        end = warm_end + workload.duration_s
        on_phase(PHASE_WARMUP, 0)
        while time.perf_counter() < end:
            phase = PHASE_MEASURE if time.perf_counter() >= warm_end else PHASE_WARMUP
            on_phase(phase, sum(counter.value for counter in counters))
            time.sleep(PROGRESS_INTERVAL_S)
        collected: list[LoadReport] = []
        failures: list[SocklabError] = []
        for _ in workers:
            item = results.get(timeout=60)
            if isinstance(item, SocklabError):
                failures.append(item)
            else:
                collected.append(item)
        if failures:
            raise failures[0]
        on_phase(PHASE_DONE, sum(report.requests for report in collected))
        return collected
    finally:
        for worker in workers:
            worker.join(5)
            if worker.is_alive():
                worker.terminate()
                worker.join(5)
