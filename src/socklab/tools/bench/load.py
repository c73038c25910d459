"""The closed-loop load generator: one process drives many sockets with one poller.

A closed loop keeps exactly one round in flight per connection (TCP) or slot (UDP): send,
wait for the whole reply, check it, send again. The offered load therefore adapts to the
server, and latency is measured without the coordinated-omission trap of a fixed-rate sender
ignoring queueing (a closed loop reports the queueing it causes, nothing it cannot see).

Strategy for speed (this loop must outrun the server it measures): non-blocking sockets in one
epoll set where the OS has one (a `selectors` selector elsewhere), states kept in slotted
objects, every expected reply precomputed so checking a reply is one bytes comparison, and the
clock read once per reply. The run is split in phases on one monotonic clock:

    setup (connect, read greetings) -> [wait for the go signal] -> warmup -> measure -> done

Only the measured window counts requests and latencies; errors count over the whole run,
because a wrong reply during warm-up is just as wrong.
"""

from __future__ import annotations

import contextlib
import errno
import select
import selectors
import socket
import time
from dataclasses import dataclass

from socklab.errors import UsageError
from socklab.protocol.converter import UPPER, handle_datagram, parse_reply_datagram
from socklab.runtimes.oserrors import translate_oserror, translated_oserrors
from socklab.tools.bench.histogram import LatencyHistogram
from socklab.tools.bench.results import ErrorCounts
from socklab.tools.bench.workload import (
    UDP_REPLY_TIMEOUT_S,
    Workload,
    payload,
    stream_exchange,
)

# Connects in flight at once during setup: a burst of 10,000 SYNs would overflow the server's
# accept backlog and stall in SYN retransmits (the C reference load generator ramps by 64 too).
CONNECT_RAMP = 64
# A connection that has no greeting after this long counts as failed (an iterative server
# greets one client at a time: the others wait here, and the report says so).
SETUP_TIMEOUT_S = 10.0
# After an error the connection is opened again after this pause, so a faulty server is
# measured for the whole run without being hammered by reconnects.
RECONNECT_DELAY_S = 0.05
# One recv() takes up to 64 KiB, as the servers read. Not more: recv(n) allocates n bytes
# before it knows how many arrive, and glibc serves 128 KiB or more with mmap() (its
# M_MMAP_THRESHOLD), so 256 KiB reads cost an mmap, an mremap and an munmap per reply. strace
# showed exactly that while bench made 40k requests/s on a full core instead of 150k; the mode
# came and went between runs (freeing a block glibc had not shrunk raises its threshold).
RECEIVE_BYTES = 64 * 1024
PROGRESS_INTERVAL_S = 0.1
POLL_TIMEOUT_S = 0.05
# A request without reply for this long when the run ends counts as unanswered.
UNANSWERED_AFTER_S = 1.0

PHASE_SETUP = "setup"
PHASE_WARMUP = "warmup"
PHASE_MEASURE = "measure"
PHASE_DONE = "done"

# Poller event bits, epoll's values (selectors' are mapped onto them).
_READ = select.EPOLLIN if hasattr(select, "EPOLLIN") else 1
_WRITE = select.EPOLLOUT if hasattr(select, "EPOLLOUT") else 4
_FAULT = (select.EPOLLERR | select.EPOLLHUP) if hasattr(select, "EPOLLERR") else 8


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """One load process's share of the work."""

    host: str
    port: int
    workload: Workload
    connections: int  # this process's active connections (or UDP slots)
    idle: int  # this process's idle connections


@dataclass(slots=True)
class LoadReport:
    """What one load process measured; reports of several processes are merged."""

    requests: int
    elapsed_s: float
    histogram: LatencyHistogram
    errors: ErrorCounts
    idle_connected: int
    cpu_cores: float


class LoadControl:
    """Hooks between a load loop and whoever runs it (in-process, or a worker process)."""

    def wait_for_go(self) -> None:
        """Called once setup is done; returns when every load process may start."""

    def progress(self, phase: str, requests: int) -> None:
        """Called about every PROGRESS_INTERVAL_S and on each phase change."""


