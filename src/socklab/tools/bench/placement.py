"""Where bench runs the server it starts, and itself: on different cores when it can.

A closed-loop load over loopback is a ping-pong: each side wakes the other, and the scheduler
tends to move a woken process next to its waker (Linux's wake-affine heuristic), so both end up
sharing one core. On the project's 2-vCPU machine `bench --compare` then measured about 40,000
requests/s for a server that answers 150,000 with the two on separate cores, changing from run
to run with where the scheduler happened to put them. The reference benchmark pins with
taskset; bench does the same through psutil's `cpu_affinity` (Linux, Windows, FreeBSD): the
server gets the last core it may use, bench and its load processes the others. Both by
inheritance: bench starts the server (and its load processes) while it runs on their cores. macOS has no
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
def running_on(cpus: tuple[int, ...] | None) -> Iterator[bool]:
    """Run this process on `cpus` within the block, then on its cores from before; yields
    whether it did (None, or a refusal by the OS: it stays where it was).

    A child started inside inherits the cores with all the threads it will ever have. Pinning
    a running process afterwards would not do: on Linux the call pins the one thread whose id
    is the process id, and the threads that already exist (an event loop's, the threads
    model's accept thread, which starts every client thread) would stay anywhere.
    """
    if cpus is None:
        yield False
        return
    import psutil

    me = psutil.Process()
    try:
        before = me.cpu_affinity()
        me.cpu_affinity(list(cpus))
    except (OSError, psutil.Error):
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(OSError, psutil.Error):
            me.cpu_affinity(before)
