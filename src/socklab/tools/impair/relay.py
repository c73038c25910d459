"""The relay of `socklab impair`: sockets in, the fault policy in the middle, sockets out.

Why asyncio with Protocol callbacks rather than selectors: the relay's work is timers (every
delayed datagram and every slice has a release time) plus flow control in both directions.
asyncio gives both ready-made: `call_at` for the release times, and transports that buffer
writes and call `pause_writing` when the peer stops reading, which is exactly the signal
backpressure needs. With selectors we would rebuild a timer heap and write buffering by hand.
Protocols (not streams) keep one callback per chunk with no task per connection, the same
choice as the default converter runtime; uvloop is used where installed.

TCP: each accepted client gets its own connection to the target (the client is not read until
that connection stands). Two pipes, up (client -> target) and down (target -> client), each run
a StreamImpairment. A pipe stops reading its source while its policy holds more than
`PIPE_HIGH_WATER_BYTES` or its sink's transport is paused, so nothing is buffered without bound.

UDP: one upstream socket per client address (connected to the target, so replies from the
target come back on it and go to the right client); a mapping idle for `UDP_FLOW_IDLE_S`
expires, and at most `MAX_UDP_FLOWS` exist (the least recently active one gives way).
Datagrams that find a queue or a socket buffer full are dropped and counted, as a router would.

Randomness: every flow direction gets its own `random.Random` seeded from (seed, flow number,
direction), so interleaving of the two directions never changes the decisions of either.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import random
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from socklab.errors import UsageError
from socklab.runtimes.asyncio_loop import new_event_loop
from socklab.runtimes.config import EventLoopName, ServerConfig, Transport
from socklab.runtimes.event_loop_handle import EventLoopHandle
from socklab.runtimes.listening import bound_address, open_datagram_socket, open_listening_socket
from socklab.runtimes.oserrors import translated_oserrors
from socklab.tools.impair.policy import (
    NO_FAULTS,
    DatagramImpairment,
    DatagramStats,
    FaultSettings,
    QueueBudget,
    StreamEnding,
    StreamImpairment,
    StreamStats,
)

# A pipe stops reading its source beyond this much data waiting in it (asyncio's default
# write-buffer high-water mark is 64 KiB as well).
PIPE_HIGH_WATER_BYTES = 64 * 1024
# Each relayed connection holds two sockets; 512 of them stay below the usual 1024-fd limit.
MAX_TCP_CONNECTIONS = 512
# RFC 4787 (NAT behaviour for UDP), REQ-5: a UDP mapping must not expire in less than 2 minutes.
UDP_FLOW_IDLE_S = 120.0
MAX_UDP_FLOWS = 256
# Bytes all UDP flows may hold in their delay/rate queues together.
UDP_QUEUE_BUDGET_BYTES = 32 * 1024 * 1024
SWEEP_INTERVAL_S = 1.0
# A dead target fails every datagram or connection: say so once a second, not a line each.
WARNING_INTERVAL_S = 1.0
# Bursts of datagrams must not overflow the kernel's queue while the relay is busy: ask for
# 1 MiB (Linux caps the request at net.core.rmem_max, 208 KiB by default; that is fine too).
UDP_RECEIVE_BUFFER_BYTES = 1024 * 1024
# Send what is due within half a millisecond now: timers fire a hair early or late anyway.
TIMER_SLACK_S = 0.0005

DIRECTIONS = ("up", "down", "both")
# struct linger: two ints on POSIX, two u_shorts on Windows (Winsock's `linger`).
LINGER_RESET = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)


@dataclass(frozen=True, slots=True)
class TargetUnreachable:
    """The relay could not reach the target for a client (connect refused, ICMP unreachable)."""

    target: tuple[str, int]
    detail: str


RelayEvent = TargetUnreachable


@dataclass(frozen=True, slots=True)
class ImpairStats:
    """A snapshot of the relay's counters."""

    transport: str
    clients_total: int
    clients_open: int
    clients_refused: int  # TCP: over the connection cap; UDP: mappings evicted
    target_failures: int
    up_datagrams: DatagramStats
    down_datagrams: DatagramStats
    up_bytes: StreamStats
    down_bytes: StreamStats
    closed_at_limit: int
    resets_sent: int


