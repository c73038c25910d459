"""What a benchmark run reports: plain frozen dataclasses, rendered by the CLI (table or JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

from socklab.i18n import format_number
from socklab.tools.bench.placement import Placement
from socklab.tools.bench.workload import Workload

# A process whose CPU use over the measured window is at least this (1.0 = one core) cannot go
# faster: when the load generator reaches it, the figures describe the generator, not the server.
BOTTLENECK_CPU = 0.9


def format_megabytes(value: int | None) -> str:
    """Bytes as decimal megabytes (`12.3 MB`, as ps and top count them); `-` for unknown."""
    return "-" if value is None else f"{format_number(value / 1e6, 1)} MB"


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Per-request latency in microseconds: time from sending a request to its whole reply."""

    p50_us: float
    p90_us: float
    p99_us: float
    p999_us: float
    max_us: float
    mean_us: float


@dataclass(frozen=True, slots=True)
class ErrorCounts:
    """Everything that went wrong, counted; a correct server on loopback gives all zeros."""

    mismatched: int = 0  # a reply differed from the expected bytes (wrong conversion, extra bytes)
    bad_greeting: int = 0  # the first line was not the converter's greeting
    closed: int = 0  # the server closed an active connection
    connect_failed: int = 0  # connect() failed or no greeting arrived in time
    unanswered: int = 0  # requests still without a reply when the run ended (TCP)
    lost: int = 0  # UDP: a datagram answered by no reply within the timeout
    late: int = 0  # UDP: a reply that arrived after its request was given up (not an error)

    @property
    def total(self) -> int:
        """Errors of the server under test; UDP loss is reported apart (the network may drop)."""
        return (
            self.mismatched
            + self.bad_greeting
            + self.closed
            + self.connect_failed
            + self.unanswered
        )


@dataclass(frozen=True, slots=True)
class ServerUsage:
    """Resources of a server bench started itself, over the measured window."""

    pid: int
    cpu_cores: float  # CPU seconds per wall second (1.0 = one core busy)
    peak_rss_bytes: int | None  # the kernel's high-water mark where it keeps one, else sampled
    command: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BenchResult:
    target: tuple[str, int]
    workload: Workload
    model: str | None  # "asyncio/uvloop" when bench started the server, None for --target
    processes: int
    requests: int
    elapsed_s: float
    latency: LatencySummary
    errors: ErrorCounts
    idle_connected: int  # idle connections that got their greeting and stayed open
    bench_cpu_cores: float  # the busiest load-generator process (1.0 = one core)
    server: ServerUsage | None
    notes: tuple[str, ...] = field(default=())
    # The cores of the server bench started and of bench itself; None: left to the OS.
    placement: Placement | None = None

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def bench_is_bottleneck(self) -> bool:
        return self.bench_cpu_cores >= BOTTLENECK_CPU


@dataclass(frozen=True, slots=True)
class CompareCell:
    """One (server, scenario) of `bench --compare`: a result, or why there is none."""

    server: str
    scenario: str
    result: BenchResult | None
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    servers: tuple[str, ...]
    scenarios: tuple[str, ...]
    cells: tuple[CompareCell, ...]

    def cell(self, server: str, scenario: str) -> CompareCell | None:
        for cell in self.cells:
            if cell.server == server and cell.scenario == scenario:
                return cell
        return None
