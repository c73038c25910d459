"""socklab's Wireshark dissector, checked with the tshark CI installs, on real conversations.

Each capture test starts tshark on loopback (filtered on its own free ports, so parallel tests
do not disturb it), waits for its readiness line, runs real socklab servers and clients (and a
few hand-made byte sequences: merged requests, an over-long line, a text length header), waits
until the capture holds every connection's end, and decodes the file with
`tshark -X lua_script:socklab.lua`, checking the fields of every message in order. One capture
per protocol shape: TCP converter, UDP converter and uppercase service, chat. The `wireshark`
command's own test installs the file and has tshark load it from the personal plugins folder.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from socklab.protocol.converter import GREETING
from socklab.tools.capture.packets import TcpFlags
from socklab.tools.capture.pcap import PcapWriter
from socklab.tools.wireshark import (
    PluginsFolderUnknown,
    dissector_path,
    personal_plugins_folder,
)
from tests.apps.test_chat import ChatProcess
from tests.socklab_process import free_port, run_socklab
from tests.tools.packet_builders import build_ethernet, build_ipv4_tcp, build_ipv4_udp

WAIT_S = 20.0
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
needs_capture = pytest.mark.skipif(
    shutil.which("tshark") is None or os.geteuid() != 0,
    reason="capturing on loopback needs tshark and root (CI has both)",
)
GREETING_TEXT = GREETING.decode()
Message = tuple[str, str, str]  # (command, text, error) of one decoded message


class TsharkCapture:
    """`tshark -i lo -w FILE -f FILTER`, ready once it says "Capturing on", stopped by PID.

    `-P -l` print one summary line per packet as it is written, so a test can wait until the
    file holds the packets it expects without reading the file again and again.
    """

    def __init__(self, path: Path, capture_filter: str) -> None:
        self.path = path
        self.proc = subprocess.Popen(
            ["tshark", "-l", "-P", "-i", "lo", "-f", capture_filter, "-w", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ready = threading.Event()
        self.notes: list[str] = []
        self.packets: list[str] = []
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.notes), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.packets), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not self.ready.wait(WAIT_S):
            self.stop()
            raise AssertionError(f"tshark did not start capturing: {self.notes}")

    def _pump(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip())
            if "Capturing on" in line:
                self.ready.set()

    def wait_for_packets(self, pattern: str, count: int) -> None:
        """Until `count` packet summaries match `pattern` (dumpcap writes asynchronously: a
        capture stopped at once could lose the last packets)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if sum(1 for line in list(self.packets) if regex.search(line)) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"fewer than {count} packets match {pattern!r}: {self.packets}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for reader in self._readers:
            reader.join(10)


@pytest.fixture
def capture(tmp_path: Path) -> Iterator[list[TsharkCapture]]:
    started: list[TsharkCapture] = []
    yield started
    for running in started:
        running.stop()


