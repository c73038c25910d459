"""--trace end to end: the calls in order, recv() boundaries marked, exact byte counts."""

from __future__ import annotations

import re
import socket
import time

from tests.socklab_process import SocklabProcess, free_port, run_socklab

WAIT_S = 10.0


def wait_for_stderr(process: SocklabProcess, pattern: str) -> None:
    regex = re.compile(pattern, re.M)
    deadline = time.monotonic() + WAIT_S
    while not regex.search("\n".join(process.stderr_lines)):
        assert time.monotonic() < deadline, process._explain(f"no stderr matching {pattern!r}")
        time.sleep(0.02)  # polling the reader thread's list, not waiting for readiness


def calls(lines: list[str]) -> list[str]:
    """The call names of [trace] headlines, in order: ['socket', 'bind', ...]."""
    return [
        match.group(1) for line in lines if (match := re.match(r"\[trace\] fd \d+  (\w+)\(", line))
    ]


def test_server_trace_shows_two_sends_merged_into_one_recv(start_socklab) -> None:  # type: ignore[no-untyped-def]
    server = start_socklab(["converter", "server", "--port", "0", "--trace"])
    host, port = server.wait_listening()
    with socket.create_connection((host, port), timeout=WAIT_S) as client:
        greeting = client.recv(1024)
        client.sendall(b"U:a\nL:B\n")  # one call: one segment on loopback
        replies = b""
        while replies.count(b"\n") < 2:
            replies += client.recv(1024)
    assert greeting.startswith(b"Hi I'm your upper/lowercase converter")
    assert replies == b"A\nb\n"
    wait_for_stderr(server, r"close\(\)")
    trace = server.stderr_lines
    assert calls(trace) == [
        "socket",
        "bind",
        "listen",
        "accept",
        "send",
        "recv",
        "send",
        "recv",
        "close",
    ]
    text = "\n".join(trace)
    assert re.search(r"accept\(\) -> new socket fd \d+ for 127\.0\.0\.1:\d+", text)
    assert "send() 68 bytes" in text
    merged = re.search(
        r"recv\(\) -> 8 bytes\n\s+┌── start of recv #1\n\s+│ \"U:a\\nL:B\\n\"\n"
        r"\s+│ 0000  55 3a 61 0a 4c 3a 42 0a\s+\|U:a\.L:B\.\|\n"
        r"\s+└── end of recv #1: 8 bytes in this one call",
        text,
    )
    assert merged, text
    assert "recv() -> 0 bytes: the peer closed its side (end of stream)" in text


def test_client_trace_lists_its_calls_in_order(start_socklab) -> None:  # type: ignore[no-untyped-def]
    server = start_socklab(["converter", "server", "--port", "0"])
    _host, port = server.wait_listening()
    result = run_socklab(["converter", "client", "--port", str(port), "--trace", "U:abc", "L:DEF"])
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["ABC", "def"]  # the trace never mixes with the output
    trace = result.stderr.splitlines()
    assert calls(trace) == [
        "socket",
        "settimeout",
        "connect",
        "recv",
        "sendall",
        "recv",
        "sendall",
        "recv",
        "close",
    ]
    text = result.stderr
    assert f"connect(127.0.0.1:{port})" in text
    assert "recv(65536) -> 68 bytes" in text
    assert "sendall() 6 bytes" in text
    assert "end of recv #3: 4 bytes in this one call" in text


def test_udp_keeps_each_datagram_in_its_own_receive(start_socklab) -> None:  # type: ignore[no-untyped-def]
    port = free_port(socket.SOCK_DGRAM)
    server = start_socklab(
        ["upper", "server", "--udp", "--host", "127.0.0.1", "--port", str(port), "--trace"]
    )
    server.wait_for_line("ready to receive")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(WAIT_S)
        for datagram in (b"one", b"two"):
            client.sendto(datagram, ("127.0.0.1", port))
        replies = [client.recv(100), client.recv(100)]
    assert replies == [b"ONE", b"TWO"]
    wait_for_stderr(server, r"end of recvmsg #2")
    text = "\n".join(server.stderr_lines)
    assert re.search(r"recvmsg\(2048\) -> 3 bytes from 127\.0\.0\.1:\d+", text)
    assert "end of recvmsg #1: 3 bytes in this one call" in text
    assert "end of recvmsg #2: 3 bytes in this one call" in text
    assert "timed out" not in text  # the server's polling slices are not shown


def test_explain_adds_a_sentence_per_call_in_german(start_socklab) -> None:  # type: ignore[no-untyped-def]
    server = start_socklab(["converter", "server", "--port", "0"])
    _host, port = server.wait_listening()
    result = run_socklab(
        ["--lang", "de", "converter", "client", "--port", str(port), "--explain", "U:x"]
    )
    assert result.returncode == 0
    text = result.stderr
    assert "connect() führt den Drei-Wege-Handshake von TCP" in text
    assert "Ende von recv #1: 68 Bytes in diesem einen Aufruf" in text
    headlines = len(calls(text.splitlines()))
    assert text.count("\n        = ") == headlines


