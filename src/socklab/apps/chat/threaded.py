"""The chat with threads, as on the lecture's slide: one thread per socket and direction.

Threads: one accepts, one runs the node's timers, each dial gets a short-lived thread for its
blocking connect(), and every connection gets a reader (blocking recv(), fed to the node under
the lock) and a writer (waits on a condition for its outbox, sends outside the lock, so a buddy
that reads slowly never blocks anyone else). Sockets keep a timeout so a send that makes no
progress for WRITE_TIMEOUT_S ends that connection instead of a thread.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from socklab.apps.chat.peer import (
    RECEIVE_BYTES,
    WRITE_TIMEOUT_S,
    ChatConfig,
    ChatObserver,
    ChatPeer,
    PeerConnection,
    dial_target,
)
from socklab.protocol.chat import Dial

ACCEPT_POLL_S = 0.5  # accept() waits in slices, so stop() is noticed on every OS


class ThreadedChatPeer(ChatPeer):
    model = "threads"

    def __init__(self, config: ChatConfig, observer: ChatObserver) -> None:
        super().__init__(config, observer)
        self._changed = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []

    def _spawn(self, target: object, *args: object, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)

    def _start_driver(self) -> None:
        self._listener.settimeout(ACCEPT_POLL_S)
        self._spawn(self._accept_loop, name="chat-accept")
        self._spawn(self._timer_loop, name="chat-timers")

    def _stop_driver(self) -> None:
        with self._changed:
            self._changed.notify_all()
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(2.0)

    def _forget_socket(self, sock: socket.socket) -> None:
        pass  # nothing is registered anywhere: the reader and writer see the socket close

    def _output_changed(self) -> None:
        self._changed.notify_all()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set() and not self._finished.is_set():
            try:
                sock, address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue  # EMFILE, ECONNABORTED: this client is lost, the listener is fine
            with self._lock:
                conn = self._accepted_locked(sock, address)
                self._start_connection(conn)
                self._pump_locked()

    def _timer_loop(self) -> None:
        while not self._stopping.is_set() and not self._finished.is_set():
            with self._lock:
                wait_s = self._tick_locked()
            self._stopping.wait(wait_s)

    def _start_dial(self, action: Dial) -> None:
        self._spawn(self._dial, action, name=f"chat-dial-{action.cid}")

    def _dial(self, action: Dial) -> None:
        try:
            sock = self._connect(action)
        except OSError as exc:
            with self._lock:
                self._dial_failed_locked(action.cid, exc, action.address)
                self._pump_locked()
            return
        with self._lock:
            conn = self._dial_succeeded_locked(action.cid, sock)
            if conn is not None:
                self._start_connection(conn)
            self._pump_locked()

    def _connect(self, action: Dial) -> socket.socket:
        timeout_s = self.config.connect_timeout_s
        if action.may_resolve:
            # A name the user typed: try each of its addresses, as create_connection() does.
            return socket.create_connection(action.address, timeout=timeout_s)
        family, kind, proto, sockaddr = dial_target(action)
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout_s)
            sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
        return sock

    def _start_connection(self, conn: PeerConnection) -> None:
        conn.sock.settimeout(WRITE_TIMEOUT_S)
        self._spawn(self._read_loop, conn, name=f"chat-read-{conn.cid}")
        self._spawn(self._write_loop, conn, name=f"chat-write-{conn.cid}")

    def _read_loop(self, conn: PeerConnection) -> None:
        while not conn.closed:
            try:
                data = conn.sock.recv(RECEIVE_BYTES)
            except TimeoutError:
                continue  # the timeout is for sends; a quiet buddy is the keepalive's business
            except OSError as exc:
                with self._lock:
                    self._close_locked(conn, exc.strerror or str(exc))
                    self._pump_locked()
                return
            with self._lock:
                self._received_locked(conn, data)
                self._pump_locked()
            if not data:
                return

    def _write_loop(self, conn: PeerConnection) -> None:
        while True:
            with self._changed:
                while not conn.closed and not conn.outbox and not conn.close_requested:
                    self._changed.wait(1.0)  # a missed notify costs a second, not a thread
                if conn.closed:
                    return
                data = bytes(conn.outbox)
                conn.outbox.clear()
                if not data:
                    self._sent_everything_locked(conn)
                    self._pump_locked()
                    return
            try:
                conn.sock.sendall(data)
            except OSError as exc:
                detail = (
                    "the buddy does not read its messages"
                    if isinstance(exc, TimeoutError)
                    else exc.strerror or str(exc)
                )
                with self._lock:
                    self._close_locked(conn, detail)
                    self._pump_locked()
                return

    def stop(self) -> None:
        super().stop()
        with contextlib.suppress(OSError):
            self._listener.close()