class _Poller:
    """epoll where it exists, else the best `selectors` selector, with epoll's event bits."""

    def __init__(self) -> None:
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._selector = None if self._epoll else selectors.DefaultSelector()

    def register(self, fd: int, events: int) -> None:
        if self._epoll is not None:
            self._epoll.register(fd, events)
        else:
            assert self._selector is not None
            self._selector.register(fd, self._mask(events))

    def modify(self, fd: int, events: int) -> None:
        if self._epoll is not None:
            self._epoll.modify(fd, events)
        else:
            assert self._selector is not None
            self._selector.modify(fd, self._mask(events))

    def unregister(self, fd: int) -> None:
        with contextlib.suppress(KeyError, OSError, ValueError):
            if self._epoll is not None:
                self._epoll.unregister(fd)
            else:
                assert self._selector is not None
                self._selector.unregister(fd)

    def poll(self, timeout_s: float) -> list[tuple[int, int]]:
        if self._epoll is not None:
            return self._epoll.poll(timeout_s)
        assert self._selector is not None
        ready = []
        for key, mask in self._selector.select(timeout_s):
            events = (_READ if mask & selectors.EVENT_READ else 0) | (
                _WRITE if mask & selectors.EVENT_WRITE else 0
            )
            ready.append((key.fd, events))
        return ready

    @staticmethod
    def _mask(events: int) -> int:
        return (selectors.EVENT_READ if events & _READ else 0) | (
            selectors.EVENT_WRITE if events & _WRITE else 0
        )

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
        elif self._selector is not None:
            self._selector.close()


def resolve_target(host: str, port: int, sock_type: int) -> tuple[int, tuple[str, int]]:
    with translated_oserrors(host=host, port=port):
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, sock_type)
    family, _, _, _, address = infos[0]
    return family, (str(address[0]), int(address[1]))


def run_load(plan: LoadPlan, control: LoadControl) -> LoadReport:
    """Run `plan` to the end and report; blocks for setup + warmup + duration."""
    if plan.workload.transport == "udp":
        return _DatagramLoad(plan, control).run()
    return _StreamLoad(plan, control).run()


# --- TCP -----------------------------------------------------------------------------------------

_CONNECTING, _GREETING, _READY, _WAITING, _RETRY = range(5)


class _Phases:
    """Warm-up, then measurement, until the end of the run: the clock both generators share.

    Call order: made once the first requests are out (it reports the warm-up) -> `advance(now,
    requests)` at every turn of the loop, until it returns False -> `finish()`, which describes
    the measurement alone (the warm-up's requests and CPU time are not in it).
    """

    __slots__ = (
        "control",
        "cpu_start",
        "end",
        "measure_start",
        "next_progress",
        "phase",
        "warm_end",
    )

    def __init__(self, control: LoadControl, workload: Workload, start: int) -> None:
        self.control = control
        self.warm_end = start + int(workload.warmup_s * 1e9)
        self.end = self.warm_end + int(workload.duration_s * 1e9)
        self.phase = PHASE_WARMUP
        control.progress(self.phase, 0)
        self.measure_start = start
        self.cpu_start = time.process_time()
        self.next_progress = start

    @property
    def measuring(self) -> bool:
        return self.phase == PHASE_MEASURE

    def advance(self, now: int, requests: int) -> bool:
        """False once the run is over; otherwise switch phase and report progress when due."""
        if now >= self.end:
            return False
        if self.phase == PHASE_WARMUP and now >= self.warm_end:
            self.phase = PHASE_MEASURE
            self.measure_start = now
            self.cpu_start = time.process_time()
        if now >= self.next_progress:
            self.control.progress(self.phase, requests)
            self.next_progress = now + int(PROGRESS_INTERVAL_S * 1e9)
        return True

    def finish(self) -> tuple[int, float, float]:
        """(the end, on the perf_counter_ns clock; seconds measured; CPU cores used meanwhile)."""
        finished = time.perf_counter_ns()
        cpu_used = time.process_time() - self.cpu_start
        elapsed = (finished - self.measure_start) / 1e9
        return finished, elapsed, cpu_used / elapsed if elapsed > 0 else 0.0


class _Stream:
    __slots__ = ("active", "buffer", "fd", "pending_out", "retry_at", "sent_ns", "sock", "state")

    def __init__(self, active: bool) -> None:
        self.active = active
        self.sock: socket.socket | None = None
        self.fd = -1
        self.state = _RETRY
        self.buffer = b""
        self.pending_out = b""
        self.sent_ns = 0
        self.retry_at = 0


