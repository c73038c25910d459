"""Item 7, partial I/O: tiny socket buffers cut every request and reply into pieces.

The server's accepted sockets get SO_RCVBUF=1 (the hidden `--receive-buffer-bytes` option; Linux
raises it to its minimum, about 2 KiB) and the client's SO_SNDBUF=1 (raised to about 4 KiB), so
recv() and send() return partial results all the time. 1,000 requests of 1 KiB — a 1 MiB stream,
with multi-byte UTF-8 that the cuts fall into — must all be answered correctly and in order.

`raw` framing is a strict expected failure: the slides' naive server assumes one send() arrives
as one recv(), and tiny buffers break that at once. That failure is the lesson.

(The issue's second half, every pair through `socklab impair --slice 1`, needs the impair
command, which is built in another branch; it is not part of this file yet.)
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest

from socklab.protocol.framing import FrameTooLong, TruncatedFrame, make_framer
from socklab.protocol.framing.raw import RawReplyFramer
from tests.robustness.conftest import LaunchServer, model_params, stream_models
from tests.socklab_process import SocklabProcess, run_socklab

REQUESTS = 1_000
REQUEST_BYTES = 1024
RAW_REASON = (
    "raw framing trusts one send() to arrive as one recv(); tiny buffers split and merge "
    "requests, so replies go wrong: the slides' lesson, kept on purpose"
)


def texts() -> list[str]:
    """1,000 distinct texts, each making a 1 KiB request (`U:` + text + newline)."""
    result = []
    for number in range(REQUESTS):
        head = f"{number:04d} straße "  # ß is 2 bytes in UTF-8 and 'SS' in upper case
        filler = REQUEST_BYTES - 3 - len(head.encode())
        result.append(head + "x" * filler)
    return result


def frame_request(framing: str, text: str) -> bytes:
    message = b"U:" + text.encode()
    if framing == "length":
        return len(message).to_bytes(4, "big") + message
    return message + b"\n"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "framing",
    [
        "line",
        "length",
        pytest.param("raw", marks=pytest.mark.xfail(strict=True, reason=RAW_REASON)),
    ],
)
@pytest.mark.parametrize("model", model_params("partial_io", stream_models()))
def test_thousand_requests_through_one_byte_buffers(
    model: str, framing: str, launch_server: LaunchServer
) -> None:
    server = launch_server(model, framing, ["--receive-buffer-bytes", "1"])
    request_texts = texts()
    stream = b"".join(frame_request(framing, text) for text in request_texts)
    assert len(stream) >= REQUESTS * REQUEST_BYTES
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
    sock.settimeout(30)
    sock.connect(server.address)
    framer = RawReplyFramer(65536) if framing == "raw" else make_framer(framing, 65536)
    sender_failure: list[BaseException] = []

    def send_all() -> None:
        try:
            sock.sendall(stream)
        except OSError as exc:
            sender_failure.append(exc)

    sender = threading.Thread(target=send_all, daemon=True)
    replies: list[bytes] = []
    greeting_seen = False
    with sock:
        sender.start()
        while len(replies) < REQUESTS:
            data = sock.recv(65536)
            events = framer.receive_data(data) if data else framer.receive_eof()
            for event in events:
                assert not isinstance(event, FrameTooLong | TruncatedFrame), event
                if not greeting_seen and event.startswith(b"Hi I'm"):
                    greeting_seen = True
                    continue
                replies.append(event)
            if not data:
                break
        sender.join(30)
    assert sender_failure == []
    expected = [text.upper().encode() for text in request_texts]
    wrong = [
        index
        for index, (got, want) in enumerate(zip(replies, expected, strict=False))
        if got != want
    ]
    assert len(replies) == REQUESTS, f"{len(replies)} replies for {REQUESTS} requests"
    assert wrong == [], f"{len(wrong)} wrong replies, first at {wrong[:1]}"
    assert server.error_output() == []


# Requests sent back to back by the client, so a raw server sees them merged or split, never
# one send() per recv(); the replies must be what the same client gets from a direct connection.
SLICED_REQUESTS = ["U:sliced one byte at a time", "L:ÄÖÜ and MORE", "U:straße", "X:bad", "U:last"]


@pytest.mark.parametrize(
    "framing",
    [
        "line",
        "length",
        pytest.param("raw", marks=pytest.mark.xfail(strict=True, reason=RAW_REASON)),
    ],
)
@pytest.mark.parametrize("model", stream_models())
def test_every_pair_behaves_the_same_through_impair_slice_1(
    model: str,
    framing: str,
    launch_server: LaunchServer,
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    server = launch_server(model, framing)
    host, port = server.address
    relay = start_socklab(
        ["impair", "--tcp", "--listen", "127.0.0.1:0", "--target", f"{host}:{port}", "--slice", "1"]
    )
    relay_port = int(relay.wait_for_line(r"impair listening on 127\.0\.0\.1:(\d+)").group(1))
    command = [
        "converter",
        "client",
        "--framing",
        framing,
        "--timeout",
        "3",
        *SLICED_REQUESTS,
        "C:",
    ]
    direct = run_socklab([*command, "--port", str(port)])
    sliced = run_socklab([*command, "--port", str(relay_port)])
    # Exit status 1: the X: request got an E: reply (the client says so to scripts).
    assert direct.returncode == 1, direct.stderr
    assert direct.stdout.splitlines() == [
        "SLICED ONE BYTE AT A TIME",
        "äöü and more",
        "STRASSE",
        "E:unknown command 'X:'; use U:<text>, L:<text> or C:",
        "LAST",
    ]
    assert (sliced.returncode, sliced.stdout) == (1, direct.stdout), sliced.stderr