@dataclass(frozen=True, slots=True)
class ImpairConfig:
    """What to relay where, and the faults as the user gave them.

    `--delay`/`--jitter` are what a round trip gains: split evenly over the impaired directions
    (all of it one way with --direction up or down, half each way with both). Every other
    fault applies in full to each impaired direction.
    """

    transport: Transport
    listen: tuple[str, int]
    target: tuple[str, int]
    faults: FaultSettings = NO_FAULTS
    direction: str = "both"
    seed: int = 0
    stats_every_s: float | None = None
    on_stats: Callable[[ImpairStats], None] | None = field(default=None, compare=False)
    on_event: Callable[[RelayEvent], None] | None = field(default=None, compare=False)
    event_loop: EventLoopName = "auto"  # "auto": uvloop where installed

    def faults_toward(self, way: str) -> FaultSettings:
        """The faults of direction `way` ("up": client to target, "down": target to client)."""
        if self.direction not in (way, "both"):
            return NO_FAULTS
        share = 2 if self.direction == "both" else 1
        return dataclasses.replace(
            self.faults,
            delay_s=self.faults.delay_s / share,
            jitter_s=self.faults.jitter_s / share,
        )

    def rng_for(self, flow_number: int, way: str) -> random.Random:
        return random.Random(f"{self.seed}/{flow_number}/{way}")


