"""What the live page shows, as JSON-ready dicts: ladder steps, the socket table, bounded history.

Strategy: the page only presents. Packets go through the capture's own `LadderBuilder` (the same
message analysis as `socklab capture --ladder`), rows through the ports tool's `SocketWatch`
(new, changed and closed sockets, kept greyed for a while), and each result becomes a small dict
whose every byte from the network is escaped text (`escape_for_terminal`, bounded), never markup.

Memory is bounded everywhere: steps go into a ring of the last `max_events`, each numbered; a
browser asks for "everything after number N" and, if it fell so far behind that the ring moved
on, is told how many it missed (`dropped`) instead of anything queueing for it. Captured frames
for the pcap export are a ring as well. Pure: no clocks, no sockets (times are passed in).

What a relay did to a datagram is read off the wire as well, not asked of the relay: a datagram
that arrives at port A and leaves, same bytes, from port B to someone other than its sender was
forwarded, and A is a relay's port. A datagram that arrived at a relay's port and has not left it
within `FORWARD_WITHIN_S` was lost there; one that left twice was duplicated; one that left after
a datagram of the same flow that arrived after it was reordered (overtaken: its forward order
differs from its arrival order, as netem's and `impair --reorder`'s held-back datagram). Each fate
is an event of its own naming the arrow it concerns (`{"fate": "lost", "step": N}`).

A traced socklab program (`--trace` with `SOCKLAB_LIVE`, see tracing/live_sink.py) sends its TCP
receive calls; `parse_trace_record` validates each (hostile-ish: bounded, exact fields, ip:port
literals only) and `add_trace` turns it into a `recv` event of the connection whose segments
carried those bytes (the sender's peer -> local direction), with the byte range the call
returned, numbered like the segments' relative sequence numbers: the page draws both side by
side. A call whose connection the capture has not shown yet waits, briefly and bounded.

Call order: `add_packet(packet)`* , `add_frames(frames)`* , `add_trace(record, now)`*,
`judge_datagrams(now)`* and `update_sockets(rows, now)`* from the feeders, `events_after(cursor)` and `snapshot_sockets()` from the page's stream,
in any interleaving under the caller's lock.
"""

from __future__ import annotations

import ipaddress
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from socklab.protocol.endpoints import format_endpoint, parse_endpoint
from socklab.protocol.escaping import escape_for_terminal
from socklab.tools.capture.ladder import LadderBuilder, LadderStep
from socklab.tools.capture.packets import Packet
from socklab.tools.ports import SocketRow, SocketWatch, WatchedRow
from socklab.tracing.live_sink import MAX_RECORD_BYTES, RECORD_VERSION

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
# A relay (socklab impair, any UDP proxy) forwards a datagram within milliseconds; one it has not
# forwarded after this long is shown as lost there. A relay's --delay beyond it reads as loss.
FORWARD_WITHIN_S: Final = 1.0
MAX_WAITING_DATAGRAMS: Final = 1_000  # datagrams waiting to be seen leaving a relay
# The socket table is read every half second: a relay's new flow socket may take that long to
# show its owner, so a datagram is judged once its sockets are known, or after this long.
OWNERS_WAIT_S: Final = 3.0
UNFORWARDED_KEPT_S: Final = 10.0  # how long a datagram may still turn out lost at a new relay
# A traced recv() may reach the model before the capture drew its segment: it waits this long
# (at most this many) for its connection to show; then it is dropped, counted.
TRACE_WAIT_S: Final = 3.0
MAX_WAITING_TRACES: Final = 1_000
MAX_KNOWN_CONNECTIONS: Final = 10_000  # TCP (sender, receiver) -> connection, newest kept
MAX_COUNT: Final = 2**53  # bytes and calls: what JSON numbers hold exactly
_TRACE_FIELDS: Final = frozenset({"v", "call", "local", "peer", "nbytes", "end", "seq", "pid"})
_TRACE_CALLS: Final = frozenset({"recv", "recv_into", "recvfrom", "recvmsg", "read"})

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


@dataclass(slots=True)
class _Arrival:
    """A datagram that came in; it may leave a relay again (see the module docstring)."""

    number: int  # its arrow's event number
    conn: str
    time: float
    sender: tuple[str, int]
    receiver: tuple[str, int]
    payload: bytes
    # (port, order) of each datagram that carried the same bytes on to a third party soon after:
    # the forwards, if the same process owns the port and the receiving port (checked when
    # judged: the socket table lags). `order` counts datagrams seen, so forwards can be ordered.
    departures: list[tuple[int, int]] = field(default_factory=list)

    def first_forward(self, owners: Mapping[int, int]) -> int | None:
        """The order of its first forward by the owner of its receiving port (None: none seen)."""
        owner = owners.get(self.receiver[1])
        orders = [
            order
            for port, order in self.departures
            if owner is not None and owners.get(port) == owner
        ]
        return min(orders) if orders else None


