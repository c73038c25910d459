#!/usr/bin/env python3
"""`socklab ports` against `ss`, with 10,000+ sockets on the machine, interleaved in one run.

What it does: a child process (this script with `--hold`) opens the sockets on loopback — one
TCP listener with N/2 accepted connections (both ends count, IPv4 and IPv6), unconnected UDP
sockets for the rest, and one small listener with a single connection whose port is the `--port`
probe — and keeps them until its stdin closes (or `--hold-limit-s` passes), so nothing outlives
the run. Then every command is started in turn, round after round, its output read to the end:

    ss -tunap                      vs  socklab ports                 (the whole table)
    ss -tanp 'sport = :P'          vs  socklab ports --port P        (one port)

Interleaving (each round runs every command once, in the same order) spreads a shared machine's
noise over all commands alike; the table reports the median of the rounds and the ratio of
medians. Interpreter start-up is part of socklab's time, as a user sees it.

Several socklab installs can be compared in one run (`--socklab NAME=COMMAND`, e.g. `main` and
this branch, each installed in a venv of its own).

Usage:
    python3 benchmarks/ports_vs_ss.py [--sockets 10500] [--runs 7]
        [--socklab after=.venv/bin/socklab] [--socklab before=/tmp/before/.venv/bin/socklab]
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

# Connections take two sockets each; a quarter of them over IPv6 (::1) so both families count.
IPV6_SHARE = 0.25
# UDP sockets: a fifth of the total, the rest TCP.
UDP_SHARE = 0.2
# One command's run is abandoned after this long (the psutil path took ~5 s with 12,700 sockets).
COMMAND_TIMEOUT_S = 120.0


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise SystemExit(f"need {wanted} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _connections(family: int, host: str, count: int, held: list[socket.socket]) -> int:
    """A listener on `host` and `count` connections to it, accepted: 2 * count + 1 sockets."""
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(4096)
    held.append(listener)
    port = int(listener.getsockname()[1])
    for _ in range(count):
        client = socket.socket(family, socket.SOCK_STREAM)
        client.connect((host, port))
        server_end, _peer = listener.accept()
        held += (client, server_end)
    return port


def hold(total: int, limit_s: float) -> None:
    """Open about `total` sockets, print the probe port, keep them until stdin closes."""
    _raise_fd_limit(total + 200)
    held: list[socket.socket] = []
    udp = int(total * UDP_SHARE)
    pairs = (total - udp) // 2
    pairs6 = int(pairs * IPV6_SHARE)
    _connections(socket.AF_INET, "127.0.0.1", pairs - pairs6, held)
    _connections(socket.AF_INET6, "::1", pairs6, held)
    for index in range(udp):
        family, host = (socket.AF_INET6, "::1") if index % 4 == 0 else (socket.AF_INET, "127.0.0.1")
        datagram = socket.socket(family, socket.SOCK_DGRAM)
        datagram.bind((host, 0))
        held.append(datagram)
    probe = _connections(socket.AF_INET, "127.0.0.1", 1, held)
    print(f"ready {probe} {len(held)}", flush=True)
    # Bounded: the sockets go when the benchmark closes our stdin, or after limit_s at the latest.
    select.select([sys.stdin], [], [], limit_s)
    for sock in held:
        sock.close()


def _time_command(command: str) -> tuple[float, int]:
    """Wall time of one run with its output read to the end (as a pipe would), and its lines."""
    started = time.perf_counter()
    result = subprocess.run(
        command,
        shell=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command!r} exited with status {result.returncode}")
    return elapsed, result.stdout.count(b"\n")


def _commands(probe: int, socklabs: Sequence[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(name, kind, command line): kind 'all' or 'port' says which ss figure it is compared with."""
    commands = [
        ("ss", "all", "ss -tunap"),
        ("ss", "port", f"ss -tanp 'sport = :{probe}'"),
    ]
    for name, socklab in socklabs:
        commands.append((name, "all", f"{socklab} ports"))
        commands.append((name, "port", f"{socklab} ports --port {probe}"))
    return commands


def _parse_socklab(value: str) -> tuple[str, str]:
    name, sep, command = value.partition("=")
    if not sep or not name or not command:
        raise argparse.ArgumentTypeError("expected NAME=COMMAND, e.g. after=.venv/bin/socklab")
    return name, command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=10500, help="sockets to open (≥ 10,000)")
    parser.add_argument("--runs", type=int, default=7, help="rounds; medians are reported")
    parser.add_argument(
        "--socklab",
        action="append",
        type=_parse_socklab,
        metavar="NAME=COMMAND",
        help="a socklab to measure (repeatable); default: this checkout's .venv/bin/socklab",
    )
    parser.add_argument("--hold", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hold-limit-s", type=float, default=1800.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hold:
        hold(args.sockets, args.hold_limit_s)
        return 0
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    socklabs = args.socklab or [("socklab", os.path.join(root, ".venv", "bin", "socklab"))]
    holder = subprocess.Popen(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--hold",
            "--sockets",
            str(args.sockets),
            "--hold-limit-s",
            str(args.runs * len(socklabs) * 4 * COMMAND_TIMEOUT_S),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        ready = holder.stdout.readline().split()
        if not ready or ready[0] != "ready":
            raise SystemExit("the socket holder did not start")
        probe, opened = int(ready[1]), int(ready[2])
        commands = _commands(probe, socklabs)
        print(f"{opened} sockets held by PID {holder.pid}; probe port {probe}", flush=True)
        print(f"{args.runs} interleaved rounds of: " + " | ".join(c for _n, _k, c in commands))
        times: dict[str, list[float]] = {command: [] for _n, _k, command in commands}
        lines: dict[str, int] = {}
        for round_number in range(args.runs):
            for _name, _kind, command in commands:
                elapsed, count = _time_command(command)
                times[command].append(elapsed)
                lines[command] = count
            print(f"round {round_number + 1}/{args.runs} done", file=sys.stderr, flush=True)
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(timeout=60)
    medians = {command: statistics.median(values) for command, values in times.items()}
    ss_median = {kind: medians[command] for name, kind, command in commands if name == "ss"}
    print()
    print("| command | output lines | median s | min s | max s | × ss |")
    print("|---|---|---|---|---|---|")
    for _name, kind, command in commands:
        values = times[command]
        ratio = medians[command] / ss_median[kind]
        shown = command.replace(root + os.sep, "")
        print(
            f"| `{shown}` | {lines[command]:,} "
            f"| {medians[command]:.3f} | {min(values):.3f} | {max(values):.3f} | {ratio:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
