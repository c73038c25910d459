"""`--workers N`: N processes serve one port together, each with its own socket (SO_REUSEPORT).

One Python process converts on one core at a time (the GIL); N processes use N cores. With
SO_REUSEPORT every worker binds and listens on the same port itself, and the kernel spreads new
connections (for UDP: senders) over their sockets by a hash of the addresses, so no worker wakes
for a connection that another one takes (socket(7), "SO_REUSEPORT", Linux 3.9; on macOS the
option only allows the shared bind, and connections go to one socket at a time).

Strategy:
  1. The parent binds the port first, with SO_REUSEPORT and without listening: "address in use"
     and port 0 are settled before any worker exists, and every worker binds the same port.
  2. It forks N workers (Linux, macOS), with SIGINT and SIGTERM blocked until each worker has
     installed its own handlers. A worker runs the chosen model in-process and reports "ready",
     or its error, through a pipe.
  3. Once all are ready the parent closes its own socket: a bound UDP socket would otherwise
     receive a share of the datagrams and answer none.
  4. The parent supervises. To stop, it sends SIGTERM to every worker, which stops like a single
     server (stop accepting, drain within the grace, exit 0) and sends back its counters; a
     worker still running after the grace is killed. A worker that ends on its own is an error:
     the others are stopped and the parent reports it. One that stopped on a stop signal it got
     itself (Ctrl+C in a terminal reaches the whole process group) is a stop for all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import operator
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from socklab.errors import SocklabError, UsageError
from socklab.i18n import _, format_number, ngettext
from socklab.runtimes.config import ServerConfig
from socklab.runtimes.connections import resolve_client_limits
from socklab.runtimes.handle import ServerHandle, ServerStats
from socklab.runtimes.listening import (
    _bind,
    _prepare_server_socket,
    bound_address,
    resolve_bind_address,
)

# A worker binds, listens and reports within this time, or the start fails.
WORKER_START_TIMEOUT_S = 15.0
# Beyond the shutdown grace, a worker has this long to close and exit before it is killed.
WORKER_EXIT_MARGIN_S = 2.0
# The supervisor looks at its stop flag this often.
SUPERVISE_WAIT_S = 0.2

_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@dataclass(slots=True)
class _Worker:
    number: int
    process: Any  # multiprocessing's ForkProcess; typeshed has no public name for it
    channel: Connection
    finished: bool = False
    # It stopped on a stop signal it received itself, as when Ctrl+C in a terminal reaches
    # the whole process group, workers included: not a worker that ended unexpectedly.
    stopped_by_signal: bool = False


def _reserve_port(config: ServerConfig) -> socket.socket:
    """A socket bound to the port with SO_REUSEPORT that accepts nothing: it holds the port."""
    sock_type = socket.SOCK_DGRAM if config.transport == "udp" else socket.SOCK_STREAM
    family, address = resolve_bind_address(config.host, config.port, sock_type)
    sock = socket.socket(family, sock_type)
    try:
        # SO_REUSEPORT on the reserve too: the workers' sockets join it. A UDP socket has no
        # SO_REUSEADDR (a second program could share the port), so without this they could not.
        reserving = dataclasses.replace(config, reuse_port=True)
        _prepare_server_socket(sock, reserving, stream=sock_type == socket.SOCK_STREAM)
        _bind(sock, address, config)
    except BaseException:
        sock.close()
        raise
    return sock


def _run_worker(model: str, config: ServerConfig, reserved: socket.socket, channel: Any) -> None:
    """A worker process: serve until SIGTERM/SIGINT, then report the counters and exit 0."""
    from socklab.runtimes import RUNTIMES

    reserved.close()
    # The stop signals as the CLI handles them (cli/stop_signals.py): the handler only records
    # them, never raises nor takes a lock (a threading.Event's set() would deadlock if
    # the signal came while this thread held the Event's lock in wait()); the wake-up
    # descriptor ends the wait. Our own pair, not the parent's one inherited through fork().
    received: list[int] = []
    wake_receiver, wake_sender = socket.socketpair()
    wake_receiver.setblocking(False)
    wake_sender.setblocking(False)
    signal.set_wakeup_fd(wake_sender.fileno(), warn_on_full_buffer=False)
    for signum in _STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: received.append(signum))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    try:
        handle = RUNTIMES[model].serve(config)
    except SocklabError as error:
        channel.send(("failed", str(error)))
        sys.exit(1)
    channel.send(("ready", getattr(handle, "loop_name", None)))
    while not received and handle.is_running:
        select.select([wake_receiver], [], [], SUPERVISE_WAIT_S)
        with contextlib.suppress(BlockingIOError, InterruptedError):
            wake_receiver.recv(64)
    status = 0
    try:
        handle.stop(config.shutdown_grace_s + WORKER_EXIT_MARGIN_S)
        handle.wait(0)
    except SocklabError as error:
        channel.send(("failed", str(error)))
        status = 1
    if received:
        channel.send(("signalled", received[0]))
    channel.send(("stopped", dataclasses.astuple(handle.stats)))
    # Stop signals are ignored from here on: finalization would reset a Python handler to
    # SIG_DFL, and a terminal's second Ctrl+C (sent to the whole process group) or the
    # parent's SIGTERM would then kill a worker that has finished.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(status)


class WorkerPool(ServerHandle):
    """N worker processes serving `model` on one port; stop() stops them all."""

    def __init__(self, model: str, config: ServerConfig) -> None:
        if not hasattr(socket, "SO_REUSEPORT") or not hasattr(os, "fork"):
            raise UsageError("--workers needs SO_REUSEPORT, which this operating system lacks")
        self.config = config
        self.loop_name: str | None = None
        self._workers: list[_Worker] = []
        self._stop_requested = False
        self._failure_message: str | None = None
        reserved = _reserve_port(config)
        try:
            address = bound_address(reserved)
            worker_config = dataclasses.replace(config, port=address[1], reuse_port=True, workers=1)
            self._start_workers(model, worker_config, reserved)
            self._wait_until_ready()
        except BaseException:
            self._kill_all()
            raise
        finally:
            reserved.close()
        super().__init__(address)
        # Each worker's bound, for --verbose: the workers resolve the same from the same limit.
        from socklab.runtimes import RUNTIMES

        self.client_limits = resolve_client_limits(config, RUNTIMES[model].default_max_clients)
        self.start_thread(f"socklab-workers-{address[1]}")

    def _start_workers(self, model: str, config: ServerConfig, reserved: socket.socket) -> None:
        # fork(), not spawn: the worker inherits the observer (the CLI's --verbose printer) and
        # starts at once. Nothing but this thread runs in the parent yet, so fork is safe.
        context = multiprocessing.get_context("fork")
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            for number in range(1, self.config.workers + 1):
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(
                    target=_run_worker,
                    args=(model, config, reserved, sender),
                    name=f"socklab-worker-{number}",
                    daemon=True,  # multiprocessing ends daemon workers if the parent exits
                )
                process.start()
                sender.close()
                self._workers.append(_Worker(number, process, receiver))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        waiting = {worker.channel: worker for worker in self._workers}
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SocklabError(
                    ngettext(
                        "{waiting} of {count} worker did not start within {seconds} s",
                        "{waiting} of {count} workers did not start within {seconds} s",
                        len(self._workers),
                    ).format(
                        waiting=format_number(len(waiting)),
                        count=format_number(len(self._workers)),
                        seconds=format_number(WORKER_START_TIMEOUT_S, None),
                    )
                )
            for channel in wait(list(waiting), remaining):
                assert isinstance(channel, Connection)
                worker = waiting.pop(channel)
                try:
                    kind, detail = channel.recv()
                except EOFError:
                    worker.process.join(WORKER_EXIT_MARGIN_S)
                    raise SocklabError(
                        _(
                            "worker {number} ended before it was ready (exit status {status})"
                        ).format(number=worker.number, status=worker.process.exitcode)
                    ) from None
                if kind == "failed":
                    raise SocklabError(str(detail))
                self.loop_name = detail

    # -- supervising ----------------------------------------------------------------------------
    def run(self) -> None:
        kill_at = float("inf")
        signalled = False
        while True:
            running = [worker for worker in self._workers if not worker.finished]
            if not running:
                break
            if self._stop_requested and not signalled:
                signalled = True
                kill_at = time.monotonic() + self.config.shutdown_grace_s + WORKER_EXIT_MARGIN_S
                for worker in running:
                    self._signal(worker, signal.SIGTERM)
            if time.monotonic() >= kill_at:
                for worker in running:
                    self._signal(worker, signal.SIGKILL)
            sentinels: dict[Any, _Worker] = {w.process.sentinel: w for w in running}
            for ready in wait(
                [*sentinels, *(w.channel for w in running if not w.channel.closed)],
                SUPERVISE_WAIT_S,
            ):
                exited = sentinels.get(ready)
                if exited is not None:
                    self._reap(exited)
                else:
                    self._read_reports(next(w for w in running if w.channel is ready))
        for worker in self._workers:
            worker.channel.close()
        if self._failure_message is not None:
            raise SocklabError(self._failure_message)

    def _reap(self, worker: _Worker) -> None:
        worker.process.join(WORKER_EXIT_MARGIN_S)
        self._read_reports(worker)
        worker.finished = True
        if worker.stopped_by_signal:
            # The signal went to the group: the others stop too (SIGTERM from us, if not yet).
            self._stop_requested = True
        elif not self._stop_requested and self._failure_message is None:
            self._failure_message = _(
                "worker {number} ended unexpectedly (exit status {status}); all workers were stopped"
            ).format(number=worker.number, status=worker.process.exitcode)
            self._stop_requested = True

    def _read_reports(self, worker: _Worker) -> None:
        channel = worker.channel
        try:
            while not channel.closed and channel.poll():
                kind, detail = channel.recv()
                if kind == "signalled":
                    worker.stopped_by_signal = True
                elif kind == "stopped":
                    for field, value in zip(dataclasses.fields(ServerStats), detail, strict=True):
                        total = getattr(self.stats, field.name)
                        # Counters add up over the workers; a "largest" figure is the maximum.
                        combined = max if field.name.startswith("largest_") else operator.add
                        setattr(self.stats, field.name, combined(total, value))
                elif kind == "failed" and self._failure_message is None:
                    self._failure_message = _("worker {number}: {detail}").format(
                        number=worker.number, detail=detail
                    )
        except (EOFError, OSError):
            channel.close()  # the worker has gone: nothing more to read, nor to wait for

    @staticmethod
    def _signal(worker: _Worker, signum: int) -> None:
        pid = worker.process.pid
        if pid is not None and worker.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _kill_all(self) -> None:
        for worker in self._workers:
            self._signal(worker, signal.SIGKILL)
        for worker in self._workers:
            worker.process.join(WORKER_EXIT_MARGIN_S)
            worker.channel.close()

    def request_stop(self) -> None:
        self._stop_requested = True

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop every worker: their own grace, then the margin before they are killed."""
        if timeout_s is None:
            timeout_s = self.config.shutdown_grace_s + 2 * WORKER_EXIT_MARGIN_S + 1.0
        super().stop(timeout_s)
