"""Item 6, garbage: random byte streams in random chunks, with resets and partial UTF-8.

Hypothesis builds each stream from raw bytes, well-formed and half-formed requests (UTF-8 cut in
the middle of a character, CR without LF, length headers announcing anything), and sends it in
random chunks; then it ends the stream one of three ways: shutdown of the writing side (the
server must answer what it can and close), a reset (SO_LINGER 0), or a plain close. The server
runs once per test, not per example: after every stream a probe
must still be answered (a fresh connection each time), and at the end the server must not have logged anything to stderr.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socklab.clients.converter_client import StreamConverterClient
from tests.robustness.conftest import model_params, start_observed_server, stream_models
from tests.robustness.observed_server import ObservedServer
from tests.socklab_process import SocklabProcess

CLOSE_TIMEOUT_S = 5.0


def partial_utf8_requests() -> st.SearchStrategy[bytes]:
    """`U:`/`L:` + text, cut at any byte: the cut may fall inside a multi-byte character."""
    return st.builds(
        lambda command, text, cut, ending: (command + text.encode())[:cut] + ending,
        st.sampled_from([b"U:", b"L:", b"C:", b"X:", b""]),
        st.text(alphabet=st.sampled_from("aZ ßΐŉäö€😀\r"), max_size=40),
        st.integers(min_value=0, max_value=200),
        st.sampled_from([b"\n", b"\r\n", b"\r", b""]),
    )


def length_headers() -> st.SearchStrategy[bytes]:
    return st.integers(min_value=0, max_value=2**32 - 1).map(lambda n: struct.pack(">I", n))


pieces = st.one_of(st.binary(max_size=300), partial_utf8_requests(), length_headers())
streams = st.lists(pieces, max_size=12).map(b"".join)
chunk_sizes = st.lists(st.integers(min_value=1, max_value=512), min_size=1, max_size=12)
endings = st.sampled_from(["shutdown", "reset", "close"])


def send_in_chunks(sock: socket.socket, data: bytes, sizes: list[int]) -> None:
    offset = index = 0
    while offset < len(data):
        size = sizes[index % len(sizes)]
        try:
            sock.sendall(data[offset : offset + size])
        except (BrokenPipeError, ConnectionResetError):
            return  # the server already closed: an ending in itself
        offset += size
        index += 1


def wait_for_close(sock: socket.socket) -> bool:
    """True when the server closed the connection (EOF or reset) within the bound."""
    sock.settimeout(CLOSE_TIMEOUT_S)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


@pytest.fixture(scope="module", params=model_params("garbage", stream_models()))
def garbage_model(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module", params=["line", "length", "raw"])
def garbage_server(garbage_model: str, request: pytest.FixtureRequest) -> Iterator[ObservedServer]:
    started: list[SocklabProcess] = []

    def start(args: list[str]) -> SocklabProcess:
        process = SocklabProcess(args)
        started.append(process)
        return process

    try:
        yield start_observed_server(start, garbage_model, str(request.param))
    finally:
        for process in started:
            process.stop()


def test_garbage_streams_end_in_a_close_and_the_server_keeps_serving(
    garbage_server: ObservedServer, scale: str
) -> None:
    server = garbage_server
    examples = {"ci": 300, "full": 1_000}[scale]
    probe_number = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=streams, sizes=chunk_sizes, ending=endings)
    def one_stream(data: bytes, sizes: list[int], ending: str) -> None:
        nonlocal probe_number
        with socket.create_connection(server.address, timeout=CLOSE_TIMEOUT_S) as sock:
            send_in_chunks(sock, data, sizes)
            if ending == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif ending == "shutdown":
                with contextlib.suppress(OSError):  # already reset by the server
                    sock.shutdown(socket.SHUT_WR)
                assert wait_for_close(sock), "the server kept a finished stream open"
        probe_number += 1
        with StreamConverterClient(*server.address, framing=server.framing, timeout_s=5) as probe:
            reply = probe.request(f"U:probe {probe_number}".encode())
        assert reply == f"PROBE {probe_number}".encode()

    one_stream()
    assert server.is_running()
    assert server.error_output() == []


def test_garbage_strategies_cover_their_cases() -> None:
    """The strategies above can produce what the docstring promises (a test of the test)."""
    found: dict[str, bool] = {"cut utf-8": False, "cr only": False}
    checks: dict[str, Callable[[bytes], bool]] = {
        "cut utf-8": lambda data: _is_cut_utf8(data),
        "cr only": lambda data: data.endswith(b"\r"),
    }

    @settings(max_examples=300, database=None)
    @given(partial_utf8_requests())
    def sample(data: bytes) -> None:
        for name, check in checks.items():
            found[name] = found[name] or check(data)

    sample()
    assert all(found.values()), found


def _is_cut_utf8(data: bytes) -> bool:
    try:
        data.rstrip(b"\r\n").decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data"
    return False
