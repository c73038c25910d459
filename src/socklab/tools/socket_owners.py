"""Which process holds a socket: socket inodes mapped to PIDs through /proc, as `ss -p` does.

Linux only. The kernel's socket tables name a socket's inode, not its process; the only map back
is each process's file descriptor table: /proc/PID/fd/N is a symbolic link reading
`socket:[INODE]` (man 5 proc). Strategy: read those links for the inodes asked for only, and stop
as soon as every one is found, so a filtered view (`--port P`) usually reads a fraction of the
machine's descriptors, where `ss -p` and psutil read them all. Processes are visited in PID order,
so a socket shared by several processes (a forking server's listener) is credited to the lowest
PID, usually the parent.

Everything in /proc may vanish while it is read (a process exits): such a process is skipped.
One we may not inspect (another user's, without root) is counted, so the caller can say so.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

PROC = "/proc"
_SOCKET_PREFIX = "socket:["
# psutil's rule (Process.name): the kernel keeps 15 characters of a name (TASK_COMM_LEN); a
# name that long may be cut, so the start of argv[0] is taken when it begins with it.
_COMM_LENGTH = 15
# A process with at least this many descriptors is read by several threads (at most
# _MAX_THREADS, one per core we may use); below it, starting threads costs more than it saves.
_THREADED_DESCRIPTORS = 2048
_MAX_THREADS = 4


@dataclass(slots=True)
class OwnerScan:
    """What a scan found: inode -> PID, and how many processes refused to be inspected."""

    pids: dict[int, int] = field(default_factory=dict)
    refused: int = 0


def _process_ids(proc: str) -> list[int]:
    try:
        names = os.listdir(proc)
    except OSError:
        return []  # no /proc (or not readable): every socket stays without owner
    return sorted(int(name) for name in names if name.isdigit())


def _match_links(directory: int, names: list[str], wanted: set[int], found: list[int]) -> None:
    """Append to `found` the wanted inodes among these descriptors (removing them from `wanted`)."""
    for name in names:
        if not wanted:
            return  # everything asked for is found: the rest need not be read
        try:
            # readlinkat on the open directory: one path component per descriptor.
            target = os.readlink(name, dir_fd=directory)
        except OSError:
            continue  # closed since the listing
        if target.startswith(_SOCKET_PREFIX):
            inode = int(target[len(_SOCKET_PREFIX) : -1])
            if inode in wanted:
                wanted.discard(inode)
                found.append(inode)


def _threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_THREADS))


def _scan_process(pid: int, wanted: set[int], owners: dict[int, int], proc: str) -> bool:
    """Credit `pid` with the wanted inodes among its descriptors; False if it refused."""
    try:
        directory = os.open(f"{proc}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    except PermissionError:
        return False
    except OSError:
        return True  # gone meanwhile, or a zombie with no descriptor table
    found: list[int] = []
    try:
        names = os.listdir(directory)
        threads = _threads() if len(names) >= _THREADED_DESCRIPTORS else 1
        if threads == 1:
            _match_links(directory, names, wanted, found)
        else:
            # readlink() releases the GIL, so the kernel's share of the work spreads over the
            # cores: a process with 10,000 sockets was read in 0.037 s instead of 0.058 s with
            # two threads on two busy cores. Each thread appends to its own list.
            parts: list[list[int]] = [[] for _ in range(threads)]
            workers = [
                threading.Thread(
                    target=_match_links, args=(directory, names[i::threads], wanted, parts[i])
                )
                for i in range(threads)
            ]
            started = []
            try:
                for worker in workers:
                    worker.start()
                    started.append(worker)
            except RuntimeError:
                # No thread to be had (a process or memory limit): read what is left here.
                for index in range(len(started), threads):
                    _match_links(directory, names[index::threads], wanted, parts[index])
            for worker in started:
                worker.join()
            found = [inode for part in parts for inode in part]
    except OSError:
        pass  # the process exited during the listing: what was read stands
    finally:
        os.close(directory)
    for inode in found:
        owners.setdefault(inode, pid)
    return True


def find_socket_owners(inodes: Iterable[int], proc: str = PROC) -> OwnerScan:
    """The lowest PID holding each inode (0, a socket no file holds, is never looked for)."""
    wanted = {inode for inode in inodes if inode}
    scan = OwnerScan()
    for pid in _process_ids(proc) if wanted else ():
        if not _scan_process(pid, wanted, scan.pids, proc):
            scan.refused += 1
        if not wanted:
            break  # all found: the rest of the machine need not be read
    return scan


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        return None
    return os.fsdecode(data)


def process_name(pid: int, proc: str = PROC) -> str | None:
    """The process's name as psutil gives it, or None when it is gone or hidden."""
    comm = _read_text(f"{proc}/{pid}/comm")
    if comm is None:
        return None
    name = comm[:-1] if comm.endswith("\n") else comm
    if len(name) >= _COMM_LENGTH:
        cmdline = _read_text(f"{proc}/{pid}/cmdline")
        if cmdline:
            # argv is NUL-separated; a process that rewrote it (setproctitle) may use spaces.
            separator = "\x00" if cmdline.endswith("\x00") else " "
            first = cmdline.removesuffix(separator).split(separator)[0]
            if separator == "\x00" and "\x00" not in cmdline[:-1] and " " in cmdline:
                first = cmdline[:-1].split(" ")[0]
            extended = os.path.basename(first)
            if extended.startswith(name):
                name = extended
    return name


def process_names(pids: Collection[int], proc: str = PROC) -> dict[int, str | None]:
    return {pid: process_name(pid, proc) for pid in pids}
