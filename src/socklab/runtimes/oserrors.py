"""`OSError` becomes a socklab error here, once, at the boundary between the OS and socklab.

Every call that touches a socket runs inside `translated_oserrors(host=…, port=…)`: an `OSError`
leaving the block is raised again as the `socklab.errors` class that explains it, with the address
it concerned and the original chained as `__cause__` (trio's `_highlevel_socket.py` does the same
around each socket call). The exception tree itself stays in `socklab.errors`, free of I/O imports,
so the sans-I/O core can raise its errors without loading `socket`.
"""

from __future__ import annotations

import errno
import socket
from types import TracebackType

from socklab.errors import (
    AddressInUseError,
    AddressNotAvailableError,
    BrokenResourceError,
    ClosedResourceError,
    HostNotFoundError,
    NetworkError,
    NetworkTimeoutError,
    PermissionDeniedError,
    RefusedError,
    UnreachableError,
)

_ERRNO_CLASSES: dict[int, type[NetworkError]] = {
    errno.ECONNREFUSED: RefusedError,
    errno.EADDRINUSE: AddressInUseError,
    errno.EADDRNOTAVAIL: AddressNotAvailableError,
    errno.EACCES: PermissionDeniedError,
    errno.EPERM: PermissionDeniedError,
    errno.ETIMEDOUT: NetworkTimeoutError,
    errno.EHOSTUNREACH: UnreachableError,
    errno.ENETUNREACH: UnreachableError,
    errno.ECONNRESET: BrokenResourceError,
    errno.EPIPE: BrokenResourceError,
    errno.ECONNABORTED: BrokenResourceError,
    errno.EBADF: ClosedResourceError,
}
# Windows reports WSA* codes in winerror; map them too so the classes agree on every platform.
_WINERROR_CLASSES: dict[int, type[NetworkError]] = {
    10061: RefusedError,  # WSAECONNREFUSED
    10048: AddressInUseError,  # WSAEADDRINUSE
    10049: AddressNotAvailableError,  # WSAEADDRNOTAVAIL
    10013: PermissionDeniedError,  # WSAEACCES
    10060: NetworkTimeoutError,  # WSAETIMEDOUT
    10065: UnreachableError,  # WSAEHOSTUNREACH
    10051: UnreachableError,  # WSAENETUNREACH
    10054: BrokenResourceError,  # WSAECONNRESET
    10053: BrokenResourceError,  # WSAECONNABORTED
}


def translate_oserror(
    exc: OSError,
    *,
    host: str | None = None,
    port: int | None = None,
    transport: str | None = None,
) -> NetworkError:
    """The socklab error that explains `exc` (not raised: the caller decides, `from exc`).

    For the few places that report a failure instead of raising it; everything else uses
    `translated_oserrors`.
    """
    cls: type[NetworkError]
    if isinstance(exc, socket.gaierror):
        cls = HostNotFoundError
    elif isinstance(exc, TimeoutError | socket.timeout):
        cls = NetworkTimeoutError
    else:
        winerror = getattr(exc, "winerror", None)
        cls = (_WINERROR_CLASSES.get(winerror) if winerror else None) or _ERRNO_CLASSES.get(
            exc.errno or -1, NetworkError
        )
    detail = exc.strerror or str(exc) or type(exc).__name__
    if cls is AddressInUseError:
        return AddressInUseError(detail, host=host, port=port, transport=transport)
    return cls(detail, host=host, port=port)


class translated_oserrors:  # lower case, like contextlib.suppress: it reads as a `with` clause
    """`with translated_oserrors(host=h, port=p): sock.connect(...)` raises socklab errors.

    `transport` ("tcp"/"udp") is given around a server's bind(), so that the CLI can look up
    which program holds a taken port. Other exceptions pass through untouched. A class rather than a
    `@contextmanager` generator: it wraps every send and receive of the clients, and a plain
    `__exit__` costs a fraction of a generator's setup. An instance keeps no state between uses,
    so a client makes one and enters it around each call.
    """

    __slots__ = ("host", "port", "transport")

    def __init__(
        self, *, host: str | None = None, port: int | None = None, transport: str | None = None
    ) -> None:
        self.host, self.port, self.transport = host, port, transport

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, OSError):
            raise translate_oserror(
                exc, host=self.host, port=self.port, transport=self.transport
            ) from exc
