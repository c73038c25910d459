"""The converter server warns when it is reachable from other machines: which hosts count."""

from __future__ import annotations

import pytest

from socklab.apps.converter import is_exposed


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.5.5", "::1", "localhost"])
def test_loopback_is_not_exposed(host: str) -> None:
    assert not is_exposed(host)


@pytest.mark.parametrize(
    "host",
    ["", "0.0.0.0", "::", "10.0.0.1", "192.168.1.20", "fe80::1", "::ffff:127.0.0.1", "lab-pc"],
)
def test_every_other_address_or_name_is_exposed(host: str) -> None:
    assert is_exposed(host)
