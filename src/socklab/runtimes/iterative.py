"""iterative model: one client at a time, exactly as on the lecture's slides.

    while True:
        conn, addr = listener.accept()    # the next client in the listen backlog
        serve conn until it closes         # greeting, then recv -> session -> send
        conn.close()

While one client is served, the others wait in the listen backlog: the kernel completes their
TCP handshake, so their connect() succeeds and what they send is buffered, but no greeting and
no reply arrive until every client before them has left. A client that stays connected and
silent holds everyone else up to `--idle-timeout` (a half-sent message: `--message-timeout`).
`max_clients` never applies: there is only ever one. When the process is out of file
descriptors, a spare one still lets it answer the next client `E:server busy`.

UDP needs no dispatch at all: the slide's UDP server is this loop with recvfrom()/sendto().
"""

from __future__ import annotations

import socket

from socklab.runtimes.blocking import ACCEPT_WAIT_S, BlockingConnection, BlockingServer
from socklab.runtimes.config import ServerConfig
from socklab.runtimes.datagrams import DATAGRAM_RECEIVE_BYTES, answer_datagram
from socklab.runtimes.handle import ServerHandle
from socklab.runtimes.listening import bound_address, open_datagram_socket
from socklab.tracing import poll_quietly


class IterativeServer(BlockingServer):
    """Serves each accepted connection inline, in the accepting thread."""

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config, "socklab-iterative")

    def dispatch(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        connection: BlockingConnection = self.open_connection(sock, peer)
        connection.serve()  # the next accept() waits until this client has left


class IterativeDatagramServer(ServerHandle):
    """recvfrom() a request, sendto() the reply, repeat."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._sock = open_datagram_socket(config)
        super().__init__(bound_address(self._sock))
        self._stop_requested = False
        self.start_thread(f"socklab-iterative-udp-{self.address[1]}")

    def run(self) -> None:
        sock = self._sock
        poll_quietly(sock, ACCEPT_WAIT_S)  # wake up now and then to see a stop request
        try:
            while not self._stop_requested:
                try:
                    data, address = sock.recvfrom(DATAGRAM_RECEIVE_BYTES)
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    continue  # Windows: ICMP "port unreachable" for an earlier reply
                answer_datagram(
                    sock,
                    data,
                    address,
                    self.stats,
                    self.config.datagram_handler,
                    self.config.observer,
                )
        finally:
            sock.close()

    def request_stop(self) -> None:
        self._stop_requested = True


def serve(config: ServerConfig) -> ServerHandle:
    if config.transport == "udp":
        return IterativeDatagramServer(config)
    return IterativeServer(config)