class RelayFates:
    """Forwarded, duplicated, lost: what relays did to datagrams, judged from the capture alone.

    Call order: datagram(...)* and judge(now, owners)* interleaved, times never going backwards.
    """

    def __init__(self) -> None:
        self._waiting: deque[_Arrival] = deque(maxlen=MAX_WAITING_DATAGRAMS)
        # Not forwarded, at a port not (yet) known as a relay's: most are a server's requests.
        self._unforwarded: deque[_Arrival] = deque(maxlen=MAX_WAITING_DATAGRAMS)
        self.relay_ports: set[int] = set()
        self._seen = 0  # datagrams seen: the order of arrivals and departures alike

    def datagram(self, number: int, conn: str, packet: Packet) -> None:
        self._seen += 1
        for arrival in self._waiting:
            if (
                arrival.payload == packet.payload
                and packet.time - arrival.time <= FORWARD_WITHIN_S
                # on to a third party: not back to the sender, not to the relay itself
                and packet.destination not in (arrival.sender, arrival.receiver)
                and packet.source not in (arrival.sender, arrival.receiver)
            ):
                arrival.departures.append((packet.src_port, self._seen))
        self._waiting.append(
            _Arrival(number, conn, packet.time, packet.source, packet.destination, packet.payload)
        )

    def judge(self, now: float, owners: Mapping[int, int]) -> list[Json]:
        """Fates of the datagrams that waited long enough; `owners` maps UDP port -> PID."""
        fates: list[Json] = []
        while self._waiting and now - self._waiting[0].time > FORWARD_WITHIN_S:
            arrival = self._waiting[0]
            ports = (arrival.receiver[1], *(port for port, _order in arrival.departures))
            if now - arrival.time < OWNERS_WAIT_S and any(port not in owners for port in ports):
                break  # the socket table has not shown these sockets yet: judge later
            self._waiting.popleft()
            owner = owners.get(arrival.receiver[1])
            forwards = sum(
                1
                for port, _order in arrival.departures
                if owner is not None and owners.get(port) == owner
            )
            port = arrival.receiver[1]
            if forwards and port not in self.relay_ports:
                self.relay_ports.add(port)
                # Datagrams this relay swallowed before it was recognised: lost as well.
                fates += [
                    _fate("lost", early) for early in self._unforwarded if early.receiver[1] == port
                ]
                self._unforwarded = deque(
                    (early for early in self._unforwarded if early.receiver[1] != port),
                    maxlen=MAX_WAITING_DATAGRAMS,
                )
            if forwards > 1:
                fates.append(_fate("duplicated", arrival))
            if forwards and self._overtaken(arrival, owners):
                fates.append(_fate("reordered", arrival))
            elif forwards == 0 and port in self.relay_ports:
                fates.append(_fate("lost", arrival))
            elif forwards == 0:
                self._unforwarded.append(arrival)
        while self._unforwarded and now - self._unforwarded[0].time > UNFORWARDED_KEPT_S:
            self._unforwarded.popleft()
        return fates

    def _overtaken(self, arrival: _Arrival, owners: Mapping[int, int]) -> bool:
        """Did a later datagram of its flow (same sender, same relay port) leave before it did?

        The later ones are still waiting (arrival order), their forwards already seen: a relay
        sends the overtaking datagram first.
        """
        mine = arrival.first_forward(owners)
        if mine is None:
            return False
        for later in self._waiting:
            if later.sender != arrival.sender or later.receiver != arrival.receiver:
                continue
            theirs = later.first_forward(owners)
            if theirs is not None and theirs < mine:
                return True
        return False


def _fate(fate: str, arrival: _Arrival) -> Json:
    return {"fate": fate, "step": arrival.number, "conn": arrival.conn}


