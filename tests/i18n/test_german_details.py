"""German output holds no English worded by the core, and counts of 1 are singular (issue 16).

The sans-I/O core (`protocol/`) words what a peer did wrong once; the wire keeps that English
(an `E:` reply, a chat `bye` reason: docs/PROTOCOL.md), the terminal shows it in the user's
language. Each test runs the real `socklab --lang de` on loopback and reads what a user reads.
"""

from __future__ import annotations

import pickle
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from socklab.i18n import Fixed, lazy_gettext, lazy_ngettext, set_language, translate
from socklab.runtimes.connections import RESERVED_FILE_DESCRIPTORS
from tests.socklab_process import SocklabProcess, free_port, run_socklab

WAIT_S = 15.0
LIMIT = 65_536  # DEFAULT_MAX_MESSAGE_BYTES, in the German lines as "65.536"
# Words of English sentences that never occur in socklab's German lines outside quoted peer data.
ENGLISH_WORDS = re.compile(
    r"\b(the|is|of|to|at|and|or|with|for|has|no|not|only|does|bytes|exceeds|limit|applies|"
    r"received|nothing|connections?)\b"
)


def english_words(line: str) -> list[str]:
    """The English words of `line`, after its quoted parts ("...", '...') are taken out."""
    unquoted = re.sub(r"\"[^\"]*\"|'[^']*'", "", line)
    return ENGLISH_WORDS.findall(unquoted)


def test_english_words_are_found_outside_quotes_only() -> None:
    assert english_words("Nachricht: message of 70,000 bytes exceeds the limit") == [
        "of",
        "bytes",
        "exceeds",
        "the",
        "limit",
    ]
    assert english_words('seine Antwort "E:the reply is long" ist zu lang') == []


@pytest.fixture
def english_afterwards() -> Iterator[None]:
    yield
    set_language("en")


def test_a_deferred_detail_is_english_until_translated(english_afterwards: None) -> None:
    detail = lazy_ngettext(
        "message of {count} byte exceeds the {limit}-byte limit",
        "message of {count} bytes exceeds the {limit}-byte limit",
        1,
        limit=LIMIT,
    )
    set_language("de")
    assert detail == "message of 1 byte exceeds the 65,536-byte limit"
    assert detail.encode() == b"message of 1 byte exceeds the 65,536-byte limit"
    assert translate(detail) == "Nachricht mit 1 Byte überschreitet die Grenze von 65.536 Bytes"
    assert translate("peer's own words") == "peer's own words"
    # A worker process pickles the events that carry one.
    copy = pickle.loads(pickle.dumps(detail))
    assert copy == detail and translate(copy) == translate(detail)


def test_a_deferred_keeps_the_decimals_it_was_given(english_afterwards: None) -> None:
    detail = lazy_gettext("nothing received for {seconds} s", seconds=Fixed(3.0, 1))
    set_language("de")
    assert (detail, translate(detail)) == (
        "nothing received for 3.0 s",
        "seit 3,0 s nichts empfangen",
    )


@pytest.fixture
def overlong_line_server() -> Iterator[int]:
    """A server (this test's own socket) that greets with a line longer than the limit."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT_S)

    def serve() -> None:
        try:
            conn, _address = listener.accept()
        except OSError:
            return
        with conn:
            try:
                conn.sendall(b"x" * (LIMIT * 2) + b"\n")
                conn.settimeout(WAIT_S)
                conn.recv(4096)  # until the client hangs up
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    thread.join(WAIT_S)


def test_the_converter_client_says_an_overlong_reply_in_german(overlong_line_server: int) -> None:
    result = run_socklab(
        ["--lang", "de", "converter", "client", "--port", str(overlong_line_server), "U:hallo"],
        timeout_s=WAIT_S,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "socklab converter client: Die Gegenseite hat das Protokoll verletzt: Nachricht mit "
        "über 65.536 Bytes überschreitet die Grenze von 65.536 Bytes"
    ], result.stderr
    assert not english_words(lines[0])


def test_the_server_answers_in_english_on_the_wire_whatever_its_language(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    server = start_socklab(["--lang", "de", "converter", "server", "--port", "0"])
    host, port = server.wait_for_line(r"lauscht auf (127\.0\.0\.1):(\d+)").groups()
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as sock:
        sock.makefile("rb").readline()  # the greeting
        sock.sendall(b"U:" + b"x" * (LIMIT * 2) + b"\n")
        reply = sock.makefile("rb").readline()
    assert reply == b"E:message of over 65,536 bytes exceeds the 65,536-byte limit\n"


def _wait_for_stderr(process: SocklabProcess, pattern: str) -> re.Match[str]:
    """The first stderr line matching `pattern` (re.search), polled for at most WAIT_S."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + WAIT_S
    while True:
        for line in list(process.stderr_lines):
            if match := regex.search(line):
                return match
        if time.monotonic() > deadline or process.proc.poll() is not None:
            raise AssertionError(process._explain(f"no stderr line matching {pattern!r}"))
        time.sleep(0.02)


