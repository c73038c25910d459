"""The chat with the `selectors` module: one thread waits for every socket at once.

The loop owns every socket, all non-blocking: the listener (readable = a buddy connects), a
wake-up socket pair (the user typed something: the node changed under the lock and there may be
bytes to write), connections (readable; writable only while their outbox holds bytes) and
dials in progress (connect_ex() returns EINPROGRESS; writable = connected or failed, SO_ERROR
says which). The select() timeout is the node's next deadline, so keepalives run on time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import threading
import time
from dataclasses import dataclass

from socklab.apps.chat.peer import (
    RECEIVE_BYTES,
    ChatConfig,
    ChatObserver,
    ChatPeer,
    PeerConnection,
    dial_target,
)
from socklab.protocol.chat import Dial


@dataclass(slots=True)
class _Dialing:
    action: Dial
    sock: socket.socket
    deadline: float


class SelectorChatPeer(ChatPeer):
    model = "selectors"

    def __init__(self, config: ChatConfig, observer: ChatObserver) -> None:
        super().__init__(config, observer)
        self._selector = selectors.DefaultSelector()
        self._wake_receiver, self._wake_sender = socket.socketpair()
        self._wake_receiver.setblocking(False)
        self._wake_sender.setblocking(False)
        self._dialing: dict[int, _Dialing] = {}
        self._thread: threading.Thread | None = None

    def _start_driver(self) -> None:
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_receiver, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._loop, name="chat-selector", daemon=True)
        self._thread.start()

    def _stop_driver(self) -> None:
        self._output_changed()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        with self._lock:
            for dialing in self._dialing.values():
                dialing.sock.close()
            self._dialing.clear()
        self._selector.close()
        self._wake_receiver.close()
        self._wake_sender.close()

    def _output_changed(self) -> None:
        if threading.current_thread() is self._thread:
            return  # the loop updates its registrations itself before it selects again
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self._wake_sender.send(b"\0")

    def _start_dial(self, action: Dial) -> None:
        try:
            family, kind, proto, sockaddr = dial_target(action)
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            self._dial_failed_locked(action.cid, exc, action.address)
            return
        sock.setblocking(False)
        code = sock.connect_ex(sockaddr)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            sock.close()
            self._dial_failed_locked(action.cid, OSError(code, os.strerror(code)), action.address)
            return
        deadline = time.monotonic() + self.config.connect_timeout_s
        self._dialing[action.cid] = _Dialing(action, sock, deadline)

    def _loop(self) -> None:
        while not self._stopping.is_set() and not self._finished.is_set():
            with self._lock:
                wait_s = self._tick_locked()
                wait_s = min(
                    [wait_s, *(d.deadline - time.monotonic() for d in self._dialing.values())]
                )
                self._update_registrations()
            try:
                ready = self._selector.select(max(wait_s, 0.0))
            except (OSError, ValueError):
                if self._stopping.is_set():
                    return
                raise
            with self._lock:
                for key, mask in ready:
                    self._dispatch(key.data, mask)
                self._expire_dials()
                self._pump_locked()

    def _update_registrations(self) -> None:
        wanted: dict[socket.socket, tuple[int, object]] = {}
        for conn in self._connections.values():
            # A socket at end of stream stays readable forever: stop reading it.
            events = 0 if conn.eof else selectors.EVENT_READ
            if conn.outbox or (conn.close_requested and not conn.write_done):
                events |= selectors.EVENT_WRITE
            if events:
                wanted[conn.sock] = (events, conn)
        for dialing in self._dialing.values():
            wanted[dialing.sock] = (selectors.EVENT_WRITE, dialing)
        registered = self._selector.get_map()
        for key in list(registered.values()):
            if key.data in ("accept", "wake"):
                continue
            target = wanted.pop(key.fileobj, None)  # type: ignore[call-overload]
            if target is None or target[1] is not key.data:
                self._selector.unregister(key.fileobj)
                if target is not None:
                    self._selector.register(key.fileobj, target[0], target[1])
            elif key.events != target[0]:
                self._selector.modify(key.fileobj, target[0], target[1])
        for sock, (events, data) in wanted.items():
            if sock.fileno() >= 0:
                self._selector.register(sock, events, data)

    def _dispatch(self, data: object, mask: int) -> None:
        if data == "accept":
            self._accept()
        elif data == "wake":
            with contextlib.suppress(OSError):
                self._wake_receiver.recv(4096)
        elif isinstance(data, _Dialing):
            self._finish_dial(data)
        elif isinstance(data, PeerConnection) and not data.closed:
            if mask & selectors.EVENT_READ:
                self._read(data)
            if mask & selectors.EVENT_WRITE and not data.closed:
                self._write(data)

    def _accept(self) -> None:
        for _ in range(16):  # a few per wake-up, so one flood cannot starve the buddies
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # EMFILE, ECONNABORTED: this client is lost, the listener is fine
            sock.setblocking(False)
            self._accepted_locked(sock, address)

    def _finish_dial(self, dialing: _Dialing) -> None:
        self._dialing.pop(dialing.action.cid, None)
        self._forget_socket(dialing.sock)
        code = dialing.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            dialing.sock.close()
            error = OSError(code, os.strerror(code))
            self._dial_failed_locked(dialing.action.cid, error, dialing.action.address)
            return
        self._dial_succeeded_locked(dialing.action.cid, dialing.sock)

    def _expire_dials(self) -> None:
        now = time.monotonic()
        for cid, dialing in list(self._dialing.items()):
            if now >= dialing.deadline:
                del self._dialing[cid]
                self._forget_socket(dialing.sock)
                dialing.sock.close()
                self._dial_failed_locked(
                    cid, TimeoutError("connect timed out"), dialing.action.address
                )

    def _forget_socket(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    def _read(self, conn: PeerConnection) -> None:
        try:
            data = conn.sock.recv(RECEIVE_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._forget_socket(conn.sock)
            self._close_locked(conn, exc.strerror or str(exc))
            return
        self._received_locked(conn, data)

    def _write(self, conn: PeerConnection) -> None:
        if conn.outbox:
            try:
                sent = conn.sock.send(conn.outbox)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._forget_socket(conn.sock)
                self._close_locked(conn, exc.strerror or str(exc))
                return
            del conn.outbox[:sent]
        if not conn.outbox and conn.close_requested:
            self._sent_everything_locked(conn)
