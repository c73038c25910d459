"""Hostile peers, issue 15 section 4: no UDP reflection loops between socklab's servers.

One spoofed datagram, "from" server B to server A, makes A answer B. If B answers that reply
and A answers again, the two bounce it until a packet is lost. socklab's own servers did: the
converter answered `E:reply longer than request` with itself; `upper` answered `HELLO` with
`HELLO` and an empty datagram with an empty one.

The test plays the network between the real servers: it sends a request to one server, then
feeds each reply to the same server, to the other one, or to both in turn, and counts the hops
until a server stays silent. Silence is observed without a timeout: after each datagram the
same socket sends a sync request, and whatever arrives before the sync's reply belongs to the
datagram under test (loopback keeps the order of one socket pair).

And no server answers a datagram from a port below 1024, where echo, chargen, DNS and NTP
answer (inetd's `check_loop`): the test sends from such a port (CI runs as root).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
from collections.abc import Callable, Iterator

import pytest

from tests.robustness.conftest import datagram_models
from tests.socklab_process import SocklabProcess, free_port

MAX_HOPS = 3
WAIT_S = 5.0  # for a reply that must come (the sync's): generous, the server answers at once

# Requests whose replies started loops, or chains of one hop per nested command.
REQUESTS = [
    b"U:" + "ΐ".encode() * 20,  # the converter's reply is `E:reply longer than request`
    b"E:reply longer than request",
    b"hello",  # upper: `HELLO`, which upper-cased stays `HELLO`
    b"HELLO",
    b"",
    b"U:U:U:U:U:U:abc",
    b"l:l:l:l:l:l:abc",
    b"X" * 40,  # the converter's `E:unknown command ...`
]
FEEDBACK = (["same"], ["other"], ["same", "other"], ["other", "same"])

_sync_numbers = itertools.count()


def reply_to(
    sock: socket.socket, server: tuple[str, int], datagram: bytes, *, upper: bool
) -> bytes | None:
    """Send `datagram` to `server`; its reply, or None when the server stayed silent."""
    number = next(_sync_numbers)
    sync = (b"sync-%d" if upper else b"U:sync-%d") % number
    sock.sendto(datagram, server)
    sock.sendto(sync, server)
    replies = []
    while True:
        reply, sender = sock.recvfrom(70_000)
        assert sender[:2] == server
        if reply == b"SYNC-%d" % number:
            break
        replies.append(reply)
    assert len(replies) <= 1, replies
    return replies[0] if replies else None


@pytest.fixture
def udp_servers(
    start_socklab: Callable[..., SocklabProcess], request: pytest.FixtureRequest
) -> dict[str, tuple[str, int]]:
    """A converter of the model under test and an upper server, both over UDP on loopback."""
    model = request.param
    converter_port = free_port(socket.SOCK_DGRAM)
    converter = start_socklab(
        ["converter", "server", "--udp", "--model", model, "--port", str(converter_port)]
    )
    converter.wait_listening()
    upper_port = free_port(socket.SOCK_DGRAM)
    upper = start_socklab(["upper", "server", "--udp", "--port", str(upper_port)])
    upper.wait_for_line("ready to receive")
    return {"converter": ("127.0.0.1", converter_port), "upper": ("127.0.0.1", upper_port)}


@contextlib.contextmanager
def client_socket(port: int = 0) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.settimeout(WAIT_S)
        yield sock


@pytest.mark.timeout(120)
@pytest.mark.parametrize("udp_servers", datagram_models(), indirect=True)
def test_every_reply_chain_ends_within_3_hops(udp_servers: dict[str, tuple[str, int]]) -> None:
    other = {"converter": "upper", "upper": "converter"}
    with client_socket() as sock:
        for request, first, feedback in itertools.product(REQUESTS, udp_servers, FEEDBACK):
            datagram = reply_to(sock, udp_servers[first], request, upper=first == "upper")
            hops = 0
            while datagram is not None and hops <= MAX_HOPS:
                turn = feedback[hops % len(feedback)]
                target = first if turn == "same" else other[first]
                datagram = reply_to(sock, udp_servers[target], datagram, upper=target == "upper")
                if datagram is not None:
                    hops += 1
            assert hops <= MAX_HOPS, (request, first, feedback)


def bind_system_port() -> socket.socket:
    """A UDP socket on a free loopback port below 1024 (binding there needs root)."""
    for port in range(1023, 900, -1):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        return sock
    raise AssertionError("no free UDP port below 1024 on 127.0.0.1 (the test needs root)")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("udp_servers", datagram_models(), indirect=True)
def test_no_reply_to_a_system_port(udp_servers: dict[str, tuple[str, int]]) -> None:
    with bind_system_port() as privileged, client_socket() as fence:
        privileged.settimeout(WAIT_S)
        for name, server in udp_servers.items():
            request = b"U:abc" if name == "converter" else b"abc"
            privileged.sendto(request, server)
            # The fence's own request, sent after ours and answered: by then ours was handled.
            assert reply_to(fence, server, request, upper=name == "upper") is not None
            privileged.setblocking(False)
            with pytest.raises(BlockingIOError):
                privileged.recvfrom(70_000)
            privileged.settimeout(WAIT_S)
