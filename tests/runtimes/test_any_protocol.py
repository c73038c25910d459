"""Every model serves whatever protocol it is given: a datagram handler other than the
converter's over UDP, in-process on loopback, one case per model from RUNTIMES."""

from __future__ import annotations

import socket

import pytest

from socklab.protocol.upper import handle_upper_datagram
from socklab.runtimes import RUNTIMES, serve
from socklab.runtimes.config import ServerConfig

UDP_MODELS = sorted(name for name, info in RUNTIMES.items() if "udp" in info.transports)

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("model", UDP_MODELS)
def test_udp_serves_the_handler_it_is_given(model: str) -> None:
    config = ServerConfig(port=0, transport="udp", datagram_handler=handle_upper_datagram)
    with (
        serve(model, config) as handle,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(5.0)
        client.sendto(b"hello", handle.address)
        assert client.recv(2048) == b"HELLO"  # the converter would answer `E:` to it
