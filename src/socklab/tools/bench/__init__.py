"""`socklab bench`: a closed-loop load generator for the converter protocol, and model comparison.

- workload.py  what is sent and the exact bytes expected back; the compare scenarios
- load.py      the closed loop itself (one process, one poller, every reply checked)
- histogram.py latency histogram: bounded, mergeable, ~1.5 % resolution
- server.py    a converter server started as a child process, its CPU and peak RSS
- run.py       one run: processes, progress, merging into a BenchResult
- compare.py   every RUNTIMES model under the same scenarios
- results.py   the dataclasses the CLI renders
"""

from socklab.tools.bench.compare import compared_servers, parse_scenarios, run_comparison
from socklab.tools.bench.results import (
    BenchResult,
    CompareCell,
    Comparison,
    ErrorCounts,
    LatencySummary,
    ServerUsage,
)
from socklab.tools.bench.run import BenchTarget, Progress, run_bench
from socklab.tools.bench.workload import SCENARIOS, Workload

__all__ = [
    "SCENARIOS",
    "BenchResult",
    "BenchTarget",
    "CompareCell",
    "Comparison",
    "ErrorCounts",
    "LatencySummary",
    "Progress",
    "ServerUsage",
    "Workload",
    "compared_servers",
    "parse_scenarios",
    "run_bench",
    "run_comparison",
]
