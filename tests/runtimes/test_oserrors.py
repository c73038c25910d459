"""OSError becomes the socklab error that explains it, with the address and the cause chained."""

from __future__ import annotations

import errno
import socket

import pytest

from socklab import errors
from socklab.runtimes.oserrors import translated_oserrors


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), errors.RefusedError),
        (OSError(errno.EADDRINUSE, "Address already in use"), errors.AddressInUseError),
        (OSError(errno.EADDRNOTAVAIL, "Cannot assign"), errors.AddressNotAvailableError),
        (PermissionError(errno.EACCES, "Permission denied"), errors.PermissionDeniedError),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), errors.HostNotFoundError),
        (TimeoutError("timed out"), errors.NetworkTimeoutError),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), errors.UnreachableError),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset"), errors.BrokenResourceError),
        (OSError(errno.EBADF, "Bad file descriptor"), errors.ClosedResourceError),
        (OSError(errno.EIO, "Input/output error"), errors.NetworkError),
    ],
)
def test_each_oserror_becomes_its_class(raised: OSError, expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught, translated_oserrors(host="example.org", port=7):
        raise raised
    assert type(caught.value) is expected
    assert caught.value.__cause__ is raised
    assert (caught.value.host, caught.value.port) == ("example.org", 7)
    assert str(caught.value) == (raised.strerror or str(raised))


def test_other_exceptions_pass_untouched() -> None:
    with pytest.raises(ValueError, match=r"^not a socket error$"), translated_oserrors():
        raise ValueError("not a socket error")
    with translated_oserrors(host="h", port=1):
        pass  # nothing raised: nothing happens


def test_one_translator_serves_many_calls() -> None:
    translator = translated_oserrors(host="h", port=2, transport="udp")
    for _ in range(2):
        with pytest.raises(errors.AddressInUseError) as caught, translator:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        assert (caught.value.port, caught.value.transport) == (2, "udp")
