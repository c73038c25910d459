"""One way to write an endpoint: IPv6 in brackets, so the port stays readable (RFC 3986 §3.2.2)."""

from __future__ import annotations

import pytest

from socklab.protocol.chat.frames import parse_address
from socklab.protocol.endpoints import format_endpoint, format_host


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 7000, "127.0.0.1:7000"),
        ("localhost", 1, "localhost:1"),
        ("::1", 7000, "[::1]:7000"),
        ("fe80::1%eth0", 9, "[fe80::1%eth0]:9"),
        ("", 0, ":0"),
    ],
)
def test_endpoint_text(host: str, port: int, expected: str) -> None:
    assert format_endpoint(host, port) == expected
    assert format_host(host) + f":{port}" == expected


@pytest.mark.parametrize("address", [("127.0.0.1", 7000), ("::1", 65535)])
def test_the_chat_reads_back_what_is_written(address: tuple[str, int]) -> None:
    assert parse_address(format_endpoint(*address)) == address
