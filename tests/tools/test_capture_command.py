"""`socklab capture` end to end, as root (CI runs as root): a converter session on loopback.

Each test starts a converter server on a free port and a capture filtered on that port, waits
for the capture's readiness line, runs a session, waits for the teardown lines and checks the
printed lines, the ladder, the followed stream and the pcap file read back with tshark.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from socklab.cli.status import ExitStatus
from socklab.tools.capture.packets import TcpFlags, describe_flags
from tests.socklab_process import SocklabProcess, free_port, run_socklab

# Counts packets on loopback: alone, after the parallel part of `make test`.
pytestmark = pytest.mark.serial

READY = r"^Capturing on lo "
CaptureStarter = Callable[..., SocklabProcess]


def start_server(start_socklab: CaptureStarter, *extra: str) -> tuple[SocklabProcess, int]:
    port = free_port()
    server = start_socklab(["converter", "server", "--port", str(port), *extra])
    server.wait_listening()
    return server, port


def start_capture(start_socklab: CaptureStarter, port: int, *extra: str) -> SocklabProcess:
    capture = start_socklab(["capture", "--port", str(port), *extra])
    capture.wait_for_line(READY, timeout_s=30)
    return capture


def wait_for_teardown(capture: SocklabProcess) -> None:
    capture.wait_for_line(r"\[FIN\+ACK\]")
    capture.wait_for_line(r"\[FIN\+ACK\]")
    capture.wait_for_line(r"\[ACK\]")  # the last ACK of the four-way close


def packet_lines(capture: SocklabProcess) -> list[str]:
    return [line for line in capture.stdout_lines if re.match(r"\d\d:\d\d:\d\d\.\d{6} ", line)]


def test_session_handshake_payload_teardown_and_pcap(
    start_socklab: CaptureStarter, tmp_path: Path
) -> None:
    server, port = start_server(start_socklab)
    pcap = tmp_path / "session.pcap"
    capture = start_capture(start_socklab, port, "--tcp", "-w", str(pcap))
    client = run_socklab(["converter", "client", "--port", str(port), "U:hello", "C:"])
    assert client.returncode == 0, client.stderr
    wait_for_teardown(capture)
    assert capture.stop() == 0
    lines = packet_lines(capture)
    flags = [re.search(r"\[([A-Z+]+)\]", line)[1] for line in lines]  # type: ignore[index]
    assert flags[:3] == ["SYN", "SYN+ACK", "ACK"]
    syn = lines[0]
    assert re.search(rf"TCP 127\.0\.0\.1:\d+ → 127\.0\.0\.1:{port} \[SYN\] seq=0 ack=0 len=0", syn)
    # The SYN is delivered to the listening socket of the server process.
    assert f"delivered to PID {server.pid} (socklab)" in syn
    request = next(line for line in lines if '"U:hello\\n"' in line)
    assert re.search(rf"→ 127\.0\.0\.1:{port} \[PSH\+ACK\] seq=\d+ ack=\d+ len=8 ", request)
    assert any('"HELLO\\n"' in line for line in lines)
    assert flags.count("FIN+ACK") == 2 and flags[-1] == "ACK"
    summary = capture.stdout_lines[-1]
    assert re.match(
        rf"{len(lines)} packets captured; kernel: \d+ received, 0 dropped; "
        rf"{len(lines)} written to ",
        summary,
    )

    tshark = subprocess.run(
        [
            "tshark",
            "-r",
            str(pcap),
            "-T",
            "fields",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "tcp.flags",
            "-e",
            "tcp.len",
            "-e",
            "tcp.payload",
            "-e",
            "tcp.seq",
            "-e",
            "tcp.ack",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line.split("\t") for line in tshark.stdout.splitlines()]
    assert len(rows) == len(lines)
    assert [describe_flags(TcpFlags(int(row[2], 16))) for row in rows] == flags
    payloads = [bytes.fromhex(row[4].replace(":", "")) for row in rows]
    assert b"U:hello\n" in payloads and b"HELLO\n" in payloads
    assert [int(row[3]) for row in rows] == [
        int(re.search(r" len=(\d+)", line)[1])
        for line in lines  # type: ignore[index]
    ]
    # Relative sequence and acknowledgement numbers, as Wireshark shows them (ACK only where
    # the flag is set: a SYN's acknowledgement field means nothing).
    shown = [re.search(r" seq=(\d+) ack=(\d+) ", line).groups() for line in lines]  # type: ignore[union-attr]
    assert [seq for seq, _ack in shown] == [row[5] for row in rows]
    with_ack = [i for i, row in enumerate(rows) if int(row[2], 16) & TcpFlags.ACK]
    assert [shown[i][1] for i in with_ack] == [rows[i][6] for i in with_ack]
    assert shown[1] == ("0", "1")  # the SYN+ACK


def test_ladder_shows_two_messages_in_one_segment_and_follow_reassembles(
    start_socklab: CaptureStarter,
) -> None:
    _server, port = start_server(start_socklab)
    ladder = start_capture(start_socklab, port, "--tcp", "--ladder")
    follow = start_capture(start_socklab, port, "--follow")
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    # The file object shares the socket: both must be closed for the FIN to leave.
    with client, client.makefile("rb") as reader:
        client_port = client.getsockname()[1]
        reader.readline()
        client.sendall(b"U:a\nL:B\n")  # one send: one segment on loopback
        assert reader.readline() == b"A\n" and reader.readline() == b"b\n"
        client.sendall("L:STRAẞE\n".encode())  # UTF-8 in both directions
        assert reader.readline() == "straße\n".encode()
        client.sendall(b"C:\n")
        assert reader.read() == b""
    ladder.wait_for_line(r"2 messages in one segment: ")
    ladder.wait_for_line(r"FIN\+ACK")
    ladder.wait_for_line(r"FIN\+ACK")
    follow.wait_for_line(r"closed its direction")
    follow.wait_for_line(r"closed its direction")
    ladder.stop()
    follow.stop()
    out = "\n".join(ladder.stdout_lines)
    assert f"TCP connection 1: client 127.0.0.1:{client_port} ⇄ server 127.0.0.1:{port}" in out
    assert re.search(r"\|-- SYN seq=0 -+>\|", out)
    assert re.search(r"\|<-- SYN\+ACK seq=0 ack=1 -+\|", out)
    assert re.search(r"\|-- ACK seq=1 ack=1 -+>\|", out)
    request_row = next(row for row in ladder.stdout_lines if "2 messages in one segment" in row)
    assert re.search(r"\|-- PSH\+ACK seq=1 ack=\d+ len=8 -+>\|", request_row)
    assert 'request "U:a"; request "L:B"' in request_row
    assert "greeting \"Hi I'm your" in out

    text = "\n".join(follow.stdout_lines)
    assert f"TCP stream 1: 127.0.0.1:{client_port} ⇄ 127.0.0.1:{port}" in text
    assert re.search(
        rf"#1 > 127\.0\.0\.1:{client_port} → 127\.0\.0\.1:{port} \(8 bytes\)\n"
        r"    U:a\\n\n    L:B\\n",
        text,
    )
    assert re.search(r"#1 < .*\(4 bytes\)\n    A\\n\n    b\\n", text)
    assert "    L:STRAẞE\\n" in follow.stdout_lines
    assert "    straße\\n" in follow.stdout_lines


def test_udp_count_stops_the_capture(start_socklab: CaptureStarter) -> None:
    _server, port = start_server(start_socklab, "--udp")
    capture = start_capture(start_socklab, port, "--udp", "--count", "2", "--hex")
    client = run_socklab(["converter", "client", "--udp", "--port", str(port), "U:x"])
    assert client.returncode == 0 and client.stdout.strip() == "X", client.stderr
    assert capture.wait(30) == 0
    lines = packet_lines(capture)
    assert len(lines) == 2
    assert re.search(rf"UDP 127\.0\.0\.1:\d+ → 127\.0\.0\.1:{port} len=3 \"U:x\"", lines[0])
    assert re.search(rf"UDP 127\.0\.0\.1:{port} → 127\.0\.0\.1:\d+ len=1 \"X\"", lines[1])
    assert any(re.match(r" {4}0000  55 3a 78 +U:x$", line) for line in capture.stdout_lines)
    assert capture.stdout_lines[-1].startswith("2 packets captured; kernel:")


def quiet_port() -> int:
    """A free port below the ephemeral range: no other test's client or server gets it, so no
    packet of the tests running beside this one (pytest-xdist) carries it."""
    low, _high = (
        int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    )
    for port in random.sample(range(20000, min(low, 32768)), 50):
        with (
            contextlib.suppress(OSError),
            socket.socket() as tcp,
            socket.socket(type=socket.SOCK_DGRAM) as udp,
        ):
            tcp.bind(("127.0.0.1", port))
            udp.bind(("127.0.0.1", port))
            return port
    raise RuntimeError("no free port below the ephemeral range")


def test_duration_ends_a_quiet_capture() -> None:
    result = run_socklab(["capture", "--port", str(quiet_port()), "--duration", "0.5"])
    assert result.returncode == 0, result.stderr
    assert re.search(READY, result.stdout, re.M)
    assert result.stdout.splitlines()[-1].startswith("0 packets captured; kernel: 0 received")


def test_without_cap_net_raw_one_line_says_how() -> None:
    result = subprocess.run(
        ["setpriv", "--bounding-set=-net_raw", "--", *_socklab(), "capture", "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == ExitStatus.PERMISSION
    [line] = result.stderr.splitlines()
    assert line.startswith(
        "socklab capture: capturing packets needs root or the CAP_NET_RAW capability. "
        "Run it with sudo: sudo "
    )
    # The command again, by the path sudo needs, with the user's own arguments.
    assert "socklab capture --duration 1. " in line
    # No advice to give the system's Python raw sockets: only a dedicated copy.
    assert "setcap" not in line and "dedicated copy of Python" in line


def test_bad_options_are_one_line() -> None:
    result = run_socklab(["capture", "--iface", "no-such-if0", "--duration", "1"])
    assert result.returncode == ExitStatus.USAGE
    assert result.stderr.startswith(
        "socklab capture: there is no network interface 'no-such-if0' (interfaces: "
    )
    result = run_socklab(["capture", "--follow", "--udp"])
    assert result.returncode == ExitStatus.USAGE and "--follow" in result.stderr
    result = run_socklab(["capture", "--ladder", "--follow"])
    assert result.returncode == ExitStatus.USAGE and "not allowed with" in result.stderr
    result = run_socklab(["capture", "-w", "/nonexistent-dir/x.pcap", "--duration", "1"])
    assert result.returncode == ExitStatus.USAGE
    assert "cannot write the capture file /nonexistent-dir/x.pcap" in result.stderr


def _socklab() -> list[str]:
    from tests.socklab_process import socklab_command

    return socklab_command()
