"""Where bench runs the server it starts, and itself: on different cores when it can.

A closed-loop load over loopback is a ping-pong: each side wakes the other, and the scheduler
tends to move a woken process next to its waker (Linux's wake-affine heuristic), so both end up
sharing one core. On the project's 2-vCPU machine `bench --compare` then measured about 40,000
requests/s for a server that answers 150,000 with the two on separate cores, changing from run
to run with where the scheduler happened to put them. The reference benchmark pins with
taskset; bench does the same through psutil's `cpu_affinity` (Linux, Windows, FreeBSD): the
server gets the last core it may use, bench and its load processes the others. macOS has no
affinity call, and one core leaves nothing to separate: there placement stays with the OS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Placement:
    server_cpus: tuple[int, ...]
    bench_cpus: tuple[int, ...]


def plan_placement() -> Placement | None:
    """The server on the last core this process may use, bench on the rest; None if not possible."""
    import psutil

    try:
        cpus = sorted(psutil.Process().cpu_affinity())
    except (AttributeError, OSError, psutil.Error):
        return None  # no affinity on this OS (macOS), or not allowed
    if len(cpus) < 2:
        return None
    return Placement(server_cpus=(cpus[-1],), bench_cpus=tuple(cpus[:-1]))


@contextlib.contextmanager
def placed(placement: Placement | None, server_pid: int) -> Iterator[Placement | None]:
    """Pin the server and this process (load processes started inside inherit it) for a run;
    this process gets its cores back afterwards. Yields the placement in force, or None."""
    if placement is None:
        yield None
        return
    import psutil

    me = psutil.Process()
    try:
        before = me.cpu_affinity()
        psutil.Process(server_pid).cpu_affinity(list(placement.server_cpus))
        me.cpu_affinity(list(placement.bench_cpus))
    except (OSError, psutil.Error):
        yield None  # the server is gone (reported by the run) or pinning was refused
        return
    try:
        yield placement
    finally:
        with contextlib.suppress(OSError, psutil.Error):
            me.cpu_affinity(before)
