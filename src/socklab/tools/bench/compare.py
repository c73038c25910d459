"""`bench --compare`: every concurrency model under the same scenarios, side by side.

The models are read from the RUNTIMES registry when the comparison runs, so a model added there
is compared without a change here. The asyncio model appears twice where uvloop is installed:
on uvloop and on the standard event loop, the lesson's "same code, other loop" figure. Each
(server, scenario) cell starts a fresh server, as the reference benchmark does, so no cell
inherits another's memory peak or warm caches. A cell that fails (a model that cannot hold
10,000 connections, say) is reported as failed with its reason, and the comparison goes on.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from socklab.errors import SocklabError, UsageError
from socklab.tools.bench.results import CompareCell, Comparison
from socklab.tools.bench.run import BenchTarget, ProgressCallback, run_bench
from socklab.tools.bench.workload import SCENARIOS


@dataclass(frozen=True, slots=True)
class ComparedServer:
    label: str  # "asyncio/uvloop", "threads", ...
    model: str
    event_loop: str
    transports: frozenset[str]


def compared_servers() -> list[ComparedServer]:
    from socklab.runtimes import RUNTIMES

    servers = []
    for name in RUNTIMES:
        info = RUNTIMES[name]
        if name == "asyncio":
            if importlib.util.find_spec("uvloop") is not None:
                servers.append(ComparedServer("asyncio/uvloop", name, "uvloop", info.transports))
            servers.append(ComparedServer("asyncio/asyncio", name, "asyncio", info.transports))
        else:
            servers.append(ComparedServer(name, name, "auto", info.transports))
    return servers


@dataclass(frozen=True, slots=True)
class CellStart:
    """A (server, scenario) run about to start: number `number` of `total`; each takes at
    least `least_s` (warm-up plus measurement), plus starting and stopping its server."""

    server: str
    scenario: str
    number: int
    total: int
    least_s: float


def planned_cells(scenarios: Sequence[str]) -> list[tuple[ComparedServer, str]]:
    """Every (server, scenario) the comparison runs, in order: those its transports allow."""
    servers = compared_servers()
    return [
        (server, name)
        for name in scenarios
        for server in servers
        if SCENARIOS[name].transport in server.transports
    ]


def estimate_left_s(finished_s: Sequence[float], remaining: int, least_s: float) -> float:
    """Seconds left for `remaining` runs: the mean of the runs so far times their number;
    before any finished, the least each takes (an estimate that can only grow)."""
    per_run = sum(finished_s) / len(finished_s) if finished_s else least_s
    return max(per_run, least_s) * remaining


def parse_scenarios(text: str | None) -> list[str]:
    if not text:
        return list(SCENARIOS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown or not names:
        raise UsageError(
            f"unknown scenario {', '.join(unknown) or repr(text)}; "
            f"choose from {', '.join(SCENARIOS)}"
        )
    return names


def run_comparison(
    scenarios: list[str],
    *,
    duration_s: float,
    warmup_s: float,
    framing: str = "line",
    processes: int | None = None,
    pin: bool = True,
    on_cell: Callable[[CellStart], ProgressCallback | None] | None = None,
) -> Comparison:
    """Run every compared server under every scenario its transports allow; `on_cell` hears of
    each run as it starts."""
    servers = compared_servers()
    plan = planned_cells(scenarios)
    cells: list[CompareCell] = []
    for number, (server, scenario_name) in enumerate(plan, start=1):
        scenario = SCENARIOS[scenario_name]
        workload = scenario.workload(duration_s=duration_s, warmup_s=warmup_s, framing=framing)
        start = CellStart(server.label, scenario_name, number, len(plan), warmup_s + duration_s)
        progress = on_cell(start) if on_cell else None
        try:
            result = run_bench(
                BenchTarget(model=server.model, event_loop=server.event_loop),
                workload,
                processes=processes,
                progress=progress,
                pin=pin,
            )
        except UsageError:
            raise
        except SocklabError as error:
            cells.append(CompareCell(server.label, scenario_name, None, str(error)))
            continue
        cells.append(CompareCell(server.label, scenario_name, result))
    return Comparison(
        servers=tuple(server.label for server in servers),
        scenarios=tuple(scenarios),
        cells=tuple(cells),
    )
