"""Which local socket (and process) receives a captured packet: the capture joined with `ports`.

Strategy: the socket table is read in a background thread, so a slow read (tens of thousands of
sockets take seconds) never stalls the capture; the capture asks `owner_of(packet)`, which looks
the packet up in the latest table with the kernel's own demultiplexing rule
(`find_receiving_socket`). A flow the table does not know yet asks once for a fresh read (at
most one read per `min_interval_s`); the answer is remembered per flow once it is exact or once
a read made after the flow began has been consulted, so a steady stream costs a dict lookup. A packet to another host has no local
receiver and gets None.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psutil

from socklab.tools.capture.packets import Packet
from socklab.tools.ports import (
    SocketRow,
    SocketTable,
    find_receiving_socket,
    index_by_local_port,
    read_socket_table,
)

FlowKey = tuple[str, tuple[str, int], tuple[str, int]]
MAX_CACHED_FLOWS = 65536


def owner_comment(owner: SocketRow | None) -> str | None:
    """The pcapng packet comment naming the receiving process: "pid 1234 (socklab)".

    Not translated: it is data in a file, read by tshark's `frame.comment` and by scripts.
    """
    if owner is None or owner.pid is None:
        return None
    return f"pid {owner.pid} ({owner.process or '?'})"


class SocketOwners:
    """Call order: start() -> wait_ready(timeout)? -> owner_of(packet)* -> close()."""

    def __init__(
        self,
        read_table: Callable[[], SocketTable] = read_socket_table,
        min_interval_s: float = 1.0,
    ) -> None:
        self._read_table = read_table
        self.min_interval_s = min_interval_s
        self._index: dict[tuple[str, int], list[SocketRow]] = {}
        self._generation = 0  # how many table reads have completed
        self._cache: dict[FlowKey, SocketRow | None] = {}
        self._first_seen: dict[FlowKey, int] = {}  # generation when a flow was first looked up
        self._asked: set[FlowKey] = set()
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._first_read = threading.Event()
        self._thread = threading.Thread(target=self._refresh_loop, name="socket-table", daemon=True)

    def start(self) -> None:
        self._wanted.set()
        self._thread.start()

    def wait_ready(self, timeout_s: float) -> bool:
        return self._first_read.wait(timeout_s)

    def owner_of(self, packet: Packet) -> SocketRow | None:
        key: FlowKey = (packet.proto, packet.destination, packet.source)
        if key in self._cache:
            return self._cache[key]
        with self._lock:
            index, generation = self._index, self._generation
        candidates = index.get((packet.proto, packet.dst_port), ())
        owner = find_receiving_socket(candidates, packet.proto, packet.destination, packet.source)
        exact = owner is not None and owner.remote_port is not None and owner.pid is not None
        first_seen = self._first_seen.setdefault(key, generation)
        if exact or generation > first_seen:
            # Final: the exact socket, or the best answer of a table read after the flow began.
            self._remember(key, owner)
        elif generation == first_seen and key not in self._asked:
            self._asked.add(key)
            self._wanted.set()  # a new flow: read the table again soon
        return owner

    def _remember(self, key: FlowKey, owner: SocketRow | None) -> None:
        if len(self._cache) >= MAX_CACHED_FLOWS:
            self._cache.clear()
            self._first_seen.clear()
            self._asked.clear()
        self._cache[key] = owner
        self._first_seen.pop(key, None)
        self._asked.discard(key)

    def _refresh_loop(self) -> None:
        while not self._stopping.is_set():
            self._wanted.wait()
            if self._stopping.is_set():
                return
            self._wanted.clear()
            try:
                table = self._read_table()
            except (OSError, psutil.Error):
                # Unreadable now (a process vanished mid-read): annotate nothing, try later.
                table = SocketTable(())
            index = index_by_local_port(table.rows)
            with self._lock:
                self._index = index
                self._generation += 1
            self._first_read.set()
            self._stopping.wait(self.min_interval_s)

    def close(self) -> None:
        self._stopping.set()
        self._wanted.set()
        # A read in progress may take seconds on a busy machine; the thread is a daemon.
        self._thread.join(timeout=1.0)