def test_hello_trace_shows_accept_and_the_new_socket(start_socklab) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    server = start_socklab(
        ["hello", "server", "--host", "127.0.0.1", "--port", str(port), "--trace"]
    )
    server.wait_for_line("Listening on port")
    client = run_socklab(["hello", "client", "--port", str(port), "--trace"])
    assert client.returncode == 0
    assert server.wait() == 0
    assert calls(server.stderr_lines) == [
        "socket",
        "bind",
        "listen",
        "accept",
        "settimeout",  # the deadline for the client's message (--receive-timeout)
        "recv",
        "close",
        "close",
    ]
    assert calls(client.stderr.splitlines()) == [
        "socket",
        "settimeout",
        "connect",
        "sendall",
        "close",
    ]
    assert "Hi server!" in "\n".join(server.stderr_lines)


def test_a_deadline_shows_as_the_notice_and_close_not_as_the_peer_closing(start_socklab) -> None:  # type: ignore[no-untyped-def]
    # The threads model's watchdog wakes a thread blocked in recv() with shutdown(): the trace
    # shows neither that machinery nor the end of stream it causes, only what the server sends.
    server = start_socklab(
        [
            "converter",
            "server",
            "--model",
            "threads",
            "--port",
            "0",
            "--idle-timeout",
            "1",
            "--trace",
        ]
    )
    host, port = server.wait_listening()
    with socket.create_connection((host, port), timeout=WAIT_S) as client:
        received = b""
        while chunk := client.recv(1024):
            received += chunk
    assert received.endswith(b"\nE:idle timeout: closing an inactive connection\n")
    wait_for_stderr(server, r"close\(\)")
    trace = server.stderr_lines
    assert calls(trace) == ["socket", "bind", "listen", "accept", "send", "send", "close"]
    assert "peer closed" not in "\n".join(trace)


def explained(lines: list[str]) -> list[tuple[str, str]]:
    """(call name, its --explain sentence) for each [trace] headline, in order."""
    pairs: list[tuple[str, str]] = []
    for line in lines:
        if match := re.match(r"\[trace\] fd \d+  (\w+)\(", line):
            pairs.append((match.group(1), ""))
        elif (sentence := re.match(r"\s+= (.*)", line)) and pairs:
            pairs[-1] = (pairs[-1][0], sentence.group(1))
    return pairs


def test_explain_tells_sendall_from_send_and_a_listening_close_from_a_fin(start_socklab) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    server = start_socklab(
        ["hello", "server", "--host", "127.0.0.1", "--port", str(port), "--explain"]
    )
    server.wait_for_line("Listening on port")
    client = run_socklab(["hello", "client", "--port", str(port), "--explain"])
    assert client.returncode == 0, client.stderr
    assert server.wait() == 0
    sent = dict(explained(client.stderr.splitlines()))["sendall"]
    assert sent.startswith("sendall() calls send() again and again until every byte is handed")
    closes = [sentence for call, sentence in explained(server.stderr_lines) if call == "close"]
    # The accepted connection first (it has a peer: FIN), then the listening socket (no peer).
    assert len(closes) == 2, server.stderr_lines
    assert "TCP sends FIN" in closes[0]
    assert closes[1].startswith("close() on a listening socket stops accepting")
    assert "FIN is sent" not in closes[1].replace("no FIN is sent", "")
    client_close = dict(explained(client.stderr.splitlines()))["close"]
    assert "TCP sends FIN" in client_close


def test_explain_of_send_says_it_may_take_fewer_bytes(start_socklab) -> None:  # type: ignore[no-untyped-def]
    server = start_socklab(["converter", "server", "--port", "0", "--explain"])
    host, port = server.wait_listening()
    with socket.create_connection((host, port), timeout=WAIT_S) as client:
        client.recv(1024)
    wait_for_stderr(server, r"close\(\)")
    sentence = dict(explained(server.stderr_lines))["send"]
    assert sentence.startswith("send() hands bytes to the kernel and returns how many it took")
    assert "sendall" not in sentence


def test_explain_of_close_after_a_refused_connect_says_nothing_is_sent() -> None:
    result = run_socklab(["hello", "client", "--port", str(free_port()), "--explain"])
    assert result.returncode != 0
    closing = dict(explained(result.stderr.splitlines()))["close"]
    assert closing == "close() releases the socket; it has no connection, so nothing is sent."


def test_explanations_follow_the_call_and_the_socket_state() -> None:
    from socklab.cli.tracing import explanation
    from socklab.tracing import Call, TraceEvent

    def explain(call: Call, transport: str = "tcp", **facts: object) -> str:
        return explanation(TraceEvent(call, 3, transport, **facts))  # type: ignore[arg-type]

    assert explain(Call.SENDALL, "udp").startswith("sendall() on a connected UDP socket")
    assert explain(Call.SEND, "udp").startswith("send() on a connected UDP socket")
    assert explain(Call.SENDALL) != explain(Call.SEND)
    assert "no FIN is sent" in explain(Call.CLOSE, listening=True, connected=False)
    assert "TCP sends FIN" in explain(Call.CLOSE)
    assert "nothing is sent" in explain(Call.CLOSE, connected=False)
    assert "UDP tells the other side nothing" in explain(Call.CLOSE, "udp", connected=False)