def parse_trace_record(data: bytes) -> Json | None:
    """One traced receive call as sent by tracing/live_sink.py, validated; None if malformed.

    Everything is checked: size, JSON, exactly the known fields, each of its type and range,
    the addresses ip:port literals (formatted anew, so what reaches the page is ours).
    """
    if len(data) > MAX_RECORD_BYTES:
        return None
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or set(record) != _TRACE_FIELDS:
        return None
    if record["v"] != RECORD_VERSION or record["call"] not in _TRACE_CALLS:
        return None
    numbers = [record[name] for name in ("nbytes", "end", "seq", "pid")]
    if not all(type(n) is int and 0 <= n < MAX_COUNT for n in numbers):
        return None
    if record["end"] < record["nbytes"] or record["seq"] < 1:
        return None
    ends = []
    for name in ("local", "peer"):
        text = record[name]
        address = parse_endpoint(text) if isinstance(text, str) and len(text) <= 64 else None
        if address is None:
            return None
        try:
            host = str(ipaddress.ip_address(address[0]))
        except ValueError:
            return None
        ends.append(format_endpoint(host, address[1]))
    local, peer = ends
    return {
        "call": record["call"],
        "local": local,
        "peer": peer,
        "nbytes": record["nbytes"],
        "end": record["end"],
        "seq": record["seq"],
        "pid": record["pid"],
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
        self._fates = RelayFates()
        self._events: deque[tuple[int, Json]] = deque(maxlen=max_events)
        self._last_number = 0
        self.frames: deque[tuple[float, bytes, int]] = deque(maxlen=max_frames)
        self.link_type: int | None = None
        self.packets = 0
        self.packets_not_drawn = 0  # captured while the capture was too far behind to draw them
        self._watch = SocketWatch(retention_s=SOCKET_RETENTION_S)
        self._rows: tuple[Json, ...] = ()
        # UDP port -> PID of its socket, as last seen (a closed flow's port stays known)
        self._udp_owners: dict[int, int] = {}
        self.sockets_version = 0
        # TCP (sender ip:port, receiver ip:port) -> connection key, from the arrows drawn
        self._tcp_connections: dict[tuple[str, str], str] = {}
        self._waiting_traces: deque[tuple[float, Json]] = deque()
        self.traces_unmatched = 0  # traced calls whose connection never showed (or too many)

    def add_frames(self, frames: Iterable[tuple[float, bytes, int]]) -> None:
        """Captured frames (time, bytes, original length) for the export: the newest are kept."""
        self.frames.extend(frames)

    def add_packet(self, packet: Packet) -> None:
        """One captured packet: an arrow of its connection's ladder."""
        self.packets += 1
        step = self._ladder.add(packet)
        event = step_to_json(step, self.started)
        number = self._append(event)
        event["number"] = number
        if packet.proto == "udp" and packet.payload:
            self._fates.datagram(number, event["conn"], packet)
        elif packet.proto == "tcp":
            key = (event["from"], event["to"])
            self._tcp_connections.pop(key, None)
            self._tcp_connections[key] = event["conn"]  # newest last: a reused pair is the new one
            if len(self._tcp_connections) > MAX_KNOWN_CONNECTIONS:
                del self._tcp_connections[next(iter(self._tcp_connections))]

    def add_trace(self, record: Json, now: float) -> None:
        """A traced receive call (`parse_trace_record`'s result), received at `now`."""
        if self._waiting_traces:
            self._place_waiting_traces(now)
        ends = (record["peer"], record["local"])
        # behind an earlier call of its connection that still waits: in order, or not at all
        behind = any((early["peer"], early["local"]) == ends for _t, early in self._waiting_traces)
        if behind or not self._place_trace(record, now):
            if len(self._waiting_traces) >= MAX_WAITING_TRACES:
                self._waiting_traces.popleft()
                self.traces_unmatched += 1
            self._waiting_traces.append((now, record))

    def _place_trace(self, record: Json, now: float) -> bool:
        conn = self._tcp_connections.get((record["peer"], record["local"]))
        if conn is None:
            return False
        self._append(
            {
                "recv": record["call"],
                "conn": conn,
                "time": round(now - self.started, 6),
                "from": record["peer"],
                "to": record["local"],
                "length": record["nbytes"],
                # the bytes it returned, numbered as the segments' relative sequence numbers
                "first": record["end"] - record["nbytes"] + 1,
                "last": record["end"],
                "call_number": record["seq"],
                "pid": record["pid"],
            }
        )
        return True

    def _place_waiting_traces(self, now: float) -> None:
        waiting, self._waiting_traces = self._waiting_traces, deque()
        for received, record in waiting:
            if self._place_trace(record, received):
                continue
            if now - received > TRACE_WAIT_S:
                self.traces_unmatched += 1
            else:
                self._waiting_traces.append((received, record))

    def count_skipped(self, count: int) -> None:
        """Packets captured but not drawn: the capture fell behind a flood (runner.py)."""
        self.packets += count
        self.packets_not_drawn += count

    def judge_datagrams(self, now: float) -> None:
        """Say what relays did to datagrams old enough (call often; `now` on the packets' clock).

        Traced calls still waiting for their connection are placed now if it has shown.
        """
        if self._waiting_traces:
            self._place_waiting_traces(now)
        for fate in self._fates.judge(now, self._udp_owners):
            self._append(fate)

    def _append(self, event: Json) -> int:
        self._last_number += 1
        self._events.append((self._last_number, event))
        return self._last_number

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
        rows = tuple(rows)
        for row in rows:
            if row.proto == "udp" and row.pid is not None:
                self._udp_owners[row.local_port] = row.pid
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
    "parse_trace_record",
    "row_to_json",
    "step_to_json",
]
