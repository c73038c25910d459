"""`socklab bench` end to end: it runs, verifies replies, counts errors and reports every key.

Short runs (1 s) against servers bench starts itself, a server the test starts, and deliberately
wrong servers (threads in this process, loopback). Figures are checked for plausibility
(requests happened, errors are zero or counted), never for speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from socklab.protocol.converter import GREETING
from socklab.runtimes import RUNTIMES
from socklab.tools.bench.placement import running_on
from tests.socklab_process import SocklabProcess, free_port, run_socklab, socklab_command

SHORT = ["--duration", "1", "--warmup", "0"]
JSON_KEYS = {
    "schema",
    "target",
    "model",
    "transport",
    "framing",
    "connections",
    "size",
    "duration_s",
    "warmup_s",
    "idle",
    "pipeline",
    "processes",
    "elapsed_s",
    "requests",
    "requests_per_s",
    "latency_us",
    "errors",
    "error_counts",
    "lost",
    "late",
    "idle_connected",
    "server",
    "bench_cpu_cores",
    "bench_is_bottleneck",
    "cpus",
}


def bench_json(*args: str, timeout_s: float = 60.0) -> tuple[int, dict[str, object]]:
    done = run_socklab(["bench", *SHORT, "--json", *args], timeout_s=timeout_s)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_model_run_reports_every_key_and_no_error() -> None:
    status, report = bench_json("--model", "asyncio", "--connections", "4")
    assert status == 0, report
    assert set(report) == JSON_KEYS
    assert report["schema"] == 1
    assert report["transport"] == "tcp"
    assert str(report["model"]).startswith("asyncio/")
    assert report["connections"] == 4
    assert isinstance(report["requests"], int) and report["requests"] > 0
    assert report["errors"] == 0
    latency = report["latency_us"]
    assert isinstance(latency, dict)
    assert set(latency) == {"p50", "p90", "p99", "p99.9", "max", "mean"}
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p99.9"]
    assert latency["p99.9"] <= latency["max"] * 1.02  # bucket midpoints: within resolution
    server = report["server"]
    assert isinstance(server, dict)
    assert server["cpu_cores"] > 0
    assert server["peak_rss_bytes"] > 1_000_000


def test_table_output_names_the_figures() -> None:
    done = run_socklab(["bench", *SHORT, "--connections", "2"], timeout_s=60)
    assert done.returncode == 0, done.stderr
    for label in ("requests/s", "latency p50", "latency p99.9", "errors", "server peak RSS"):
        assert label in done.stdout
    assert "\x1b[" not in done.stdout  # no progress bar or colour into a pipe


def test_the_server_bench_starts_gets_a_core_of_its_own() -> None:
    # Loopback ping-pong pulls both processes onto one core unless they are pinned apart; the
    # threads model checks that the pin covers every thread, the clients' threads included,
    # and two load processes that they run on bench's cores.
    cores = sorted(os.sched_getaffinity(0))
    assert len(cores) >= 2, "CI machines have two cores or more"
    command = [*socklab_command(), "bench", "--model", "threads", "--connections", "8"]
    command += ["--processes", "2", "--duration", "3", "--warmup", "0", "--json"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as bench:
        try:
            server_threads, load_processes = _affinities_once_serving(bench.pid)
        finally:
            output, errors = bench.communicate(timeout=60)
    assert bench.returncode == 0, errors
    assert len(server_threads) > 8  # the clients' threads, the accept thread, the watchdog
    assert all(thread_cores == [cores[-1]] for thread_cores in server_threads.values())
    assert len(load_processes) == 2
    assert all(process_cores == cores[:-1] for process_cores in load_processes)
    assert json.loads(output)["cpus"] == {"server": [cores[-1]], "bench": cores[:-1]}


def _affinities_once_serving(bench_pid: int) -> tuple[dict[int, list[int]], list[list[int]]]:
    """({server thread id: its cores}, [each load process's cores]), read from the OS once
    the server has a thread per client (so the load processes run)."""
    bench = psutil.Process(bench_pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = bench.children()
        servers = [child for child in children if "converter" in child.cmdline()]
        if servers and servers[0].num_threads() > 8:
            threads = {}
            for thread in servers[0].threads():
                with contextlib.suppress(OSError):  # a thread that just ended
                    threads[thread.id] = sorted(os.sched_getaffinity(thread.id))
            loads = [
                sorted(child.cpu_affinity())
                for child in children
                if child not in servers and "resource_tracker" not in " ".join(child.cmdline())
            ]
            return threads, loads
        time.sleep(0.05)  # polling the OS's view, not waiting for readiness of a service
    raise AssertionError("the server bench started never had a thread per client")


def test_cores_come_back_after_a_failure_inside() -> None:
    before = os.sched_getaffinity(0)
    cores = tuple(sorted(before))
    with pytest.raises(RuntimeError), running_on(cores[:1]) as pinned:
        assert pinned and os.sched_getaffinity(0) == set(cores[:1])
        raise RuntimeError("a failed run")
    assert os.sched_getaffinity(0) == before


def test_no_pin_leaves_placement_to_the_os() -> None:
    status, report = bench_json("--connections", "2", "--no-pin")
    assert status == 0, report
    assert report["cpus"] is None
    done = run_socklab(["bench", *SHORT, "--connections", "2"], timeout_s=60)
    assert "CPU placement" in done.stdout


def test_udp_outstanding_datagrams() -> None:
    status, report = bench_json("--udp", "--connections", "4")
    assert status == 0, report
    assert report["transport"] == "udp"
    assert isinstance(report["requests"], int) and report["requests"] > 0
    assert report["errors"] == 0


def test_idle_connections_and_pipelining() -> None:
    status, report = bench_json("--connections", "3", "--idle", "40", "--pipeline", "4")
    assert status == 0, report
    assert report["idle_connected"] == 40
    assert isinstance(report["requests"], int) and report["requests"] % 4 == 0
    assert report["requests"] > 0


def test_spread_over_processes() -> None:
    status, report = bench_json("--connections", "4", "--processes", "2")
    assert status == 0, report
    assert report["processes"] == 2
    assert isinstance(report["requests"], int) and report["requests"] > 0


def test_running_target_has_no_server_figures(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    server = start_socklab(["converter", "server", "--port", "0"])
    host, port = server.wait_listening()
    status, report = bench_json("--target", f"{host}:{port}", "--connections", "2")
    assert status == 0, report
    assert report["server"] is None
    assert report["model"] is None
    assert report["target"] == f"{host}:{port}"


def test_length_framing_end_to_end() -> None:
    status, report = bench_json("--framing", "length", "--connections", "2")
    assert status == 0, report
    assert report["framing"] == "length"
    assert report["errors"] == 0


# --- deliberately wrong servers -------------------------------------------------------------------


def serve_wrongly(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback TCP server whose every connection is handled by `handle` in a thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def accept_forever() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept_forever, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        acceptor.join(5)
        listener.close()


def echo_without_converting(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(5)
        conn.sendall(GREETING + b"\n")
        try:
            while data := conn.recv(4096):
                conn.sendall(data[2:])  # drops "U:" but does not upper-case
        except OSError:
            pass


def wrong_greeting(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(5)
        try:
            conn.sendall(b"Hello, I am something else entirely, not the converter at all!!\n")
            conn.recv(4096)
        except OSError:
            pass


@pytest.fixture
def echo_server() -> Iterator[int]:
    yield from serve_wrongly(echo_without_converting)


@pytest.fixture
def impostor_server() -> Iterator[int]:
    yield from serve_wrongly(wrong_greeting)


def test_wrong_replies_are_counted(echo_server: int) -> None:
    status, report = bench_json("--target", f"127.0.0.1:{echo_server}", "--connections", "2")
    assert status == 4  # ExitStatus.PROTOCOL
    counts = report["error_counts"]
    assert isinstance(counts, dict)
    assert counts["mismatched"] > 0
    assert report["errors"] == sum(counts.values())
    assert report["requests"] == 0


def test_wrong_greeting_is_counted(impostor_server: int) -> None:
    status, report = bench_json("--target", f"127.0.0.1:{impostor_server}", "--connections", "2")
    assert status == 4
    counts = report["error_counts"]
    assert isinstance(counts, dict)
    assert counts["bad_greeting"] > 0


def test_nothing_listening_is_one_line() -> None:
    port = free_port()
    done = run_socklab(["bench", *SHORT, "--target", f"127.0.0.1:{port}"], timeout_s=60)
    assert done.returncode == 3  # ExitStatus.NETWORK
    assert "refused" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--udp", "--idle", "5"],
        ["--udp", "--pipeline", "2"],
        ["--target", "127.0.0.1:1", "--model", "asyncio"],
        ["--model", "no-such-model"],
        ["--connections", "0"],
        ["--scenarios", "c1_64"],
        ["--compare", "--scenarios", "c7_99"],
    ],
    ids=[
        "udp-idle",
        "udp-pipeline",
        "target-and-model",
        "unknown-model",
        "zero",
        "scenarios",
        "bad-scenario",
    ],
)
def test_bad_options_are_usage_errors(args: list[str]) -> None:
    done = run_socklab(["bench", *SHORT, *args], timeout_s=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_compare_lists_every_model() -> None:
    done = run_socklab(
        [
            "bench",
            "--compare",
            "--scenarios",
            "c1_64,udp32_64",
            "--duration",
            "0.5",
            "--warmup",
            "0",
            "--json",
        ],
        timeout_s=110,
    )
    assert "Traceback" not in done.stderr
    comparison = json.loads(done.stdout)
    assert comparison["schema"] == 1
    servers = comparison["servers"]
    for model in RUNTIMES:
        assert any(label == model or label.startswith(model + "/") for label in servers)
    assert "asyncio/asyncio" in servers
    cells = {(cell["server"], cell["scenario"]): cell for cell in comparison["cells"]}
    for server in servers:
        cell = cells[(server, "c1_64")]
        assert cell["failure"] is None, cell
        assert cell["result"]["requests"] > 0
    udp = cells[("asyncio/asyncio", "udp32_64")]
    assert udp["result"]["errors"] == 0
    assert done.returncode == 0


def test_progress_bar_on_a_terminal_then_the_table() -> None:
    """In-process with a terminal-like stdout: the live bar runs, the table follows."""
    import io

    from socklab.cli.environment import Environment
    from socklab.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdin=io.StringIO(),
        stdout=out,
        stderr=err,
        environ={"LANG": "C.UTF-8"},
        stdin_isatty=False,
        stdout_isatty=True,
    )
    status = main(["bench", *SHORT, "--connections", "2"], env)
    assert status == 0, err.getvalue()
    text = out.getvalue()
    assert "measuring" in text  # the live bar's phase
    assert "requests/s" in text
    assert "latency p99.9" in text
