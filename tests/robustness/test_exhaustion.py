"""Hostile peers, exhaustion (issue 15, §5): out of descriptors, out of memory, the bounds.

* Out of descriptors, at start: the server runs under `prlimit --nofile=64` and 200 clients
  connect. Its bound is the open-file limit minus a reserve (`-v` says so); the clients over
  it get `E:server busy`, the operator gets one line naming the limit and how to raise it,
  the clients admitted keep being served, and a slot freed is given to the next client.
* Out of descriptors, suddenly: `prlimit --pid` lowers the running server's limit to the
  descriptors it holds, so accept() fails with EMFILE. The spare descriptor turns the waiting
  client away with `E:server busy` (it used to wait unanswered, or get a bare close under
  uvloop), the operator hears of it, and service resumes once descriptors are free.
* The threads model under `prlimit --as=200000000`: a thread that cannot start refuses its
  client with `E:server busy` and is a line for the operator; no traceback reaches stderr.
* The default bound is 10,000 for the event-loop models (capped by the open-file limit) and
  1,024 for the blocking ones, printed by `-v`; 1,100 clients are all greeted by default.
* `--max-clients-per-host N`: the N+1st client from one address is busy, another address is
  served.

Every wait is bounded; servers run on loopback and are stopped by PID.
"""

from __future__ import annotations

import re
import resource
import socket
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

import pytest

from tests.robustness.conftest import model_params, stream_models
from tests.robustness.observed_server import ObservedServer, server_arguments, wait_until
from tests.socklab_process import SocklabProcess, free_port

BUSY_LINE = b"E:server busy, try again later\n"
GREETING_START = b"Hi I'm your upper/lowercase converter"
TIMEOUT_S = 5.0
# The server's reserve of descriptors besides its clients (runtimes/connections.py).
RESERVED = 32
DESCRIPTOR_LINE = re.compile(
    r"^Out of file descriptors: [\d,]+ clients? got 'server busy'\. "
    r"The open-file limit of (?P<limit>[\d,]+) leaves room for [\d,]+ clients at once; "
    r"raise it \(ulimit -n"
)

Start = Callable[..., SocklabProcess]

# The asyncio model on both of its loops: uvloop handled EMFILE with a bare close of its own.
EVENT_LOOP_CASES = [
    pytest.param("asyncio", ["--loop", "uvloop"], id="asyncio-uvloop"),
    pytest.param("asyncio", ["--loop", "asyncio"], id="asyncio-asyncio"),
    pytest.param("selectors", [], id="selectors"),
]
ALL_CASES = [
    *EVENT_LOOP_CASES,
    pytest.param("threads", [], id="threads"),
    pytest.param("iterative", [], id="iterative"),
]


def launch(
    start: Start,
    model: str,
    extra: Sequence[str] = (),
    *,
    prefix: Sequence[str] = (),
) -> ObservedServer:
    port = free_port()
    process = start(server_arguments(model, "line", port, extra), prefix=list(prefix))
    host, bound = process.wait_listening()
    return ObservedServer(process, host, bound, model, "line")


def first_line(sock: socket.socket) -> bytes:
    """The first line the server sends (b"" when it closes without one)."""
    sock.settimeout(TIMEOUT_S)
    received = b""
    try:
        while not received.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    except ConnectionResetError:
        pass
    return received


def ask(sock: socket.socket, text: bytes) -> bytes:
    sock.sendall(b"U:" + text + b"\n")
    return first_line(sock)


def effective_bound(server: ObservedServer) -> int:
    for line in server.process.stdout_lines:
        match = re.match(r"Serving at most ([\d,]+) clients at once", line)
        if match:
            return int(match.group(1).replace(",", ""))
    raise AssertionError(f"no 'Serving at most' line in {server.process.stdout_lines}")


def descriptor_lines(server: ObservedServer) -> list[str]:
    return [line for line in server.error_output() if DESCRIPTOR_LINE.match(line)]


