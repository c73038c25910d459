"""The prep sheet's hello server and client (port 9999), line for line.

The sheet's programs print every step so a student sees bind, listen, accept and connect happen;
these do the same, with the sheet's exact English lines, and add what the sheet leaves out: an
interruptible wait (Ctrl+C works on every OS), no crash on bytes that are not UTF-8, the
socklab error after the sheet's error line (the CLI prints it as the hint with a next step and
exits with its status), and what a server on a network needs:

* it binds 0.0.0.0 as on the sheet (that is its lesson: "all available interfaces"), and says
  that other computers can now connect, as every socklab server does;
* the client's message is escaped before it is printed (a peer's `\x1b[2J` would clear the
  screen) and a long one shortened, with its size;
* `recv()` has a deadline: a client that connects and sends nothing would otherwise hold the
  server forever, since it serves exactly one connection.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from socklab.apps.converter import exposure_note
from socklab.errors import NetworkError
from socklab.i18n import _
from socklab.protocol.escaping import escape_for_terminal
from socklab.runtimes.oserrors import translate_oserror
from socklab.tracing import Tracer, new_socket, poll_quietly

Report = Callable[[str], None]

# The sheet receives with recv(1024): one call, so a longer message is cut at 1024 bytes.
RECEIVE_BYTES = 1024
ACCEPT_POLL_S = 0.5  # accept() waits in slices so Ctrl+C is seen on Windows too
# How long the accepted client may take to send its message. The sheet's recv() waits forever;
# 30 s is the converter's deadline for a begun message, ample for a student typing in `nc`.
RECEIVE_TIMEOUT_S = 30.0
# Bytes of the message printed; a longer one (up to the sheet's 1024) is cut and its size named.
SHOWN_BYTES = 200


def run_hello_server(
    host: str,
    port: int,
    report: Report,
    on_listening: Callable[[int], None] | None = None,
    tracer: Tracer | None = None,
    receive_timeout_s: float = RECEIVE_TIMEOUT_S,
) -> NetworkError | None:
    """Serve one connection as the sheet's server does; the socket error that ended it, if any.

    `on_listening(port)` is called once the socket listens (the demo uses it to start a client);
    `tracer` sees every socket call (--trace); a client silent for `receive_timeout_s` is closed.
    """
    report(_("Server: Starting..."))
    try:
        with new_socket(_family_for(host), socket.SOCK_STREAM, tracer) as server_socket:
            report(_("Server: Socket created."))
            report(_("Server: Binding to {host}:{port}").format(host=host, port=port))
            if hasattr(socket, "SO_REUSEADDR") and not hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
                # So the server can be restarted at once while the last connection is in TIME_WAIT.
                server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server_socket.bind((host, port))
            note = exposure_note(host)
            if note is not None:
                report(note)
            server_socket.listen(1)
            actual_port = server_socket.getsockname()[1]
            report(_("Server: Listening on port {port}").format(port=actual_port))
            if on_listening is not None:
                on_listening(actual_port)
            client_connection, client_address = _accept_interruptibly(server_socket)
            with client_connection:
                report(
                    _("Server: Connection accepted from {ip}:{port}").format(
                        ip=client_address[0], port=client_address[1]
                    )
                )
                client_connection.settimeout(receive_timeout_s)
                try:
                    data_received = client_connection.recv(RECEIVE_BYTES)
                except TimeoutError:
                    report(
                        _("Server: No message within {seconds:g} s, closing.").format(
                            seconds=receive_timeout_s
                        )
                    )
                else:
                    message = escape_for_terminal(data_received, max_bytes=SHOWN_BYTES)
                    report(_("Server: Received: {message}").format(message=message))
            report(_("Server: Client connection closed."))
        report(_("Server: Server socket closed."))
        return None
    except KeyboardInterrupt:
        # Ctrl+C or SIGTERM: a normal way to stop a server, not an error; `with` closed the sockets.
        report(_("Server: Stopped by the user."))
        report(_("Server: Server socket closed."))
        return None
    except OSError as err:
        report(_("Server: Socket error: {error}").format(error=err))
        # The transport lets the CLI name the port's holder, as for every other server.
        return translate_oserror(err, host=host, port=port, transport="tcp")


def run_hello_client(
    host: str,
    port: int,
    message: str,
    report: Report,
    timeout_s: float,
    tracer: Tracer | None = None,
) -> NetworkError | None:
    """Connect, send one message, close, as the sheet's client does; the socket error, if any."""
    report(_("Client: Starting..."))
    try:
        with new_socket(_family_for(host), socket.SOCK_STREAM, tracer) as client_socket:
            report(_("Client: Socket created."))
            report(_("Client: Connecting to {host}:{port}").format(host=host, port=port))
            client_socket.settimeout(timeout_s)
            client_socket.connect((host, port))
            report(_("Client: Connected!"))
            client_socket.sendall(message.encode("utf-8"))
            report(_("Client: Sent: {message}").format(message=message))
        report(_("Client: Socket closed."))
        return None
    except OSError as err:
        report(
            _("Client: Failed to connect or send. Is server running? Error: {error}").format(
                error=err
            )
        )
        return translate_oserror(err, host=host, port=port)


def _family_for(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _accept_interruptibly(server_socket: socket.socket) -> tuple[socket.socket, tuple[str, int]]:
    poll_quietly(server_socket, ACCEPT_POLL_S)
    while True:
        try:
            connection, address = server_socket.accept()
        except TimeoutError:
            continue
        connection.setblocking(True)
        return connection, (str(address[0]), int(address[1]))
