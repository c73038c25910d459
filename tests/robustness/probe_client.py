"""The "normal client" that runs alongside an attack: paced requests, each reply timed and checked.

It runs as its own process (`python -m tests.robustness.probe_client HOST PORT ...`), so the
attack generator in the test process cannot steal its CPU time slices through the GIL and
inflate the latencies it reports. It checks the server answers, prints `ready`, waits for a
line on stdin, then sends `--count` requests `U:probe-<n>` paced `--interval` seconds apart
(each on a fresh connection with `--fresh-connections`), and prints one JSON object: the latency of each correct exchange in
ms and any wrong or missing reply.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from socklab.clients.converter_client import StreamConverterClient
from socklab.errors import SocklabError

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def run_probe(
    host: str, port: int, framing: str, count: int, interval_s: float, fresh_connections: bool
) -> dict[str, object]:
    """With `fresh_connections`, each request is a whole exchange as the slides' client makes
    it (connect, greeting, request, reply, close), so an attack that holds the accept queue,
    the connection slots or the only thread shows in the latency. Otherwise all requests share
    one connection opened before the attack, which shows how the attack slows serving."""
    latencies_ms: list[float] = []
    failures: list[str] = []
    shared = StreamConverterClient(host, port, framing=framing, timeout_s=10.0)
    assert shared.request(b"U:ready") == b"READY"  # the server answers before the attack
    if fresh_connections:
        shared.close()
    print("ready", flush=True)
    sys.stdin.readline()
    next_send = time.perf_counter()
    for number in range(count):
        next_send += interval_s
        started = time.perf_counter()
        try:
            if fresh_connections:
                with StreamConverterClient(host, port, framing=framing, timeout_s=10.0) as client:
                    reply = client.request(f"U:probe-{number}".encode())
            else:
                reply = shared.request(f"U:probe-{number}".encode())
        except SocklabError as exc:
            failures.append(f"request {number}: {exc}")
            break
        elapsed_ms = (time.perf_counter() - started) * 1000
        if reply != f"PROBE-{number}".encode():
            failures.append(f"request {number}: wrong reply {reply!r}")
            break
        latencies_ms.append(elapsed_ms)
        time.sleep(max(0.0, next_send - time.perf_counter()))
    shared.close()
    return {"latencies_ms": latencies_ms, "failures": failures}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    latencies_ms: list[float]
    failures: list[str]


class ProbeProcess:
    """The probe as a subprocess: `start()` returns once it is connected; `go()`; `result()`."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        framing: str,
        count: int,
        interval_s: float,
        fresh_connections: bool,
    ) -> None:
        self.count = count
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.robustness.probe_client",
                address[0],
                str(address[1]),
                "--framing",
                framing,
                "--count",
                str(count),
                "--interval",
                str(interval_s),
                *(["--fresh-connections"] if fresh_connections else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPOSITORY_ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            _, errors = self.proc.communicate(timeout=10)
            raise AssertionError(f"probe client did not connect: {line!r} {errors}")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def result(self, timeout_s: float = 60.0) -> ProbeResult:
        try:
            output, errors = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=10)
            raise AssertionError(f"probe client still running after {timeout_s} s") from None
        if self.proc.returncode != 0:
            raise AssertionError(f"probe client failed: {errors}")
        data = json.loads(output)
        return ProbeResult(list(data["latencies_ms"]), list(data["failures"]))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--framing", default="line")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--fresh-connections", action="store_true")
    args = parser.parse_args()
    result = run_probe(
        args.host, args.port, args.framing, args.count, args.interval, args.fresh_connections
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
