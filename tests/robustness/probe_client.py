"""The "normal client" that runs alongside an attack: paced requests, each reply timed and checked.

It runs as its own process (`python -m tests.robustness.probe_client HOST PORT ...`), so the
attack generator in the test process cannot steal its CPU time slices through the GIL and
inflate the latencies it reports. It connects, prints `ready`, waits for a line on stdin, then
sends `--count` requests `U:probe-<n>` paced `--interval` seconds apart on one connection and
prints one JSON object: the latency of each correct reply in ms and any wrong or missing reply.
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
    host: str, port: int, framing: str, count: int, interval_s: float
) -> dict[str, object]:
    latencies_ms: list[float] = []
    failures: list[str] = []
    with StreamConverterClient(host, port, framing=framing, timeout_s=10.0) as client:
        print("ready", flush=True)
        sys.stdin.readline()
        next_send = time.perf_counter()
        for number in range(count):
            next_send += interval_s
            request = f"U:probe-{number}".encode()
            started = time.perf_counter()
            try:
                reply = client.request(request)
            except SocklabError as exc:
                failures.append(f"request {number}: {exc}")
                break
            elapsed_ms = (time.perf_counter() - started) * 1000
            if reply != f"PROBE-{number}".encode():
                failures.append(f"request {number}: wrong reply {reply!r}")
                break
            latencies_ms.append(elapsed_ms)
            time.sleep(max(0.0, next_send - time.perf_counter()))
    return {"latencies_ms": latencies_ms, "failures": failures}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    latencies_ms: list[float]
    failures: list[str]


class ProbeProcess:
    """The probe as a subprocess: `start()` returns once it is connected; `go()`; `result()`."""

    def __init__(
        self, address: tuple[str, int], *, framing: str, count: int, interval_s: float
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
    args = parser.parse_args()
    print(json.dumps(run_probe(args.host, args.port, args.framing, args.count, args.interval)))


if __name__ == "__main__":
    main()