class _StreamLoad:
    def __init__(self, plan: LoadPlan, control: LoadControl) -> None:
        self.plan = plan
        self.control = control
        self.exchange = stream_exchange(plan.workload)
        self.family, self.address = resolve_target(plan.host, plan.port, socket.SOCK_STREAM)
        self.poller = _Poller()
        self.by_fd: dict[int, _Stream] = {}
        self.streams = [_Stream(False) for _ in range(plan.idle)] + [
            _Stream(True) for _ in range(plan.connections)
        ]
        self.running = False  # after go: ready active streams send at once
        self.measuring = False
        self.requests = 0
        self.histogram = LatencyHistogram()
        self.mismatched = self.bad_greeting = self.closed = self.connect_failed = 0
        self.connecting = 0
        self.retrying: list[_Stream] = []  # closed after an error, to be opened again
        self.first_refusal: OSError | None = None

    # -- connection life cycle -----------------------------------------------------------------
    def open(self, stream: _Stream) -> None:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(self.address)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            sock.close()
            self.fail_connect(stream, OSError(code, "connect failed"))
            return
        stream.sock = sock
        stream.fd = sock.fileno()
        stream.state = _CONNECTING
        stream.buffer = stream.pending_out = b""
        self.by_fd[stream.fd] = stream
        self.poller.register(stream.fd, _WRITE)
        self.connecting += 1

    def drop(self, stream: _Stream) -> None:
        if stream.state in (_CONNECTING, _GREETING):
            self.connecting -= 1
        if stream.sock is not None:
            self.poller.unregister(stream.fd)
            self.by_fd.pop(stream.fd, None)
            stream.sock.close()
            stream.sock = None
            stream.fd = -1

    def retry_later(self, stream: _Stream) -> None:
        self.drop(stream)
        stream.state = _RETRY
        stream.retry_at = time.perf_counter_ns() + int(RECONNECT_DELAY_S * 1e9)
        self.retrying.append(stream)

    def fail_connect(self, stream: _Stream, exc: OSError) -> None:
        self.connect_failed += 1
        if self.first_refusal is None:
            self.first_refusal = exc
        self.retry_later(stream)

    def send(self, stream: _Stream, data: bytes) -> None:
        assert stream.sock is not None
        try:
            sent = stream.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.closed += 1
            self.retry_later(stream)
            return
        if sent < len(data):
            stream.pending_out = data[sent:]
            self.poller.modify(stream.fd, _READ | _WRITE)

    def start_round(self, stream: _Stream, now_ns: int) -> None:
        stream.state = _WAITING
        stream.sent_ns = now_ns
        self.send(stream, self.exchange.request)

    # -- events ----------------------------------------------------------------------------------
    def on_event(self, stream: _Stream, events: int) -> None:
        state = stream.state
        sock = stream.sock
        assert sock is not None
        if state == _CONNECTING:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self.fail_connect(stream, OSError(code, "connect failed"))
                return
            stream.state = _GREETING
            self.poller.modify(stream.fd, _READ)
            return
        if events & _WRITE and stream.pending_out:
            data, stream.pending_out = stream.pending_out, b""
            self.poller.modify(stream.fd, _READ)
            self.send(stream, data)
            if stream.sock is None:
                return
        if not events & (_READ | _FAULT):
            return
        try:
            data = sock.recv(RECEIVE_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            data = b""
            if state == _GREETING:
                self.fail_connect(stream, exc)
                return
        if not data:
            if state == _GREETING:
                self.fail_connect(stream, ConnectionResetError("closed before the greeting"))
            else:
                self.closed += 1
                self.retry_later(stream)
            return
        buffer = stream.buffer + data if stream.buffer else data
        if state == _WAITING:
            expected = self.exchange.reply
            if len(buffer) < len(expected):
                stream.buffer = buffer
                return
            if buffer != expected:
                self.mismatched += 1
                self.retry_later(stream)
                return
            now = time.perf_counter_ns()
            if self.measuring:
                pipeline = self.exchange.pipeline
                self.histogram.record(now - stream.sent_ns, pipeline)
                self.requests += pipeline
            stream.buffer = b""
            stream.sent_ns = now
            self.send(stream, self.exchange.request)
        elif state == _GREETING:
            greeting = self.exchange.greeting
            if len(buffer) < len(greeting) and greeting.startswith(buffer):
                stream.buffer = buffer
                return
            self.connecting -= 1
            if buffer != greeting:
                self.bad_greeting += 1
                stream.state = _RETRY  # already counted down: do not count again in drop()
                self.retry_later(stream)
                return
            stream.buffer = b""
            stream.state = _READY
            if stream.active and self.running:
                self.start_round(stream, time.perf_counter_ns())
        else:  # READY: an idle connection, or an active one before go, got unasked bytes
            self.mismatched += 1
            self.retry_later(stream)

    def pump(self, timeout_s: float) -> None:
        by_fd = self.by_fd
        on_event = self.on_event
        for fd, events in self.poller.poll(timeout_s):
            stream = by_fd.get(fd)
            if stream is not None:
                on_event(stream, events)

    def open_due(self, now_ns: int) -> None:
        if not self.retrying:
            return
        waiting = self.retrying
        self.retrying = []
        for stream in waiting:
            if stream.retry_at <= now_ns and self.connecting < CONNECT_RAMP:
                self.open(stream)
            else:
                self.retrying.append(stream)

    # -- phases ----------------------------------------------------------------------------------
    def run(self) -> LoadReport:
        control = self.control
        try:
            self.setup()
            control.wait_for_go()
            return self.drive()
        finally:
            for stream in self.streams:
                self.drop(stream)
            self.poller.close()

    def setup(self) -> None:
        control = self.control
        control.progress(PHASE_SETUP, 0)
        deadline = time.perf_counter_ns() + int(SETUP_TIMEOUT_S * 1e9)
        next_progress = 0
        # Setup opens each connection once (idle ones first, as the C reference does); one that
        # fails waits in `retrying` for the run, so a refusing server ends setup at once.
        unopened = list(reversed(self.streams))
        while True:
            now = time.perf_counter_ns()
            while unopened and self.connecting < CONNECT_RAMP:
                self.open(unopened.pop())
            if not unopened and self.connecting == 0:
                break
            if now >= deadline:
                for stream in self.streams:
                    if stream.state in (_CONNECTING, _GREETING):
                        self.connect_failed += 1
                        self.retry_later(stream)
                break
            self.pump(POLL_TIMEOUT_S / 5)
            if now >= next_progress:
                control.progress(PHASE_SETUP, 0)
                next_progress = now + int(PROGRESS_INTERVAL_S * 1e9)
        if not any(s.state == _READY for s in self.streams) and self.first_refusal is not None:
            raise translate_oserror(
                self.first_refusal, host=self.plan.host, port=self.plan.port
            ) from self.first_refusal

    def drive(self) -> LoadReport:
        start = time.perf_counter_ns()
        self.running = True
        for stream in self.streams:
            if stream.active and stream.state == _READY:
                self.start_round(stream, start)
        phases = _Phases(self.control, self.plan.workload, start)
        next_retry_scan = start
        while phases.advance(now := time.perf_counter_ns(), self.requests):
            self.measuring = phases.measuring
            if now >= next_retry_scan:
                self.open_due(now)
                next_retry_scan = now + int(RECONNECT_DELAY_S * 1e9 / 2)
            self.pump(min(POLL_TIMEOUT_S, (phases.end - now) / 1e9))
        finished, elapsed, cpu_cores = phases.finish()
        stale = finished - int(UNANSWERED_AFTER_S * 1e9)
        unanswered = sum(
            1 for s in self.streams if s.state == _WAITING and s.sent_ns < stale and s.active
        )
        self.control.progress(PHASE_DONE, self.requests)
        return LoadReport(
            requests=self.requests,
            elapsed_s=elapsed,
            histogram=self.histogram,
            errors=ErrorCounts(
                mismatched=self.mismatched,
                bad_greeting=self.bad_greeting,
                closed=self.closed,
                connect_failed=self.connect_failed,
                unanswered=unanswered,
            ),
            idle_connected=sum(1 for s in self.streams if not s.active and s.state == _READY),
            cpu_cores=cpu_cores,
        )


# --- UDP -----------------------------------------------------------------------------------------


class _Slot:
    __slots__ = ("expected", "request_id", "sent_ns", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.request_id = -1
        self.expected = b""
        self.sent_ns = 0


class _DatagramLoad:
    """N slots, each a connected UDP socket with one datagram outstanding.

    Requests carry the protocol's `#<id> ` prefix, so a reply to a request already given up
    (late) is told apart from the current one and from a wrong reply.
    """

    def __init__(self, plan: LoadPlan, control: LoadControl) -> None:
        self.plan = plan
        self.control = control
        self.body = UPPER + payload(plan.workload.size)
        reply_body = handle_datagram(self.body)
        assert reply_body is not None
        self.reply_body = reply_body
        self.family, self.address = resolve_target(plan.host, plan.port, socket.SOCK_DGRAM)
        self.next_id = 0
        self.measuring = False
        self.requests = 0
        self.lost = self.late = self.mismatched = self.refused = 0
        self.histogram = LatencyHistogram()

    def send_new(self, slot: _Slot, now_ns: int) -> None:
        request_id = self.next_id
        self.next_id += 1
        prefix = b"#%d " % request_id
        slot.request_id = request_id
        slot.expected = prefix + self.reply_body
        slot.sent_ns = now_ns
        try:
            slot.sock.send(prefix + self.body)
        except (BlockingIOError, InterruptedError):
            pass  # the send buffer is full: the timeout scan counts it lost and sends again
        except ConnectionRefusedError:
            self.refused += 1  # an ICMP port-unreachable from an earlier datagram

    def on_readable(self, slot: _Slot) -> None:
        recv = slot.sock.recv
        while True:
            try:
                data = recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                self.refused += 1
                return
            if data == slot.expected:
                now = time.perf_counter_ns()
                if self.measuring:
                    self.histogram.record(now - slot.sent_ns)
                    self.requests += 1
                self.send_new(slot, now)
                continue
            try:
                request_id, _ = parse_reply_datagram(data)
            except ValueError:
                request_id = None
            if request_id is not None and request_id < slot.request_id:
                self.late += 1  # answered after we gave up on it: not an error, not counted
            else:
                self.mismatched += 1

    def run(self) -> LoadReport:
        workload = self.plan.workload
        control = self.control
        poller = _Poller()
        slots: dict[int, _Slot] = {}
        try:
            control.progress(PHASE_SETUP, 0)
            for _ in range(self.plan.connections):
                sock = socket.socket(self.family, socket.SOCK_DGRAM)
                sock.setblocking(False)
                with translated_oserrors(host=self.plan.host, port=self.plan.port):
                    try:
                        sock.connect(self.address)
                    except OSError:
                        sock.close()
                        raise
                slots[sock.fileno()] = _Slot(sock)
                poller.register(sock.fileno(), _READ)
            control.wait_for_go()
            start = time.perf_counter_ns()
            timeout_ns = int(UDP_REPLY_TIMEOUT_S * 1e9)
            for slot in slots.values():
                self.send_new(slot, start)
            phases = _Phases(control, workload, start)
            next_scan = start
            while phases.advance(now := time.perf_counter_ns(), self.requests):
                self.measuring = phases.measuring
                if now >= next_scan:
                    for slot in slots.values():
                        if now - slot.sent_ns > timeout_ns:
                            if self.measuring:
                                self.lost += 1
                            self.send_new(slot, now)
                    next_scan = now + timeout_ns // 20
                for fd, _events in poller.poll(0.01):
                    self.on_readable(slots[fd])
            _finished, elapsed, cpu_cores = phases.finish()
            control.progress(PHASE_DONE, self.requests)
            if self.requests == 0 and self.refused:
                raise translate_oserror(
                    ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
                    host=self.plan.host,
                    port=self.plan.port,
                )
            return LoadReport(
                requests=self.requests,
                elapsed_s=elapsed,
                histogram=self.histogram,
                errors=ErrorCounts(
                    mismatched=self.mismatched,
                    connect_failed=self.refused,
                    lost=self.lost,
                    late=self.late,
                ),
                idle_connected=0,
                cpu_cores=cpu_cores,
            )
        finally:
            for slot in slots.values():
                slot.sock.close()
            poller.close()


def check_load_options(workload: Workload) -> None:
    """UsageError for workloads this generator cannot run."""
    workload.check()
    if workload.connections < 1:
        raise UsageError("--connections must be at least 1")
