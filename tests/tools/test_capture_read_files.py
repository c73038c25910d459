"""`socklab capture -r FILE` on files other programs wrote, and `-w FILE.pcapng` read by tshark.

One converter session on loopback is captured at once by tcpdump on `lo` (classic pcap,
Ethernet), tcpdump on `any` (Linux cooked v2, and v1 with `-y LINUX_SLL`), tshark (pcapng) and a
live `socklab capture -w FILE.pcapng`; as root (CI runs as root, and installs tcpdump and
tshark). Each file is then read with `socklab capture -r` in the list, ladder and follow views.
The files of Windows' RawCap (LINKTYPE_RAW) and macOS `lo0` (LINKTYPE_NULL) are synthesized
from tcpdump's packets by rewriting the link layer, and checked with tshark too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from socklab.tools.capture.packets import LINKTYPE_ETHERNET, LINKTYPE_NULL, LINKTYPE_RAW
from socklab.tools.capture.pcap import PcapFormatError, PcapWriter
from socklab.tools.capture.savefile import read_capture
from tests.socklab_process import SocklabProcess, free_port, run_socklab

pytestmark = [
    pytest.mark.serial,
    pytest.mark.skipif(
        shutil.which("tcpdump") is None or shutil.which("tshark") is None,
        reason="needs tcpdump and tshark (.ci/run installs them)",
    ),
]

WAIT_S = 30.0
PACKET_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{6} TCP ")


@dataclass
class Session:
    port: int
    client_port: int
    packets: int  # what socklab's live capture saw on lo
    files: dict[str, Path]


class _Tool:
    """A tcpdump or tshark process; ready once its stderr says it listens."""

    def __init__(self, args: list[str], ready: str, stdout: Path | None = None) -> None:
        with stdout.open("wb") if stdout else open(os.devnull, "wb") as out:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE
            )
        self.stderr: list[str] = []
        self._ready = threading.Event()
        self._pattern = re.compile(ready)
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode(errors="replace")
            self.stderr.append(line)
            if self._pattern.search(line):
                self._ready.set()
        self._ready.set()

    def wait_ready(self) -> None:
        assert self._ready.wait(WAIT_S) and self.proc.poll() is None, "".join(self.stderr)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # both flush and close their file on SIGINT
            try:
                self.proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT_S)
        self._reader.join(WAIT_S)


def _frames_in(path: Path) -> int:
    """Packets on the session's port in a file that may still be being written."""
    count = 0
    try:
        with path.open("rb") as stream:
            _format, frames = read_capture(stream)
            for _frame in frames:
                count += 1
    except (PcapFormatError, OSError):
        pass  # not there yet, or its last record is half written
    return count


