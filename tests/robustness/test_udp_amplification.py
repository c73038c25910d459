"""Item 10, UDP: no reply is ever longer than its request, and no datagram is processed in part.

A UDP server that answers a spoofed datagram with a longer reply is an amplifier for attacks on
the spoofed address (US-CERT alert TA14-017A; the memcached attacks of 2018). The converter
must keep reply bytes / request bytes <= 1.0 for every datagram: over a sweep of sizes from 0
to 65,507 (the IPv4 maximum, RFC 768/791) and a fuzzed corpus (hypothesis) that includes
`U:` + `ΐ` x n, whose upper case is three times longer in UTF-8. An empty datagram gets no reply at all.

Every datagram is followed by a sync datagram `U:sync-N` from the same socket; everything the
server sends before `SYNC-N` belongs to the datagram under test (loopback keeps order for one
socket pair), so "no reply" is observed without waiting for a timeout.

Truncation: over IPv6 a UDP payload may be 65,527 bytes, 20 more than the IPv4 maximum. A
runtime that receives into a 65,507-byte buffer would get those datagrams cut (MSG_TRUNC) and
must not answer the cut text as if it were the request. The server on ::1 is sent such
datagrams; a reply must be the conversion of the whole datagram, an `E:` line, or nothing.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socklab.protocol.limits import MAX_UDP_PAYLOAD_BYTES
from tests.robustness.conftest import datagram_models, model_params
from tests.robustness.observed_server import ObservedServer
from tests.socklab_process import SocklabProcess

MAX_IPV6_UDP_PAYLOAD_BYTES = 65_535 - 8  # RFC 8200 payload length minus the UDP header


class SyncedDatagramClient:
    """Sends one datagram and collects every reply to it, fenced by a sync datagram."""

    def __init__(self, address: tuple[str, int], family: int = socket.AF_INET) -> None:
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.settimeout(5)
        self.sock.connect(address)
        self.sync_number = 0
        self.request_bytes = 0
        self.reply_bytes = 0

    def replies_to(self, datagram: bytes) -> list[bytes]:
        self.sync_number += 1
        sync_reply = f"SYNC-{self.sync_number}".encode()
        self.sock.send(datagram)
        self.sock.send(f"U:sync-{self.sync_number}".encode())
        replies = []
        while (reply := self.sock.recv(MAX_IPV6_UDP_PAYLOAD_BYTES + 1)) != sync_reply:
            replies.append(reply)
        self.request_bytes += len(datagram)
        self.reply_bytes += sum(len(reply) for reply in replies)
        return replies

    def close(self) -> None:
        self.sock.close()


def start_udp_server(model: str, host: str = "127.0.0.1") -> Iterator[ObservedServer]:
    process = SocklabProcess(
        ["converter", "server", "--udp", "--host", host, "--port", "0", "--model", model]
    )
    try:
        bound_host, port = process.wait_listening()
        yield ObservedServer(process, bound_host, port, model, framing="datagram")
    finally:
        process.stop()


@pytest.fixture(scope="module", params=model_params("udp", datagram_models()))
def udp_server(request: pytest.FixtureRequest) -> Iterator[ObservedServer]:
    yield from start_udp_server(str(request.param))


def sweep_sizes() -> list[int]:
    sizes = set(range(0, 80))
    for power in range(7, 17):
        sizes.update({2**power - 1, 2**power, 2**power + 1})
    sizes.update(range(MAX_UDP_PAYLOAD_BYTES - 40, MAX_UDP_PAYLOAD_BYTES + 1))
    return sorted(size for size in sizes if size <= MAX_UDP_PAYLOAD_BYTES)


def datagrams_of_size(size: int, rng: random.Random) -> list[bytes]:
    """Datagrams of exactly `size` bytes that stress the reply length in different ways."""

    def fill(prefix: bytes, unit: bytes) -> bytes:
        if len(prefix) >= size:
            return prefix[:size]
        body = unit * ((size - len(prefix)) // len(unit))
        return prefix + body + b"a" * (size - len(prefix) - len(body))

    return [
        fill(b"U:", b"a"),
        fill(b"U:", "ΐ".encode()),  # 2 bytes, upper case 6 bytes
        fill(b"U:", "ŉ".encode()),  # 2 bytes, upper case 3 bytes
        fill(b"L:", "ẞ".encode()),  # 3 bytes, lower case 2 bytes
        fill(b"#18446744073709551615 U:", "ß".encode()),  # request id + growth
        fill(b"", b"?"),  # unknown command: the E: text is longer than short requests
        rng.randbytes(size),
    ]


def test_reply_never_exceeds_request_over_a_size_sweep(udp_server: ObservedServer) -> None:
    client = SyncedDatagramClient(udp_server.address)
    rng = random.Random(10)
    try:
        sent = 0
        for size in sweep_sizes():
            for datagram in datagrams_of_size(size, rng):
                assert len(datagram) == size
                replies = client.replies_to(datagram)
                sent += 1
                assert len(replies) <= 1, f"{len(replies)} replies to one datagram"
                if replies:
                    assert len(replies[0]) <= size, f"{len(replies[0])}-byte reply to {size} bytes"
                if size == 0:
                    assert replies == []
                if datagram.startswith(b"U:a") and datagram[2:].isascii():
                    assert replies == [datagram[2:].upper()]
        ratio = client.reply_bytes / client.request_bytes
        print(f"\n{udp_server.model}-udp: {sent} datagrams, reply/request bytes = {ratio:.3f}")
        assert ratio <= 1.0
    finally:
        client.close()
    assert udp_server.error_output() == []


fuzzed_datagrams = st.one_of(
    st.binary(max_size=2048),
    st.builds(
        lambda prefix, text: prefix + text.encode(),
        st.sampled_from([b"U:", b"L:", b"C:", b"#1 U:", b"#007 L:", b"# U:", b""]),
        st.text(max_size=600),
    ),
    st.integers(min_value=0, max_value=(MAX_UDP_PAYLOAD_BYTES - 2) // 2).map(
        lambda count: b"U:" + "ΐ".encode() * count
    ),
)


def test_reply_never_exceeds_request_for_fuzzed_datagrams(
    udp_server: ObservedServer, scale: str
) -> None:
    client = SyncedDatagramClient(udp_server.address)

    @settings(max_examples={"ci": 300, "full": 3_000}[scale], deadline=None, database=None)
    @given(fuzzed_datagrams)
    def one_datagram(datagram: bytes) -> None:
        replies = client.replies_to(datagram)
        assert len(replies) <= 1
        assert all(len(reply) <= len(datagram) for reply in replies)
        if not datagram:
            assert replies == []

    try:
        one_datagram()
        assert client.reply_bytes <= client.request_bytes
    finally:
        client.close()
    assert udp_server.error_output() == []


@pytest.fixture(scope="module", params=model_params("udp", datagram_models()))
def udp_server_ipv6(request: pytest.FixtureRequest) -> Iterator[ObservedServer]:
    yield from start_udp_server(str(request.param), host="::1")


def test_datagrams_beyond_the_ipv4_maximum_are_never_answered_in_part(
    udp_server_ipv6: ObservedServer,
) -> None:
    client = SyncedDatagramClient(udp_server_ipv6.address, socket.AF_INET6)
    try:
        for size in range(MAX_UDP_PAYLOAD_BYTES - 2, MAX_IPV6_UDP_PAYLOAD_BYTES + 1):
            datagram = b"U:" + b"t" * (size - 2)
            replies = client.replies_to(datagram)
            assert len(replies) <= 1
            for reply in replies:
                assert reply == datagram[2:].upper() or reply.startswith(b"E:"), (
                    f"{size}-byte datagram answered with {len(reply)} bytes: processed in part"
                )
    finally:
        client.close()
    assert udp_server_ipv6.error_output() == []