class _Timer:
    """A single pending wake-up for one pipe, moved earlier when needed, never duplicated.

    The deadline is kept here, not read back from the loop's handle: for a deadline already
    past, uvloop's `call_at` returns a plain `Handle` (scheduled like `call_soon`), which has
    no `when()`; under a flood that raised AttributeError thousands of times a second.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self.loop = loop
        self.callback = callback
        self.handle: asyncio.Handle | None = None
        self.deadline = 0.0  # of the pending handle; meaningless while handle is None

    def wake_at(self, deadline: float | None) -> None:
        if deadline is None:
            self.cancel()
            return
        if self.handle is not None and self.deadline <= deadline:
            return
        self.cancel()
        self.deadline = deadline
        self.handle = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self.handle = None
        self.callback()

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


# --- TCP ---------------------------------------------------------------------------------------


class _Side(asyncio.Protocol):
    """One socket of a relayed connection: what it receives goes into `outgoing`."""

    def __init__(self, connection: _RelayedConnection, name: str) -> None:
        self.connection = connection
        self.name = name
        self.transport: Any = None
        self.outgoing: _Pipe | None = None  # fed by this side
        self.incoming: _Pipe | None = None  # written to this side
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Each slice must leave as its own segment, not wait for Nagle to merge it.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection.side_made(self)

    def data_received(self, data: bytes) -> None:
        if self.outgoing is not None:
            self.outgoing.receive(data)

    def eof_received(self) -> bool:
        if self.outgoing is not None:
            self.outgoing.receive_eof()
        return True  # keep the other half open: the peer may still read

    def pause_writing(self) -> None:
        if self.incoming is not None:
            self.incoming.set_sink_paused(True)

    def resume_writing(self) -> None:
        if self.incoming is not None:
            self.incoming.set_sink_paused(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.connection.side_lost(self, exc)


class _Pipe:
    """One direction of a connection: source side -> policy -> sink side."""

    def __init__(
        self, connection: _RelayedConnection, policy: StreamImpairment, source: _Side, sink: _Side
    ) -> None:
        self.connection = connection
        self.policy = policy
        self.source, self.sink = source, sink
        self.loop = connection.relay.loop
        self.timer = _Timer(self.loop, self.pump)
        self.sink_paused = False
        self.source_paused = False
        self.eof_sent = False

    def receive(self, data: bytes) -> None:
        self.policy.receive_data(data, self.loop.time())
        self.pump()

    def receive_eof(self) -> None:
        self.policy.receive_eof()
        self.pump()

    def set_sink_paused(self, paused: bool) -> None:
        self.sink_paused = paused
        self.update_reading()

    def pump(self) -> None:
        if self.connection.finished or self.sink.transport is None:
            return
        policy = self.policy
        for piece in policy.take_due(self.loop.time() + TIMER_SLACK_S):
            self.sink.transport.write(piece)
        ending = policy.ending
        if ending is not None:
            self.connection.end(ending)
            return
        if policy.eof_due and not self.eof_sent:
            self.eof_sent = True
            if self.sink.transport.can_write_eof():
                self.sink.transport.write_eof()
            self.connection.maybe_finish()
            return
        self.timer.wake_at(policy.next_deadline())
        self.update_reading()

    def update_reading(self) -> None:
        transport = self.source.transport
        if transport is None or self.source.lost or self.connection.finished:
            return
        pause = self.sink_paused or self.policy.pending_bytes > PIPE_HIGH_WATER_BYTES
        if pause != self.source_paused:
            self.source_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()


class _RelayedConnection:
    """A client connection and its connection to the target, with a pipe each way."""

    def __init__(self, relay: ImpairRelay, number: int) -> None:
        self.relay = relay
        self.number = number
        self.client = _Side(self, "client")
        self.upstream = _Side(self, "upstream")
        config = relay.config
        self.up = _Pipe(
            self,
            StreamImpairment(
                config.faults_toward("up"), config.rng_for(number, "up"), stats=relay.up_bytes
            ),
            self.client,
            self.upstream,
        )
        self.down = _Pipe(
            self,
            StreamImpairment(
                config.faults_toward("down"),
                config.rng_for(number, "down"),
                stats=relay.down_bytes,
            ),
            self.upstream,
            self.client,
        )
        self.client.outgoing = self.upstream.incoming = self.up
        self.upstream.outgoing = self.client.incoming = self.down
        self.finished = False

    def side_made(self, side: _Side) -> None:
        if side is self.client:
            if len(self.relay.connections) >= MAX_TCP_CONNECTIONS:
                self.relay.clients_refused += 1
                self.finished = True
                side.transport.abort()
                return
            self.relay.connections.add(self)
            self.relay.clients_total += 1
            side.transport.pause_reading()  # until the target's connection stands
            self.relay.loop.create_task(self._connect_upstream())
        elif self.finished:  # the client left while we connected
            side.transport.close()
        else:
            self.client.transport.resume_reading()
            self.up.pump()
            self.down.pump()

    async def _connect_upstream(self) -> None:
        relay = self.relay
        try:
            await relay.loop.create_connection(
                lambda: self.upstream, relay.target_address[0], relay.target_address[1]
            )
        except OSError as exc:
            relay.target_failures += 1
            relay.notify(TargetUnreachable(relay.config.target, exc.strerror or type(exc).__name__))
            self.finished = True
            if not self.client.lost:
                self.client.transport.close()

    def end(self, ending: StreamEnding) -> None:
        """The allowance is used up: close both sides (after flushing), or reset both."""
        if self.finished:
            return
        self.finished = True
        if ending is StreamEnding.RESET:
            self.relay.resets_sent += 1
            for side in (self.client, self.upstream):
                if side.transport is not None and not side.lost:
                    sock = side.transport.get_extra_info("socket")
                    if sock is not None:
                        # SO_LINGER on, timeout 0: close() sends RST instead of FIN (socket(7)).
                        with contextlib.suppress(OSError):
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        else:
            self.relay.closed_at_limit += 1
        self._close_sides()

    def maybe_finish(self) -> None:
        if self.up.eof_sent and self.down.eof_sent and not self.finished:
            self.finished = True
            self._close_sides()

    def _close_sides(self) -> None:
        # close() sends what the transport still buffers first, then FIN (or RST with linger 0).
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.lost:
                side.transport.close()
        self.up.timer.cancel()
        self.down.timer.cancel()

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        other = self.upstream if side is self.client else self.client
        if not self.finished:
            self.finished = True
            if other.transport is not None and not other.lost:
                if exc is not None:
                    other.transport.abort()  # pass the reset on
                else:
                    other.transport.close()
        self.up.timer.cancel()
        self.down.timer.cancel()
        if side is self.client:
            self.relay.connections.discard(self)

    def abort(self) -> None:
        self.finished = True
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.lost:
                side.transport.abort()
        self.up.timer.cancel()
        self.down.timer.cancel()


# --- UDP ---------------------------------------------------------------------------------------


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, relay: ImpairRelay) -> None:
        self.relay = relay
        self.paused = False

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay.client_datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP from a client that went away: nothing to do for a relay

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False


class _Flow(asyncio.DatagramProtocol):
    """One client address: its upstream socket and a policy each way."""

    def __init__(self, relay: ImpairRelay, client: tuple[str, int], number: int) -> None:
        self.relay = relay
        self.client = client
        config = relay.config
        self.up = DatagramImpairment(
            config.faults_toward("up"),
            config.rng_for(number, "up"),
            stats=relay.up_datagrams,
            budget=relay.queue_budget,
        )
        self.down = DatagramImpairment(
            config.faults_toward("down"),
            config.rng_for(number, "down"),
            stats=relay.down_datagrams,
            budget=relay.queue_budget,
        )
        self.up_timer = _Timer(relay.loop, self.pump_up)
        self.down_timer = _Timer(relay.loop, self.pump_down)
        self.transport: Any = None
        self.paused = False
        self.closed = False
        self.last_active = relay.loop.time()

    # upstream socket callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            _enlarge_receive_buffer(sock)
        self.pump_up()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.last_active = self.relay.loop.time()
        self.down.receive_datagram(data, self.last_active)
        self.pump_down()

    def error_received(self, exc: Exception) -> None:
        # On a connected UDP socket, the target's ICMP "port unreachable" surfaces here.
        self.relay.target_failures += 1
        self.relay.notify(
            TargetUnreachable(self.relay.config.target, getattr(exc, "strerror", None) or str(exc))
        )

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    # relay side
    def send_up(self, data: bytes) -> None:
        self.last_active = self.relay.loop.time()
        self.up.receive_datagram(data, self.last_active)
        self.pump_up()

    def pump_up(self) -> None:
        if self.closed or self.transport is None:
            return  # datagrams wait in the policy until the upstream socket exists
        now = self.relay.loop.time() + TIMER_SLACK_S
        for datagram in self.up.take_due(now):
            if self.paused:
                self.up.stats.dropped_queue_full += 1
            else:
                self.transport.sendto(datagram)
        self.up_timer.wake_at(self.up.next_deadline())

    def pump_down(self) -> None:
        if self.closed:
            return
        listener = self.relay.listener
        now = self.relay.loop.time() + TIMER_SLACK_S
        for datagram in self.down.take_due(now):
            if listener is None or listener.paused:
                self.down.stats.dropped_queue_full += 1
            else:
                self.relay.listener_transport.sendto(datagram, self.client)
        self.down_timer.wake_at(self.down.next_deadline())

    @property
    def is_idle(self) -> bool:
        return not self.up.queued_datagrams and not self.down.queued_datagrams

    def close(self) -> None:
        self.closed = True
        self.up_timer.cancel()
        self.down_timer.cancel()
        self.up.discard()
        self.down.discard()
        if self.transport is not None:
            self.transport.close()


# --- the relay ---------------------------------------------------------------------------------


class ImpairRelay(EventLoopHandle):
    """The running relay: bound in the caller's thread, relaying in a background thread."""

    def __init__(self, config: ImpairConfig) -> None:
        if config.transport not in ("tcp", "udp"):
            raise UsageError(f"unknown transport {config.transport!r}")
        if config.direction not in DIRECTIONS:
            raise UsageError(f"unknown direction {config.direction!r}")
        self.config = config
        self.target_address = _resolve_target(config)
        listen_config = ServerConfig(
            host=config.listen[0], port=config.listen[1], transport=config.transport
        )
        self.loop = new_event_loop(config.event_loop)
        try:
            if config.transport == "udp":
                self._sock = open_datagram_socket(listen_config)
                _enlarge_receive_buffer(self._sock)
            else:
                self._sock = open_listening_socket(listen_config)
        except BaseException:
            self.loop.close()
            raise
        super().__init__(bound_address(self._sock), self.loop)
        self.up_datagrams = DatagramStats()
        self.down_datagrams = DatagramStats()
        self.up_bytes = StreamStats()
        self.down_bytes = StreamStats()
        self.clients_total = 0
        self.clients_refused = 0
        self.target_failures = 0
        self.closed_at_limit = 0
        self.resets_sent = 0
        self._connections_numbered = 0
        self._next_warning_s = float("-inf")
        self.connections: set[_RelayedConnection] = set()
        self.flows: collections.OrderedDict[tuple[str, int], _Flow] = collections.OrderedDict()
        self.queue_budget = QueueBudget(UDP_QUEUE_BUDGET_BYTES)
        self.listener: _Listener | None = None
        self.listener_transport: Any = None
        self.start_thread(f"socklab-impair-{self.address[1]}")

    def snapshot(self) -> ImpairStats:
        """The counters now (exact after stop(); approximate while running, for display)."""
        return ImpairStats(
            transport=self.config.transport,
            clients_total=self.clients_total,
            clients_open=len(self.connections) + len(self.flows),
            clients_refused=self.clients_refused,
            target_failures=self.target_failures,
            up_datagrams=dataclasses.replace(self.up_datagrams),
            down_datagrams=dataclasses.replace(self.down_datagrams),
            up_bytes=dataclasses.replace(self.up_bytes),
            down_bytes=dataclasses.replace(self.down_bytes),
            closed_at_limit=self.closed_at_limit,
            resets_sent=self.resets_sent,
        )

    def _number_connection(self) -> int:
        self._connections_numbered += 1
        return self._connections_numbered

    def notify(self, event: RelayEvent) -> None:
        """Pass an event on, at most one per `WARNING_INTERVAL_S` (the counts show them all)."""
        now = self.loop.time()
        if self.config.on_event is not None and now >= self._next_warning_s:
            self._next_warning_s = now + WARNING_INTERVAL_S
            self.config.on_event(event)

    async def _serve(self) -> None:
        loop = self.loop
        stop_event = self._arm_stop_event()
        sweeper = loop.create_task(self._sweep_forever())
        if self.config.transport == "udp":
            listener = self.listener = _Listener(self)
            self.listener_transport, _ = await loop.create_datagram_endpoint(
                lambda: listener, sock=self._sock
            )
            await stop_event.wait()
            for flow in list(self.flows.values()):
                flow.close()
            self.flows.clear()
            self.listener_transport.close()
        else:
            server = await loop.create_server(
                lambda: _RelayedConnection(self, self._number_connection()).client,
                sock=self._sock,
                backlog=1024,
            )
            await stop_event.wait()
            server.close()
            for connection in list(self.connections):
                connection.abort()
            await asyncio.sleep(0)
            await server.wait_closed()
        sweeper.cancel()
        # Connects to the target still under way: cancel them, so none outlives the loop.
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _sweep_forever(self) -> None:
        every = self.config.stats_every_s
        next_stats = self.loop.time() + every if every else None
        while True:
            await asyncio.sleep(min(SWEEP_INTERVAL_S, every) if every else SWEEP_INTERVAL_S)
            now = self.loop.time()
            self._expire_flows(now)
            if next_stats is not None and every and now >= next_stats:
                next_stats += every
                if self.config.on_stats is not None:
                    self.config.on_stats(self.snapshot())

    def _expire_flows(self, now: float) -> None:
        for address, flow in list(self.flows.items()):
            if flow.is_idle and now - flow.last_active >= UDP_FLOW_IDLE_S:
                flow.close()
                del self.flows[address]

    def client_datagram(self, data: bytes, client: tuple[str, int]) -> None:
        flow = self.flows.get(client)
        if flow is None:
            if len(self.flows) >= MAX_UDP_FLOWS:
                _address, oldest = self.flows.popitem(last=False)
                oldest.close()
                self.clients_refused += 1
            self.clients_total += 1
            flow = _Flow(self, client, self.clients_total)
            self.flows[client] = flow
            self.loop.create_task(self._open_upstream(flow))
        else:
            self.flows.move_to_end(client)
        flow.send_up(data)

    async def _open_upstream(self, flow: _Flow) -> None:
        try:
            await self.loop.create_datagram_endpoint(lambda: flow, remote_addr=self.target_address)
        except OSError as exc:
            self.target_failures += 1
            self.notify(TargetUnreachable(self.config.target, exc.strerror or str(exc)))
            flow.close()
            if self.flows.get(flow.client) is flow:
                del self.flows[flow.client]
            return
        if flow.closed:  # evicted or stopped while connecting
            flow.transport.close()


def _enlarge_receive_buffer(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER_BYTES)


def _resolve_target(config: ImpairConfig) -> tuple[str, int]:
    host, port = config.target
    kind = socket.SOCK_DGRAM if config.transport == "udp" else socket.SOCK_STREAM
    with translated_oserrors(host=host, port=port):
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, kind)
    address = infos[0][4]
    return str(address[0]), int(address[1])


def start_impair(config: ImpairConfig) -> ImpairRelay:
    """Bind the listening socket and start relaying in a background thread."""
    return ImpairRelay(config)