def _wait_for_packets(path: Path, expected: int, tools: list[_Tool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while _frames_in(path) < expected:
        assert time.monotonic() < deadline, (
            f"{path.name}: {_frames_in(path)} of {expected} packets; "
            + "".join(line for tool in tools for line in tool.stderr)
        )
        time.sleep(0.05)  # polling a file another process writes: no event to wait for


def _rewrite_link_layer(source: Path, target: Path, link_type: int, prefix: bytes) -> None:
    """Ethernet frames of `source` as `link_type`: the 14-byte header replaced by `prefix`."""
    with source.open("rb") as stream, target.open("wb") as out:
        _format, frames = read_capture(stream)
        writer = PcapWriter(out, link_type)
        for frame in frames:
            assert frame.link_type == LINKTYPE_ETHERNET
            data = prefix + frame.data[14:]
            writer.write(frame.time, data, len(data))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    folder = tmp_path_factory.mktemp("captures")
    port = free_port()
    server = SocklabProcess(["converter", "server", "--port", str(port)])
    files = {
        "tcpdump-lo.pcap": ["-i", "lo"],
        "tcpdump-any.pcap": ["-i", "any"],  # LINUX_SLL2 since libpcap 1.10
        "tcpdump-any-sll1.pcap": ["-i", "any", "-y", "LINUX_SLL"],
    }
    tools: list[_Tool] = []
    live: SocklabProcess | None = None
    try:
        server.wait_listening()
        for name, interface in files.items():
            tools.append(
                _Tool(  # -U: each packet written when it comes
                    [
                        "tcpdump",
                        "-n",
                        "-U",
                        *interface,
                        "-w",
                        str(folder / name),
                        "-Z",
                        "root",
                        "tcp",
                        "port",
                        str(port),
                    ],
                    r"^tcpdump: listening on",
                )
            )
        # To a pipe (-w -) tshark writes each packet when it comes, to a file only at the end;
        # its "Capturing on" line comes before its packet socket is open, "Capture started" after.
        tools.append(
            _Tool(
                ["tshark", "-i", "lo", "-f", f"tcp port {port}", "-w", "-"],
                r"Capture started",
                stdout=folder / "tshark.pcapng",
            )
        )
        own = folder / "socklab.pcapng"
        live = SocklabProcess(["capture", "--port", str(port), "--tcp", "-w", str(own)])
        live.wait_for_line(r"^Capturing on lo ", timeout_s=WAIT_S)
        for tool in tools:
            tool.wait_ready()
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        with client, client.makefile("rb") as reader:
            client_port = client.getsockname()[1]
            reader.readline()
            client.sendall(b"U:a\nL:B\n")  # one send: one segment on loopback
            assert reader.readline() == b"A\n" and reader.readline() == b"b\n"
            client.sendall(b"C:\n")
            assert reader.read() == b""
        live.wait_for_line(r"\[FIN\+ACK\]")
        live.wait_for_line(r"\[FIN\+ACK\]")
        live.wait_for_line(r"\[ACK\]")  # the last ACK of the four-way close
        assert live.stop() == 0
        packets = sum(1 for line in live.stdout_lines if PACKET_LINE.match(line))
        paths = {name: folder / name for name in [*files, "tshark.pcapng"]}
        for path in paths.values():
            _wait_for_packets(path, packets, tools)
        for tool in tools:
            tool.stop()
        paths["socklab.pcapng"] = own
        _rewrite_link_layer(paths["tcpdump-lo.pcap"], folder / "rawcap.pcap", LINKTYPE_RAW, b"")
        _rewrite_link_layer(
            paths["tcpdump-lo.pcap"], folder / "macos-lo0.pcap", LINKTYPE_NULL, b"\x02\0\0\0"
        )
        paths["rawcap.pcap"] = folder / "rawcap.pcap"
        paths["macos-lo0.pcap"] = folder / "macos-lo0.pcap"
        yield Session(port, client_port, packets, paths)
    finally:
        for tool in tools:
            tool.stop()
        if live is not None:
            live.stop()
        server.stop()


# Every file in the list view and the ladder; the tools' own files in the stream view too.
VIEWS = {
    "tcpdump-lo.pcap": ("list", "ladder", "follow"),
    "tcpdump-any.pcap": ("list", "ladder", "follow"),
    "tcpdump-any-sll1.pcap": ("list", "ladder", "follow"),
    "tshark.pcapng": ("list", "ladder", "follow"),
    "socklab.pcapng": ("list", "ladder"),
    "rawcap.pcap": ("list", "ladder"),
    "macos-lo0.pcap": ("list", "ladder"),
}


def _read(session: Session, name: str, *extra: str) -> list[str]:
    result = run_socklab(["capture", "-r", str(session.files[name]), *extra])
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("name", list(VIEWS))
def test_every_writer_s_file_gives_the_list_ladder_and_stream(session: Session, name: str) -> None:
    port, client = session.port, session.client_port
    views = VIEWS[name]
    lines = _read(session, name, "--port", str(port))
    assert re.match(rf"Reading .*{re.escape(name)} \(pcap(ng)?; tcp udp port {port}\)\.", lines[0])
    packets = [line for line in lines if PACKET_LINE.match(line)]
    assert len(packets) == session.packets
    flags = [re.search(r"\[([A-Z+]+)\]", line)[1] for line in packets]  # type: ignore[index]
    assert flags[:3] == ["SYN", "SYN+ACK", "ACK"] and flags[-1] == "ACK"
    assert flags.count("FIN+ACK") == 2
    assert re.search(
        rf"TCP 127\.0\.0\.1:{client} → 127\.0\.0\.1:{port} \[SYN\] seq=\d+ ack=0", packets[0]
    )
    assert any('len=8 "U:a\\nL:B\\n"' in line for line in packets)
    assert lines[-1] == (
        f"{session.packets} packets read from {session.files[name]}, "
        f"{session.packets} TCP/UDP packets matched."
    )

    if "ladder" not in views:
        return
    ladder = "\n".join(_read(session, name, "--ladder"))
    assert f"TCP connection 1: client 127.0.0.1:{client} ⇄ server 127.0.0.1:{port}" in ladder
    assert re.search(r"\|-- SYN seq=0 -+>\|", ladder)
    assert re.search(r"\|<-- SYN\+ACK seq=0 ack=1 -+\|", ladder)
    assert re.search(
        r'\|-- PSH\+ACK seq=1 ack=\d+ len=8 -+>\|  2 messages in one segment: request "U:a"; request "L:B"',
        ladder,
    )
    assert "TCP connection 2" not in ladder  # each packet once: no duplicate copies

    if "follow" not in views:
        return
    follow = "\n".join(_read(session, name, "--follow"))
    assert re.search(
        rf"#1 > 127\.0\.0\.1:{client} → 127\.0\.0\.1:{port} \(8 bytes\)\n    U:a\\n\n    L:B\\n",
        follow,
    )
    assert re.search(r"#1 < .*\(4 bytes\)\n    A\\n\n    b\\n", follow)
    assert follow.count("closed its direction (FIN)") == 2


def _tshark_fields(path: Path, *fields: str) -> list[list[str]]:
    args = ["tshark", "-r", str(path), "-T", "fields"]
    for name in fields:
        args += ["-e", name]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in result.stdout.splitlines()]


def test_socklab_pcapng_carries_the_receiving_process_as_frame_comment(session: Session) -> None:
    rows = _tshark_fields(session.files["socklab.pcapng"], "tcp.dstport", "frame.comment")
    assert len(rows) == session.packets
    to_server = [comment for dstport, comment in rows if int(dstport) == session.port]
    # Every packet to the server is delivered to the server's listening or connected socket.
    assert to_server and all(re.fullmatch(r"pid \d+ \(socklab\)", comment) for comment in to_server)
    # The comments come back with -r, beside the packet they belong to.
    lines = _read(session, "socklab.pcapng", "--count", "1")
    assert re.search(r'\[SYN\] .* · comment "pid \d+ \(socklab\)"$', lines[1])
    assert lines[-1].startswith("1 packet read from ")


def _capinfos(*paths: Path) -> list[tuple[str, str, int]]:
    """(file type, encapsulation, packets) per file, as Wireshark's library reads them."""
    result = subprocess.run(
        ["capinfos", "-t", "-E", "-c", "-M", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    values = re.findall(
        r"File type:\s+(\S+)\s+File encapsulation:\s+(\S+)\s+Number of packets:\s+(\d+)",
        result.stdout,
    )
    return [(kind, encapsulation, int(count)) for kind, encapsulation, count in values]


def test_synthesized_files_read_by_wireshark_too_and_w_picks_the_format_by_name(
    session: Session, tmp_path: Path
) -> None:
    # -r with -w: the matching packets, rewritten; .pcap is classic pcap, .pcapng is pcapng.
    classic, modern = tmp_path / "out.pcap", tmp_path / "out.pcapng"
    for target in (classic, modern):
        lines = _read(session, "tshark.pcapng", "--count", "3", "-w", str(target))
        assert lines[-1].endswith(f"3 written to {target}.")
    assert _capinfos(
        session.files["rawcap.pcap"], session.files["macos-lo0.pcap"], classic, modern
    ) == [
        ("pcap", "rawip", session.packets),
        ("pcap", "null", session.packets),
        ("pcap", "ether", 3),
        ("pcapng", "ether", 3),
    ]


def test_a_pipe_is_shown_packet_by_packet_as_it_comes(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    """`tcpdump -w - | socklab capture -r -`, as `RawCap.exe 127.0.0.1 - | …` on Windows: the
    ladder grows while the writer still runs, not only at the end of the file."""
    port = free_port()
    server = start_socklab(["converter", "server", "--port", str(port)])
    server.wait_listening()
    tcpdump = subprocess.Popen(
        ["tcpdump", "-n", "-U", "-i", "lo", "-w", "-", "tcp", "port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert tcpdump.stderr is not None and tcpdump.stdout is not None
        assert tcpdump.stderr.readline().startswith(b"tcpdump: listening on lo")
        viewer = start_socklab(["capture", "-r", "-", "--ladder"])
        assert viewer.proc.stdin is not None
        source, sink = tcpdump.stdout, viewer.proc.stdin

        def pump() -> None:
            with sink:
                while chunk := os.read(source.fileno(), 65536):
                    sink.write(chunk)
                    sink.flush()

        pumping = threading.Thread(target=pump, daemon=True)
        pumping.start()
        result = run_socklab(["converter", "client", "--port", str(port), "U:a", "C:"])
        assert result.returncode == 0, result.stderr
        viewer.wait_for_line(r"request \"U:a\"", timeout_s=WAIT_S)
        viewer.wait_for_line(r"\|<-- ACK ", timeout_s=WAIT_S)  # the last ACK of the close
        assert viewer.proc.poll() is None  # still reading: the writer has not ended
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(WAIT_S)
        pumping.join(WAIT_S)
        assert viewer.wait(WAIT_S) == 0
        assert re.match(
            r"\d+ packets read from -, \d+ TCP/UDP packets matched\.", viewer.stdout_lines[-1]
        )
    finally:
        if tcpdump.poll() is None:
            tcpdump.kill()
            tcpdump.wait(WAIT_S)