def tshark(*args: str) -> str:
    """tshark's standard output; a capture file still being written may end mid-packet, which
    tshark reports with status 2 after printing every whole packet."""
    result = subprocess.run(
        ["tshark", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode in (0, 2), result.stderr
    return result.stdout


def decode(path: Path, *options: str) -> list[dict[str, Any]]:
    """Every packet the dissector decoded, as tshark's JSON layers."""
    out = tshark(
        "-r", str(path), "-X", f"lua_script:{dissector_path()}", *options,
        "-Y", "socklab_converter || socklab_chat", "-T", "json", "--no-duplicate-keys",
        "-J", "tcp udp socklab_converter socklab_chat",
    )  # fmt: skip
    return [packet["_source"]["layers"] for packet in json.loads(out or "[]")]


def as_list(value: Any) -> list[Any]:
    """--no-duplicate-keys gives one object for one message, a list for several."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def experts(tree: Any) -> list[str]:
    """Every expert message in a decoded message's tree, in order."""
    found: list[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "_ws.expert.message":
                found.append(value)
            else:
                found.extend(experts(value))
    elif isinstance(tree, list):
        for item in tree:
            found.extend(experts(item))
    return found


def converter_message(item: dict[str, Any]) -> Message:
    return (
        item.get("socklab_converter.command", ""),
        item.get("socklab_converter.text", ""),
        item.get("socklab_converter.error", ""),
    )


def conversations(
    packets: list[dict[str, Any]], server_ports: set[int]
) -> dict[str, dict[str, list[Any]]]:
    """TCP stream -> {"client": [...], "server": [...]}: the decoded messages of each direction,
    in order, whatever segments carried them."""
    streams: dict[str, dict[str, list[Any]]] = {}
    for layers in packets:
        tcp = layers["tcp"]
        side = "client" if int(tcp["tcp.dstport"]) in server_ports else "server"
        stream = streams.setdefault(tcp["tcp.stream"], {"client": [], "server": []})
        stream[side].extend(as_list(layers.get("socklab_converter")))
    return streams


def simple(stream: dict[str, list[Any]]) -> dict[str, list[Message]]:
    return {side: [converter_message(item) for item in items] for side, items in stream.items()}


def read_lines(sock: socket.socket, count: int) -> bytes:
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def length_framed(*messages: bytes) -> bytes:
    return b"".join(struct.pack("!I", len(message)) + message for message in messages)


def read_length_framed(sock: socket.socket, count: int) -> list[bytes]:
    data, messages = b"", []
    while len(messages) < count:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {messages}"
        data += chunk
        while len(data) >= 4 and len(data) >= 4 + struct.unpack("!I", data[:4])[0]:
            size = struct.unpack("!I", data[:4])[0]
            messages.append(data[4 : 4 + size])
            data = data[4 + size :]
    return messages


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    return sock


GREETED: Message = ("greeting", GREETING_TEXT, "")


@needs_capture
def test_tcp_converter_line_length_split_merged_and_malformed(
    start_socklab: Any, capture: list[TsharkCapture], tmp_path: Path
) -> None:
    # Ports no registration knows: the heuristic finds the line and length servers from their
    # greetings; the slicing relay's port is given as the dissector's port preference.
    line_port, length_port, relay_port = free_port(), free_port(), free_port()
    ports = {line_port, length_port, relay_port}
    pcap = tmp_path / "tcp.pcapng"
    capture.append(TsharkCapture(pcap, " or ".join(f"tcp port {port}" for port in ports)))
    line = start_socklab(["converter", "server", "--port", str(line_port)])
    length = start_socklab(
        ["converter", "server", "--port", str(length_port), "--framing", "length"]
    )
    relay = start_socklab(
        [
            "impair", "--tcp", "--listen", str(relay_port),
            "--target", f"127.0.0.1:{line_port}", "--slice", "1",
        ]
    )  # fmt: skip
    for server in (line, length):
        server.wait_listening()
    relay.wait_for_line(rf":{relay_port}\b")

    # The real clients, at once (each is a Python start-up): line, length, and through the relay
    with ThreadPoolExecutor() as pool:
        results = list(
            pool.map(
                lambda args: run_socklab(["converter", "client", *args]),
                [
                    ("--port", str(line_port), "U:hello", "L:WORLD", "X:bad", "C:"),
                    ("--port", str(length_port), "--framing", "length", "U:hello", "L:WORLD"),
                    ("--port", str(relay_port), "U:sliced", "L:PIECES"),
                ],
            )
        )
    assert [result.stdout for result in results] == [
        "HELLO\nworld\nE:unknown command 'X:'; use U:<text>, L:<text> or C:\n",
        "HELLO\nworld\n",
        "SLICED\npieces\n",
    ], [result.stderr for result in results]
    with connect(line_port) as sock:  # requests merged into one segment, CRLF on one
        read_lines(sock, 1)
        sock.sendall(b"U:one\nL:TWO\r\nU:three\n")
        assert read_lines(sock, 3) == b"ONE\ntwo\nTHREE\n"
    with connect(length_port) as sock:
        read_length_framed(sock, 1)
        sock.sendall(length_framed(b"U:four", b"L:FIVE"))
        assert read_length_framed(sock, 2) == [b"FOUR", b"five"]
    with connect(line_port) as sock:  # a line over the 65,536-byte limit
        read_lines(sock, 1)
        sock.sendall(b"U:" + b"x" * 70_000)
        assert b"exceeds the 65,536-byte limit" in read_to_end(sock)
    with connect(length_port) as sock:  # HTTP to the length framing: a header that is text
        read_length_framed(sock, 1)
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert b"message of 1,195,725,856 bytes" in read_to_end(sock)
    with connect(line_port) as sock:  # the last line unterminated, its FIN in the same segment
        read_lines(sock, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        sock.sendall(b"U:tail")
        sock.shutdown(socket.SHUT_WR)  # the corked segment leaves with the FIN
        assert read_to_end(sock) == b"TAIL\n"
    # 9 connections (the relay makes two of one), each closed by two FINs
    capture[0].wait_for_packets(r"\[FIN", 18)

    relay_option = ("-o", f"socklab_converter.port:{relay_port}")
    packets = decode(pcap, *relay_option)
    by_stream = conversations(packets, ports)
    streams = [simple(stream) for stream in by_stream.values()]
    assert {
        "client": [("U", "hello", ""), ("L", "WORLD", ""), ("", "X:bad", ""), ("C", "", "")],
        "server": [
            GREETED,
            ("", "HELLO", ""),
            ("", "world", ""),
            ("E", "", "unknown command 'X:'; use U:<text>, L:<text> or C:"),
        ],
    } in streams
    assert {
        "client": [("U", "hello", ""), ("L", "WORLD", "")],
        "server": [GREETED, ("", "HELLO", ""), ("", "world", "")],
    } in streams
    sliced = {
        "client": [("U", "sliced", ""), ("L", "PIECES", "")],
        "server": [GREETED, ("", "SLICED", ""), ("", "pieces", "")],
    }
    assert streams.count(sliced) == 2  # client to relay, relay to server
    assert {
        "client": [("U", "one", ""), ("L", "TWO", ""), ("U", "three", "")],
        "server": [GREETED, ("", "ONE", ""), ("", "two", ""), ("", "THREE", "")],
    } in streams
    assert {
        "client": [("U", "four", ""), ("L", "FIVE", "")],
        "server": [GREETED, ("", "FOUR", ""), ("", "five", "")],
    } in streams
    assert {"client": [("U", "tail", "")], "server": [GREETED, ("", "TAIL", "")]} in streams

    framings = {
        item.get("socklab_converter.framing")
        for layers in packets
        for item in as_list(layers.get("socklab_converter"))
    }
    assert framings == {"line", "length"}
    merged = [
        [converter_message(item) for item in as_list(layers.get("socklab_converter"))]
        for layers in packets
    ]
    # merged segments: one frame, several messages
    assert [("U", "one", ""), ("L", "TWO", ""), ("U", "three", "")] in merged
    assert [("U", "four", ""), ("L", "FIVE", "")] in merged
    found = {
        text for stream in by_stream.values() for item in stream["client"] for text in experts(item)
    }
    assert "Message of over 65,536 bytes (no end seen) exceeds socklab's limit" in found
    assert 'Length header "GET " is text: is the peer using the line framing?' in found
    assert "Last line without a newline before the end of the stream (socklab serves it)" in found
    errors = {
        item.get("socklab_converter.error")
        for stream in by_stream.values()
        for item in stream["server"]
    }
    assert "message of over 65,536 bytes exceeds the 65,536-byte limit" in errors
    assert "message of 1,195,725,856 bytes exceeds the 65,536-byte limit" in errors

    # The filter of the issue: frames holding a U request, and their texts; the sliced request
    # was reassembled from one segment per byte ("U:sliced\n": 9 bytes).
    rows = tshark(
        "-r", str(pcap), "-X", f"lua_script:{dissector_path()}", *relay_option,
        "-Y", 'socklab_converter.command == "U"', "-T", "fields",
        "-e", "tcp.dstport", "-e", "tcp.segment.count", "-e", "socklab_converter.text",
        "-E", "aggregator=~",
    ).splitlines()  # fmt: skip
    texts = [row.split("\t")[2] for row in rows]
    assert texts.count("hello~WORLD") + texts.count("hello") + texts.count("WORLD") >= 2
    assert "one~TWO~three" in texts and "four~FIVE" in texts and "tail" in texts
    # the relay slices what it forwards: the server's leg carries the request byte by byte
    assert f"{line_port}\t9\tsliced" in rows


@needs_capture
def test_udp_converter_with_and_without_request_ids_and_the_uppercase_service(
    start_socklab: Any, capture: list[TsharkCapture], tmp_path: Path
) -> None:
    converter_port, upper_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    pcap = tmp_path / "udp.pcapng"
    capture.append(TsharkCapture(pcap, f"udp port {converter_port} or udp port {upper_port}"))
    converter = start_socklab(["converter", "server", "--udp", "--port", str(converter_port)])
    upper = start_socklab(["upper", "server", "--udp", "--port", str(upper_port)])
    converter.wait_listening()
    upper.wait_for_line(r"ready to receive")
    port = ("--udp", "--port", str(converter_port))
    plain = run_socklab(["converter", "client", *port, "U:plain", "L:TEXT"])
    assert plain.stdout.splitlines() == ["PLAIN", "text"], plain.stderr
    with_ids = run_socklab(["converter", "client", *port, "--retries", "3", "U:abc", "L:DEF"])
    assert with_ids.stdout.splitlines() == ["ABC", "def"], with_ids.stderr
    sentence = run_socklab(
        ["upper", "client", "--udp", "--port", str(upper_port)], input_text="shout\n"
    )
    assert "SHOUT" in sentence.stdout, sentence.stderr
    capture[0].wait_for_packets(r" UDP ", 10)

    packets = decode(pcap, "-o", f"socklab_converter.upper_port:{upper_port}")
    rows = []
    for layers in packets:
        item = layers["socklab_converter"]
        rows.append(
            (
                int(layers["udp"]["udp.dstport"]),
                item.get("socklab_converter.request_id", ""),
                *converter_message(item),
                item.get("socklab_converter.framing"),
            )
        )
    to_server, to_upper = converter_port, upper_port
    request_rows = [row for row in rows if row[0] == to_server]
    reply_rows = [row for row in rows if row[0] not in (to_server, to_upper)]
    assert [row[2:4] for row in request_rows] == [
        ("U", "plain"), ("L", "TEXT"), ("U", "abc"), ("L", "DEF"),
    ]  # fmt: skip
    assert [row[1] for row in request_rows[:2]] == ["", ""]
    ids = [row[1] for row in request_rows[2:]]
    assert all(re.fullmatch(r"\d+", request_id) for request_id in ids), ids
    converter_replies = [row for row in reply_rows if row[5] == "datagram"]
    assert [(row[1], row[3]) for row in converter_replies] == [
        ("", "PLAIN"), ("", "text"), (ids[0], "ABC"), (ids[1], "def"),
    ]  # fmt: skip
    assert ("", "", "shout", "", "upper") in [row[1:] for row in rows if row[0] == to_upper]
    assert ("", "", "SHOUT", "", "upper") in [row[1:] for row in reply_rows]
    assert [row[3] for row in rows if row[2] == "U"] == ["plain", "abc"]


@needs_capture
def test_chat_frames(start_socklab: Any, capture: list[TsharkCapture], tmp_path: Path) -> None:
    port = free_port()
    pcap = tmp_path / "chat.pcapng"
    capture.append(TsharkCapture(pcap, f"tcp port {port}"))
    alice = ChatProcess(
        start_socklab(["chat", "--name", "alice", "--listen", f"127.0.0.1:{port}", "--stay"])
    )
    bob = ChatProcess(start_socklab(["chat", "--name", "bob", "--peer", alice.peer_arg, "--stay"]))
    bob.wait_notice(r"alice joined the chat")
    bob.say("hi there", "/msg alice psst")
    alice.wait_message(r"^\[bob\] psst")
    bob.process.stop()
    capture[0].wait_for_packets(r"\[(FIN|RST)", 2)

    frames = []
    for layers in decode(pcap):
        for item in as_list(layers.get("socklab_chat")):
            frames.append(
                (
                    item.get("socklab_chat.type"),
                    item.get("socklab_chat.from"),
                    item.get("socklab_chat.id"),
                    item.get("socklab_chat.text"),
                    item.get("socklab_chat.to"),
                )
            )
    assert ("hello", "bob", "0", None, None) in frames
    assert ("hello", "alice", "0", None, None) in frames
    messages = [frame for frame in frames if frame[0] == "msg"]
    assert messages == [
        ("msg", "bob", "1", "hi there", None),
        ("msg", "bob", "2", "psst", "alice"),
    ]
    acks = [frame[2] for frame in frames if frame[0] == "ack"]
    assert acks and acks[-1] == "2"
    assert any(frame[0] == "peers" for frame in frames)


def test_wireshark_path_prints_the_packaged_dissector() -> None:
    result = run_socklab(["wireshark", "path"])
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == dissector_path() and path.name == "socklab.lua"
    assert "socklab_converter" in path.read_text(encoding="utf-8")


def test_wireshark_install_says_where_and_keeps_a_different_file(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    first = run_socklab(["wireshark", "install", "--dir", str(folder)])
    target = folder / "socklab.lua"
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == f"Installed the dissector as {target}."
    assert target.read_bytes() == dissector_path().read_bytes()
    again = run_socklab(["wireshark", "install", "--dir", str(folder)])
    assert again.stdout.strip() == f"{target} is already installed and up to date."
    target.write_text("-- edited by hand\n", encoding="utf-8")
    replaced = run_socklab(["wireshark", "install", "--dir", str(folder)])
    backup = folder / "socklab.lua.bak"
    assert replaced.stdout.splitlines()[0] == (
        f"Replaced a different {target}; the old file is kept as {backup}."
    )
    assert backup.read_text(encoding="utf-8") == "-- edited by hand\n"
    assert target.read_bytes() == dissector_path().read_bytes()
    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    refused = run_socklab(["wireshark", "install", "--dir", str(blocked / "plugins")])
    assert refused.returncode != 0
    assert re.fullmatch(
        rf"socklab wireshark install: Cannot install the dissector into {re.escape(str(blocked / 'plugins'))}: .+\. "
        r"Choose another folder with --dir, or copy .+socklab\.lua there yourself\.\n",
        refused.stderr,
    )


@needs_tshark
def test_wireshark_install_goes_where_wireshark_loads_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_socklab(["wireshark", "install"], env={"HOME": str(home)})
    target = home / ".local" / "lib" / "wireshark" / "plugins" / "socklab.lua"
    assert result.stdout.splitlines()[0] == f"Installed the dissector as {target}."
    protocols = subprocess.run(
        ["tshark", "-G", "protocols"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(home)},
        check=True,
    ).stdout
    names = {line.split("\t")[2] for line in protocols.splitlines() if line.count("\t") >= 2}
    assert {"socklab_converter", "socklab_chat"} <= names


def test_personal_plugins_folder_per_platform(tmp_path: Path) -> None:
    expected = tmp_path / ".local" / "lib" / "wireshark" / "plugins"
    assert personal_plugins_folder("linux", {}, tmp_path) == expected
    assert personal_plugins_folder("darwin", {}, tmp_path) == expected
    appdata = personal_plugins_folder("win32", {"APPDATA": str(tmp_path)}, None)
    assert appdata == tmp_path / "Wireshark" / "plugins"
    with pytest.raises(PluginsFolderUnknown):
        personal_plugins_folder("win32", {}, tmp_path)


HOSTILE_TCP = [
    b"\x00\x00\x00",  # half a length header
    b"\x00\xff\xff\xff" + b"x" * 10,  # a length over the limit
    b"\x00\x00\x00\x00",  # an empty length-framed message
    b"\n\n\r\n",
    b"U:\xff\xfe\xc3\n",  # not UTF-8
    b"U:" + b"\x1b[2J" * 20 + b"\n",  # terminal escapes
]
HOSTILE_CHAT = [
    b'{"type":"msg","from":"eve","id":99999999999999999999999,"time":1e999}\nbody',
    b'{"type":"\\ud800\\u0000","from":"\\"\\\\"}\n',
    b'{"type":' + b"[" * 500 + b"\n",
    b'{"type":"msg","from":"eve"',  # no newline
    b"[1]\n",
    b'{"from":"a","type":"msg","id":-1,"time":"x","to":{"a":[1,"}"]}}\n\xff',
    b"{" + b" " * 5000 + b"\n",  # a header over 4,096 bytes
]
HOSTILE_UDP = [
    b"#",
    b"#1 ",
    b"#123456789012345678901 U:x",  # 21 digits: no request id
    b"#99999999999999999999 U:x",  # 20 digits over 2^64-1
    b"E:",
    b"U:\xff\xfe",
]


@needs_tshark
def test_hostile_bytes_never_break_the_dissector(tmp_path: Path) -> None:
    """Every byte is a peer's choice: malformed, truncated, huge, nested, random — the dissector
    reports it as expert info and never fails with a Lua error."""
    rng = random.Random(20)
    noise = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))) for _ in range(40)]
    server, chat_port = ("127.0.0.1", 50000), 47000
    pcap = tmp_path / "hostile.pcap"
    with pcap.open("wb") as stream:
        writer = PcapWriter(stream, link_type=1)
        segments = [(server, payload) for payload in HOSTILE_TCP + noise]
        segments += [(("127.0.0.1", chat_port), length_framed(p)) for p in HOSTILE_CHAT]
        for number, (target, payload) in enumerate(segments):
            client = ("127.0.0.1", 30000 + number)
            for source, destination in ((client, target), (target, client)):
                packet = build_ipv4_tcp(
                    source, destination, flags=TcpFlags.PSH | TcpFlags.ACK, seq=1, payload=payload
                )
                writer.write(number, build_ethernet(packet))
        for number, payload in enumerate(HOSTILE_UDP + noise):
            packet = build_ipv4_udp(("127.0.0.1", 31000 + number), server, payload)
            writer.write(100 + number, build_ethernet(packet))
    out = tshark(
        "-r", str(pcap), "-X", f"lua_script:{dissector_path()}",
        "-o", f"socklab_chat.port:{chat_port}", "-V",
    )  # fmt: skip
    assert "Lua Error" not in out, out[out.find("Lua Error") - 2000 :][:4000]
    for expected in (
        "Message of 16,777,215 bytes exceeds socklab's 65,536-byte limit",
        "Empty line: the server answers E:empty request",
        "Request id over 2^64-1 (18446744073709551615)",
        "Frame header is not a JSON object",
        "Frame header is not JSON",
        "Frame header longer than 4,096 bytes",
        "Frame header without a known 'type' or without 'from'",
    ):
        assert expected in out, expected
    assert "\x1b" not in out  # escapes never reach a terminal through tshark's text