@contextmanager
def connections(
    address: tuple[str, int], count: int
) -> Iterator[list[tuple[socket.socket, bytes]]]:
    """`count` clients connected one after the other, each with its first line read."""
    with ExitStack() as stack:
        clients = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection(address, timeout=TIMEOUT_S))
            clients.append((sock, first_line(sock)))
        yield clients


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("model", "extra"), [*EVENT_LOOP_CASES, pytest.param("threads", [], id="threads")]
)
def test_under_nofile_64_clients_over_the_limit_get_busy_and_the_rest_are_served(
    start_socklab: Start, model: str, extra: list[str]
) -> None:
    """The iterative model is not here: it holds one client at a time, the others wait in
    the listen backlog by design, so 64 descriptors never run out (the next test covers its
    accept() failing)."""
    server = launch(start_socklab, model, [*extra, "-v"], prefix=["prlimit", "--nofile=64"])
    bound = effective_bound(server)
    assert bound == 64 - RESERVED
    with connections(server.address, 200) as clients:
        firsts = [line for _, line in clients]
        greeted = [sock for sock, line in clients if line.startswith(GREETING_START)]
        print(
            f"\n{model} {' '.join(extra)} under nofile=64: {len(greeted)} greeted, "
            f"{firsts.count(BUSY_LINE)} busy of 200"
        )
        assert len(greeted) == bound
        assert firsts.count(BUSY_LINE) == 200 - bound  # none hangs, none gets a bare close
        for number, sock in enumerate(greeted):
            assert ask(sock, b"still served %d" % number) == b"STILL SERVED %d\n" % number
        for sock in greeted[:5]:
            sock.close()
        busy_seen = [firsts.count(BUSY_LINE)]

        def next_client_served() -> bool:
            with socket.create_connection(server.address, timeout=TIMEOUT_S) as sock:
                line = first_line(sock)
                busy_seen[0] += line == BUSY_LINE  # the slot is not free yet
                return line.startswith(GREETING_START) and ask(sock, b"freed") == b"FREED\n"

        assert wait_until(next_client_served, timeout_s=TIMEOUT_S, interval_s=0.05)
    lines = descriptor_lines(server)
    assert len(lines) == 1, server.error_output()  # rate-limited: once per 10 s
    assert DESCRIPTOR_LINE.match(lines[0])["limit"] == "64"  # type: ignore[index]
    assert server.error_output() == lines  # nothing else: no traceback
    # Stopped, the server reports the refusals counted since its line: the counts add up.
    assert server.process.stop() == 0
    lines = descriptor_lines(server)
    counts = [int(re.search(r"([\d,]+) clients? got", line)[1].replace(",", "")) for line in lines]  # type: ignore[index]
    assert sum(counts) == busy_seen[0], lines
    assert server.error_output() == lines


