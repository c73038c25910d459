"""What the live page shows, as JSON-ready dicts: ladder steps, the socket table, bounded history.

Strategy: the page only presents. Packets go through the capture's own `LadderBuilder` (the same
message analysis as `socklab capture --ladder`), rows through the ports tool's `SocketWatch`
(new, changed and closed sockets, kept greyed for a while), and each result becomes a small dict
whose every byte from the network is escaped text (`escape_for_terminal`, bounded), never markup.

Memory is bounded everywhere: steps go into a ring of the last `max_events`, each numbered; a
browser asks for "everything after number N" and, if it fell so far behind that the ring moved
on, is told how many it missed (`dropped`) instead of anything queueing for it. Captured frames
for the pcap export are a ring as well. Pure: no clocks, no sockets (times are passed in).

Call order: `add_packet(packet, frame, now)`* and `update_sockets(rows, now)`* from the feeders,
`events_after(cursor)` and `snapshot_sockets()` from the page's stream, in any interleaving
under the caller's lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from socklab.protocol.endpoints import format_endpoint
from socklab.protocol.escaping import escape_for_terminal
from socklab.tools.capture.ladder import LadderBuilder, LadderStep
from socklab.tools.capture.packets import Packet
from socklab.tools.ports import SocketRow, SocketWatch, WatchedRow

# 5,000 arrows: minutes of a classroom demo, a few seconds of a flood; each dict is ~1 KiB.
DEFAULT_MAX_EVENTS: Final = 5_000
# Frames kept for the pcap export: at most this many, the newest (tcpdump -C's idea of a ring).
DEFAULT_MAX_FRAMES: Final = 20_000
# A message shown on an arrow: long enough for a sentence, short enough for a projector.
MESSAGE_SHOWN_BYTES: Final = 120
# Rows of the socket table: a machine has thousands of sockets; the page is for the selected few.
MAX_SOCKET_ROWS: Final = 200
# How long a new socket stays highlighted and a closed one stays greyed (seconds).
SOCKET_RETENTION_S: Final = 10.0

Json = dict[str, Any]


def connection_key(step: LadderStep) -> str:
    """One name per connection across protocols ('tcp-1', 'udp-1': the builder counts each)."""
    return f"{step.proto}-{step.connection}"


def step_to_json(step: LadderStep, started: float) -> Json:
    """One arrow for the page: endpoints as ip:port, messages as escaped text."""
    return {
        "conn": connection_key(step),
        "proto": step.proto,
        "time": round(step.time - started, 6),
        "from": format_endpoint(*step.sender),
        "to": format_endpoint(*step.receiver),
        "client": format_endpoint(*step.client),
        "server": format_endpoint(*step.server),
        "from_client": step.from_client,
        "flags": step.flags,
        "seq": step.relative_seq,
        "ack": step.relative_ack,
        "length": step.payload_length,
        "retransmission": step.retransmission,
        "opens": step.opens_connection,
        "messages": [
            {
                "text": escape_for_terminal(piece.text, max_bytes=MESSAGE_SHOWN_BYTES),
                "kind": piece.kind.value,
                "fragment": piece.fragment.value,
                "ended_by_close": piece.ended_by_close,
            }
            for piece in step.pieces
        ],
    }


def row_to_json(watched: WatchedRow) -> Json:
    row = watched.row
    remote = (
        format_endpoint(row.remote_address, row.remote_port)
        if row.remote_address is not None and row.remote_port is not None
        else ""
    )
    return {
        "proto": row.proto,
        "state": row.state or "",
        "local": format_endpoint(row.local_address, row.local_port),
        "remote": remote,
        "pid": row.pid,
        # A process name is chosen by whoever started the process: text, bounded, escaped.
        "process": escape_for_terminal(row.process, max_bytes=40) if row.process else "",
        "listening": row.is_listening,
        "status": watched.status.value,
    }


@dataclass(frozen=True, slots=True)
class EventBatch:
    events: tuple[Json, ...]
    cursor: int  # the number of the last event given: ask for events after it next time
    dropped: int  # events the asker missed because the ring had moved past them


class LiveModel:
    """The server side's whole state for the page (see the module docstring for the call order)."""

    def __init__(
        self,
        started: float,
        *,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_frames: int = DEFAULT_MAX_FRAMES,
    ) -> None:
        self.started = started
        self._ladder = LadderBuilder()
        self._events: deque[tuple[int, Json]] = deque(maxlen=max_events)
        self._last_number = 0
        self.frames: deque[tuple[float, bytes, int]] = deque(maxlen=max_frames)
        self.link_type: int | None = None
        self.packets = 0
        self._watch = SocketWatch(retention_s=SOCKET_RETENTION_S)
        self._rows: tuple[Json, ...] = ()
        self.sockets_version = 0

    def add_packet(self, packet: Packet, frame: bytes) -> None:
        """One captured packet: an arrow of its connection's ladder, and a frame for the export."""
        self.packets += 1
        self.frames.append((packet.time, frame, len(frame)))
        step = self._ladder.add(packet)
        self._last_number += 1
        self._events.append((self._last_number, step_to_json(step, self.started)))

    def events_after(self, cursor: int, limit: int) -> EventBatch:
        """At most `limit` events numbered after `cursor`, oldest first, and how many were missed."""
        if cursor >= self._last_number:
            return EventBatch((), cursor, 0)
        first = self._events[0][0]
        dropped = max(0, first - cursor - 1)
        start = max(cursor + 1, first) - first
        chosen = [
            self._events[index] for index in range(start, min(start + limit, len(self._events)))
        ]
        return EventBatch(tuple(event for _number, event in chosen), chosen[-1][0], dropped)

    @property
    def last_number(self) -> int:
        return self._last_number

    def update_sockets(self, rows: Iterable[SocketRow], now: float) -> None:
        watched, _changes = self._watch.update(rows, now)
        fresh = tuple(row_to_json(row) for row in watched[:MAX_SOCKET_ROWS])
        if fresh != self._rows:
            self._rows = fresh
            self.sockets_version += 1

    def snapshot_sockets(self) -> tuple[Json, ...]:
        return self._rows


__all__ = [
    "DEFAULT_MAX_EVENTS",
    "EventBatch",
    "LiveModel",
    "connection_key",
    "row_to_json",
    "step_to_json",
]
