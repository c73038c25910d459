"""Where bench runs the server it starts, and itself: on different cores when it can.

A closed-loop load over loopback is a ping-pong: each side wakes the other, and the scheduler
tends to move a woken process next to its waker (Linux's wake-affine heuristic), so both end up
sharing one core. On the project's 2-vCPU machine `bench --compare` then measured about 40,000
requests/s for a server that answers 150,000 with the two on separate cores, changing from run
to run with where the scheduler happened to put them. The reference benchmark pins with
taskset; bench does the same: the server gets the last core bench may use, bench and its load
processes the others.

Both by inheritance: the server is started while the starting thread runs on the server's
core, so every thread the server will ever have is there too; the load processes are started
while it runs on the others. Pinning a running process afterwards would not do: on Linux that
pins only its first thread, and an event loop's thread or the threads model's accept thread
(which starts every client thread) would stay anywhere. Linux sets the calling thread's cores
(`os.sched_setaffinity(0, ...)`, what a child inherits), Windows the process's (psutil); macOS
has no affinity call and one core leaves nothing to separate: there placement stays with the OS.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Placement:
    server_cpus: tuple[int, ...]
    bench_cpus: tuple[int, ...]


def plan_placement() -> Placement | None:
    """The server on the last core this thread may use, bench on the rest; None if it cannot."""
    cpus = current_cpus()
    if cpus is None or len(cpus) < 2:
        return None
    return Placement(server_cpus=(cpus[-1],), bench_cpus=tuple(cpus[:-1]))


@contextlib.contextmanager
def running_on(cpus: tuple[int, ...] | None) -> Iterator[bool]:
    """Run the calling thread on `cpus` within the block, then on its cores from before; yields
    whether it did (not for None, nor when the OS refused: it stays where it was). Processes
    started inside inherit the cores."""
    before = None if cpus is None else current_cpus()
    if cpus is None or before is None or not _set_cpus(cpus):
        yield False
        return
    try:
        yield True
    finally:
        _set_cpus(tuple(before))


def current_cpus() -> list[int] | None:
    """The cores the calling thread may run on, sorted; None where the OS cannot say (macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    import psutil

    try:
        return sorted(psutil.Process().cpu_affinity())
    except (AttributeError, OSError, ValueError, psutil.Error):
        return None  # no affinity on this OS (macOS), or not allowed


def _set_cpus(cpus: tuple[int, ...]) -> bool:
    # ValueError: a core that is not (or no longer) allowed, e.g. a cgroup's cpuset shrank.
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, cpus)
        except (OSError, ValueError):
            return False
        return True
    import psutil

    try:
        psutil.Process().cpu_affinity(list(cpus))
    except (AttributeError, OSError, ValueError, psutil.Error):
        return False
    return True