def limit_descriptors(pid: int, soft: int) -> None:
    """Set the soft RLIMIT_NOFILE of the running process `pid` (prlimit(1))."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    subprocess.run(
        ["prlimit", f"--pid={pid}", f"--nofile={soft}:{hard}"], check=True, timeout=TIMEOUT_S
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("model", "extra"), ALL_CASES)
def test_accept_out_of_descriptors_refuses_with_the_spare_and_recovers(
    start_socklab: Start, model: str, extra: list[str]
) -> None:
    server = launch(start_socklab, model, extra)
    held, _threads = server.settled_baseline()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    limit_descriptors(server.pid, held)  # about no descriptor more for this process
    try:
        with ExitStack() as stack:
            # A loop may have closed one of its own since it was counted: the clients take what
            # is left, then the next ones must get the notice, not wait or a bare close.
            firsts = []
            for _ in range(6):
                sock = stack.enter_context(
                    socket.create_connection(server.address, timeout=TIMEOUT_S)
                )
                firsts.append(first_line(sock))
                if firsts[-1] != BUSY_LINE:
                    assert firsts[-1].startswith(GREETING_START), firsts
            print(f"\n{model} {' '.join(extra)} at its limit: {firsts}")
            assert firsts[-3:] == [BUSY_LINE] * 3
    finally:
        limit_descriptors(server.pid, hard)

    def served() -> bool:
        with socket.create_connection(server.address, timeout=TIMEOUT_S) as sock:
            return first_line(sock).startswith(GREETING_START) and ask(sock, b"back") == b"BACK\n"

    assert wait_until(served, timeout_s=TIMEOUT_S, interval_s=0.05)
    lines = descriptor_lines(server)
    assert len(lines) == 1, server.error_output()
    assert DESCRIPTOR_LINE.match(lines[0])["limit"] == f"{held:,}"  # type: ignore[index]
    assert server.error_output() == lines


@pytest.mark.timeout(90)
def test_threads_under_a_memory_limit_refuse_with_a_line_and_no_traceback(
    start_socklab: Start,
) -> None:
    server = launch(
        start_socklab, "threads", ["--max-clients", "200"], prefix=["prlimit", "--as=200000000"]
    )
    with connections(server.address, 200) as clients:
        firsts = [line for _, line in clients]
        greeted = [sock for sock, line in clients if line.startswith(GREETING_START)]
        print(f"\nthreads under as=200 MB: {len(greeted)} greeted, {firsts.count(BUSY_LINE)} busy")
        assert len(greeted) + firsts.count(BUSY_LINE) == 200
        assert firsts.count(BUSY_LINE) > 0  # 200 stacks of 8 MiB do not fit in 200 MB
        for number, sock in enumerate(greeted):
            reply = ask(sock, b"x%d" % number)
            assert reply in (b"X%d\n" % number, b"E:server out of memory, try again later\n")
    errors = server.error_output()
    assert not [line for line in errors if "Traceback" in line or "MemoryError" in line], errors
    assert [
        line
        for line in errors
        if re.match(r"Could not start a thread for [\d,]+ clients? \(", line)
    ], errors


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("model", "default"),
    [("asyncio", 10_000), ("selectors", 10_000), ("threads", 1_024), ("iterative", 1_024)],
)
def test_default_bound_is_the_models_and_verbose_prints_it(
    start_socklab: Start, model: str, default: int
) -> None:
    server = launch(start_socklab, model, ["-v"])
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert effective_bound(server) == min(default, hard - RESERVED)
    if default > 1_024 and hard - RESERVED > 1_100:
        # More than the old default of 1,024 for every model: all greeted.
        with connections(server.address, 1_100) as clients:
            greeted = sum(line.startswith(GREETING_START) for _, line in clients)
        print(f"\n{model}: {greeted} of 1,100 clients greeted by default")
        assert greeted == 1_100
    assert server.error_output() == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model", model_params("clients_per_host", stream_models()))
def test_max_clients_per_host_refuses_one_address_and_serves_another(
    start_socklab: Start, model: str
) -> None:
    server = launch(start_socklab, model, ["--max-clients-per-host", "3"])
    with connections(server.address, 4) as clients:
        firsts = [line for _, line in clients]
        assert [line.startswith(GREETING_START) for line in firsts[:3]] == [True] * 3
        assert firsts[3] == BUSY_LINE
        with socket.create_connection(
            server.address, timeout=TIMEOUT_S, source_address=("127.0.0.2", 0)
        ) as other:
            assert first_line(other).startswith(GREETING_START)
            assert ask(other, b"other host") == b"OTHER HOST\n"
        for number, (sock, _) in enumerate(clients[:3]):
            assert ask(sock, b"same %d" % number) == b"SAME %d\n" % number
        clients[0][0].close()

        def freed_slot_reused() -> bool:
            with socket.create_connection(server.address, timeout=TIMEOUT_S) as sock:
                return first_line(sock).startswith(GREETING_START)

        assert wait_until(freed_slot_reused, timeout_s=TIMEOUT_S, interval_s=0.05)
    assert server.error_output() == []
