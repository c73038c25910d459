"""Opening server sockets, shared by every runtime: resolve, bind, listen, translate errors.

`OSError` is translated into socklab errors with the address and cause attached (`oserrors`).
"""

from __future__ import annotations

import socket

from socklab.errors import UsageError
from socklab.runtimes.config import ServerConfig
from socklab.runtimes.oserrors import translated_oserrors
from socklab.tracing import new_socket


def resolve_bind_address(host: str, port: int, sock_type: int) -> tuple[int, tuple[str, int]]:
    """(family, sockaddr) for binding; "" means every IPv4 interface, as in the slides."""
    if not 0 <= port <= 65535:
        raise UsageError(f"port {port} is out of range 0-65535")
    with translated_oserrors(host=host, port=port):
        infos = socket.getaddrinfo(
            host or None, port, socket.AF_UNSPEC, sock_type, 0, socket.AI_PASSIVE
        )
    # Prefer IPv4 for "" / None (the slides' bind(('', port)) is IPv4); otherwise the first answer.
    if not host:
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


def open_listening_socket(config: ServerConfig, *, blocking: bool = False) -> socket.socket:
    if config.user_timeout_s is not None and not hasattr(socket, "TCP_USER_TIMEOUT"):
        raise UsageError("a user timeout needs TCP_USER_TIMEOUT, which only Linux offers")
    family, address = resolve_bind_address(config.host, config.port, socket.SOCK_STREAM)
    sock = new_socket(family, socket.SOCK_STREAM, config.tracer)
    try:
        _prepare_server_socket(sock, config, stream=True)
        if config.receive_buffer_bytes is not None:
            # Set before listen(): accepted sockets inherit it, and the window they announce
            # in the handshake is sized from it (socket(7), tcp(7)).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, config.receive_buffer_bytes)
        if config.send_buffer_bytes is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, config.send_buffer_bytes)
        if family == socket.AF_INET6 and address[0] == "::":
            # "::" serves IPv4 as well (dual stack) where the OS allows it.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        _bind(sock, address, config)
        sock.listen(config.backlog)
        sock.setblocking(blocking)
    except BaseException:
        sock.close()
        raise
    return sock


def configure_accepted_socket(sock: socket.socket, config: ServerConfig) -> None:
    """Options every runtime sets on an accepted TCP socket, before its first byte is sent."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    # Replies are small and immediate: do not let Nagle hold them back for an ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if config.user_timeout_s is not None:
        # tcp(7) TCP_USER_TIMEOUT, in milliseconds: unacknowledged data older than this aborts
        # the connection (ETIMEDOUT), so a peer that vanished without a FIN or RST frees its
        # slot in seconds instead of after ~15 minutes of retransmissions.
        milliseconds = max(1, round(config.user_timeout_s * 1000))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, milliseconds)


def open_datagram_socket(config: ServerConfig) -> socket.socket:
    family, address = resolve_bind_address(config.host, config.port, socket.SOCK_DGRAM)
    sock = new_socket(family, socket.SOCK_DGRAM, config.tracer)
    try:
        _prepare_server_socket(sock, config, stream=False)
        _bind(sock, address, config)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _prepare_server_socket(sock: socket.socket, config: ServerConfig, *, stream: bool) -> None:
    if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
        # Windows: SO_REUSEADDR would let another process steal the port; exclusive use is the
        # documented safe choice and rebinding after TIME_WAIT works there anyway.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
    elif stream:
        # POSIX: allow an immediate restart while old connections sit in TIME_WAIT. TCP only: a
        # UDP socket has no TIME_WAIT, and on Linux SO_REUSEADDR on UDP lets a second process
        # bind the same port and share its datagrams (socket(7)), so a second server would
        # start silently instead of failing as "port in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if config.reuse_port:
        if not hasattr(socket, "SO_REUSEPORT"):
            raise UsageError("--workers needs SO_REUSEPORT, which this operating system lacks")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def _bind(sock: socket.socket, address: tuple[str, int], config: ServerConfig) -> None:
    # The transport travels with an AddressInUseError: the CLI names the port's holder from it.
    with translated_oserrors(host=address[0], port=address[1], transport=config.transport):
        sock.bind(address)


def bound_address(sock: socket.socket) -> tuple[str, int]:
    name = sock.getsockname()
    return str(name[0]), int(name[1])