def _chat_frame(header: bytes, body: bytes = b"") -> bytes:
    payload = header + b"\n" + body
    return len(payload).to_bytes(4, "big") + payload


def test_chat_says_a_peers_violations_in_german_and_tells_the_peer_in_english(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    alice = start_socklab(["--lang", "de", "chat", "--name", "alice", "--keepalive", "0.5"])
    port = int(_wait_for_stderr(alice, r"lauscht auf 127\.0\.0\.1:(\d+)").group(1))
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: chat\r\n\r\n")
        received = b""
        while chunk := raw.recv(4096):  # alice's hello, a bye saying why, then EOF
            received += chunk
    assert b"message of 1,195,725,856 bytes exceeds the 65,536-byte limit" in received
    line = _wait_for_stderr(alice, r"^Verbindung zu 127\.0\.0\.1:\d+ getrennt: .*").group(0)
    assert line.endswith(
        ": Nachricht mit 1.195.725.856 Bytes überschreitet die Grenze von 65.536 Bytes"
    ), line
    assert not english_words(line)

    # A count of 1 is singular: a ping frame may not carry a body, not even 1 byte.
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as raw:
        raw.sendall(_chat_frame(b'{"type":"ping","from":"eve","id":1,"time":0}', b"x"))
        while raw.recv(4096):
            pass
    line = _wait_for_stderr(alice, r".*ping-Frame mit einem Rumpf.*").group(0)
    assert line.endswith(": ping-Frame mit einem Rumpf von 1 Byte"), line
    assert not english_words(line)


def test_the_descriptor_alert_leaves_room_for_1_client_in_german(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    open_files = RESERVED_FILE_DESCRIPTORS + 1  # room for exactly one client
    server = start_socklab(
        ["--lang", "de", "converter", "server", "--port", "0", "--model", "selectors", "-v"],
        prefix=["prlimit", f"--nofile={open_files}"],
    )
    host, port = server.wait_for_line(r"lauscht auf (127\.0\.0\.1):(\d+)").groups()
    with (
        socket.create_connection((host, int(port)), timeout=WAIT_S) as first,
        socket.create_connection((host, int(port)), timeout=WAIT_S) as second,
    ):
        assert first.recv(200).startswith(b"Hi I'm your")
        assert second.recv(200) == b"E:server busy, try again later\n"
    line = _wait_for_stderr(server, r".*Keine Dateideskriptoren mehr frei.*").group(0)
    assert f"Das Limit von {open_files} offenen Dateien lässt Platz für 1 Client gleichzeitig;" in (
        line
    ), line
    assert not english_words(line)


@pytest.mark.parametrize(
    "args",
    [
        ["bench", "--udp", "--idle", "5"],
        ["bench", "--udp", "--pipeline", "2"],
        ["bench", "--udp", "--size", "70000"],
        ["converter", "client", "--port", "{closed}", "U:x"],
        ["converter", "client", "--udp", "--port", "{closed}", "U:" + "x" * 70_000],
        ["converter", "server", "--port", "99999"],
        ["converter", "server", "--port", "0", "--udp", "--model", "threads"],
    ],
    ids=[
        "bench-udp-idle",
        "bench-udp-pipeline",
        "bench-udp-size",
        "refused",
        "udp-size",
        "port",
        "udp-threads",
    ],
)
def test_error_lines_in_german_hold_no_english_sentence(args: list[str]) -> None:
    closed = str(free_port())  # nothing listens there
    result = run_socklab(
        ["--lang", "de", *(arg.replace("{closed}", closed) for arg in args)], timeout_s=WAIT_S
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("socklab "), result.stderr
    assert not english_words(lines[0]), lines[0]


def test_chat_says_why_a_dial_failed_in_german(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    closed = free_port()  # nothing listens there
    bob = start_socklab(["--lang", "de", "chat", "--name", "bob", "--peer", f"127.0.0.1:{closed}"])
    line = _wait_for_stderr(bob, rf"^127\.0\.0\.1:{closed} ist nicht erreichbar: .*").group(0)
    assert line.startswith(f"127.0.0.1:{closed} ist nicht erreichbar: Verbindung abgelehnt."), line
    assert not english_words(line)
