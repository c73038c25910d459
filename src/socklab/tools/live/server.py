"""The live view's web server: one page, its assets, a WebSocket of batched updates, a pcapng export.

Strategy: aiohttp (an asyncio web stack) serves in the handle's background thread, on a socket
bound in the caller's thread (so "address in use" is raised where the CLI can say it). Two
feeders fill one `LiveModel` under a lock: the capture loop of `tools/capture` in a thread of
its own, and the ports tool's socket table, read every `SOCKETS_EVERY_S`. Each browser gets a
task that wakes every `PUSH_EVERY_S` and sends what is new in one message: batched, at most
`MAX_EVENTS_PER_PUSH` arrows, and a browser too slow to keep up is told how many it missed,
never queued for (aiohttp's send waits for the socket to drain, so a slow one just falls behind).

Traced socklab programs (`--trace`, `SOCKLAB_LIVE=127.0.0.1:PORT`) send their TCP receive calls
as JSON datagrams to a UDP socket on 127.0.0.1 with the page's port number (`trace_address`;
None when that port is taken for UDP): each is validated (`parse_trace_record`) and drawn beside
the segments. Only loopback can reach it; a malformed datagram is dropped, counted.

Security (Jupyter's precedent): loopback needs no token but the Host header must name a loopback
address (no DNS rebinding); any other address needs the random token of the printed URL, checked
in constant time, then kept in a same-site cookie. The page is read-only: nothing it sends is
acted on. The assets forbid inline script and foreign origins (Content-Security-Policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSMsgType, web

from socklab.errors import PermissionDeniedError
from socklab.i18n import _
from socklab.protocol.endpoints import format_endpoint
from socklab.runtimes.config import ServerConfig
from socklab.runtimes.handle import ServerHandle
from socklab.runtimes.listening import open_listening_socket
from socklab.tools.capture.packets import LINKTYPE_ETHERNET, Packet
from socklab.tools.capture.pcapng import PcapngWriter
from socklab.tools.capture.runner import (
    CaptureOptions,
    CaptureReady,
    UnsupportedPlatformError,
    run_capture,
)
from socklab.tools.capture.selection import PacketSelection
from socklab.tools.live.model import LiveModel, parse_trace_record
from socklab.tools.ports import SocketFilter, SocketRow, read_socket_table

if TYPE_CHECKING:
    from socklab.tools.capture.linux import Frame  # Linux only: a type here

SOCKETS_EVERY_S: Final = 0.5  # the socket table's refresh: a new connection shows within it
JUDGE_EVERY_S: Final = 0.25  # how often datagrams are checked for having left a relay
PUSH_EVERY_S: Final = 0.1  # a browser's updates are batched over this long
MAX_EVENTS_PER_PUSH: Final = 500
TOKEN_COOKIE: Final = "socklab_live_token"
# The page's files, shipped as package data; nothing is fetched from anywhere else.
_ASSETS: Final = {
    "/": ("index.html", "text/html"),
    "/live.css": ("live.css", "text/css"),
    "/live.js": ("live.js", "text/javascript"),
}
_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class LiveConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    protocols: frozenset[str] = frozenset({"tcp", "udp"})
    ports: tuple[int, ...] = ()  # none: every port
    interface: str = "lo"
    token: str | None = None  # required in the URL (or its cookie) when set
    labels: Mapping[str, str] = field(default_factory=dict)
    language: str = "en"
    sudo_hint: str = ""  # the command line that would capture too, for the page's one line


@dataclass(slots=True)
class CaptureStatus:
    state: str = "starting"  # "starting" | "running" | "no-permission" | "unsupported" | "failed"
    note: str = ""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison (hmac.compare_digest), so timing tells nothing of the token."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class LiveServer(ServerHandle):
    """The running live view. Call order: LiveServer(config) -> start() -> ... -> stop()."""

    def __init__(self, config: LiveConfig) -> None:
        # Bound here, in the caller's thread, by the runtimes' own code: "port in use" and the
        # other bind errors reach the CLI as the servers' (one line naming the port).
        self._sock = open_listening_socket(
            ServerConfig(host=config.host.strip("[]"), port=config.port), blocking=True
        )
        host, port = self._sock.getsockname()[:2]
        super().__init__((str(host), int(port)))
        self._trace_sock = _trace_socket(int(port))
        self.trace_address: tuple[str, int] | None = (
            None if self._trace_sock is None else ("127.0.0.1", int(port))
        )
        self.traces_refused = 0  # datagrams on the trace socket that were no valid record
        self.config = config
        self.model = LiveModel(started=time.time())
        self.capture = CaptureStatus()
        self._lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._capture_thread: threading.Thread | None = None

    def start(self) -> None:
        self._capture_thread = threading.Thread(
            target=self._run_capture, name="socklab-live-capture", daemon=True
        )
        self._capture_thread.start()
        self.start_thread("socklab-live")

    # --- the capture thread ----------------------------------------------------------------

    def _run_capture(self) -> None:
        # The kernel's filter takes the selected ports (selection.py), so the rest of a busy
        # loopback never reaches Python.
        selection = PacketSelection(self.config.protocols, None, frozenset(self.config.ports))
        # A flood (tens of thousands of packets a second) is more than the ladders can be built
        # for: when a quarter of the kernel's ring waits unread, packets are counted, not drawn,
        # until the capture has caught up (runner.display_should_skip). Memory stays bounded
        # and the page stays live; it says how many it did not draw.
        options = CaptureOptions(
            interface=self.config.interface, selection=selection, may_skip_display=True
        )

        def ready(event: CaptureReady) -> None:
            with self._lock:
                self.model.link_type = event.link_type
                self.capture.state = "running"

        def packet(decoded: Packet, _owner: SocketRow | None) -> None:
            with self._lock:
                self.model.add_packet(decoded)

        def frames(kept: Sequence[Frame]) -> None:
            with self._lock:
                self.model.add_frames(kept)

        def skipped(count: int) -> None:
            with self._lock:
                self.model.count_skipped(count)

        try:
            run_capture(
                options,
                ready,
                packet,
                on_skipped=skipped,
                should_stop=self._stop_requested.is_set,
                on_frames=frames,
            )
        except PermissionDeniedError:
            self._set_capture(
                "no-permission",
                _(
                    "No packets without capture rights: run it as root to see them ({command})."
                ).format(command=self.config.sudo_hint),
            )
        except UnsupportedPlatformError as error:
            self._set_capture(
                "unsupported",
                _("Packet capture works on Linux only (not {platform}): sockets only.").format(
                    platform=error.platform
                ),
            )
        except Exception as error:  # any other failure: the sockets still show; say why once
            self._set_capture(
                "failed",
                _("The packet capture stopped: {reason}").format(reason=error),
            )

    def _set_capture(self, state: str, note: str) -> None:
        with self._lock:
            self.capture.state = state
            self.capture.note = note

    # --- the web server ----------------------------------------------------------------------

    def run(self) -> None:
        asyncio.run(self._serve())

    def request_stop(self) -> None:
        self._stop_requested.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._stop_requested.is_set():  # stopped before it served: its sockets are closed
            self._sock.close()
            if self._trace_sock is not None:
                self._trace_sock.close()
            return
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._asset)
        app.router.add_get("/live.css", self._asset)
        app.router.add_get("/live.js", self._asset)
        app.router.add_get("/labels.json", self._labels)
        app.router.add_get("/events", self._events)
        app.router.add_get("/export.pcapng", self._export_pcapng)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.SockSite(runner, self._sock, shutdown_timeout=1.0)
        await site.start()
        tasks = [
            asyncio.create_task(self._poll_sockets()),
            asyncio.create_task(self._judge_datagrams()),
        ]
        trace_transport: asyncio.DatagramTransport | None = None
        if self._trace_sock is not None:
            trace_transport, _protocol = await self._loop.create_datagram_endpoint(
                lambda: _TraceReceiver(self._add_trace), sock=self._trace_sock
            )
        try:
            await self._wake.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if trace_transport is not None:
                trace_transport.close()
            elif self._trace_sock is not None:
                self._trace_sock.close()
            await runner.cleanup()
            self._sock.close()
            if self._capture_thread is not None:
                await asyncio.to_thread(self._capture_thread.join, 2.0)

    def _add_trace(self, data: bytes) -> None:
        record = parse_trace_record(data)
        with self._lock:
            if record is None:
                self.traces_refused += 1
            else:
                self.model.add_trace(record, time.time())  # the packets' clock

    async def _poll_sockets(self) -> None:
        ports = frozenset(self.config.ports)
        chosen = SocketFilter(
            protocols=self.config.protocols,
            port=self.config.ports[0] if len(ports) == 1 else None,
        )
        while True:
            try:
                table = await asyncio.to_thread(read_socket_table, chosen)
            except Exception as error:  # the table cannot be read: say so, keep trying
                self._set_capture(self.capture.state, str(error))
            else:
                rows = [
                    row
                    for row in table.rows
                    if not ports or row.local_port in ports or row.remote_port in ports
                ]
                with self._lock:
                    self.model.update_sockets(rows, time.monotonic())
            await asyncio.sleep(SOCKETS_EVERY_S)

    async def _judge_datagrams(self) -> None:
        while True:
            await asyncio.sleep(JUDGE_EVERY_S)
            with self._lock:
                # time.time(): the kernel stamps captured packets on the same clock
                self.model.judge_datagrams(time.time())

    @web.middleware
    async def _guard(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.method != "GET":
            raise web.HTTPMethodNotAllowed(request.method, ["GET"])
        expected = self.config.token
        from_query = request.query.get("token")
        if expected is None:
            if not is_loopback(request.url.host or ""):
                raise web.HTTPForbidden(text=_("This page answers on a loopback address only."))
        elif not (
            token_matches(from_query, expected)
            or token_matches(request.cookies.get(TOKEN_COOKIE), expected)
        ):
            raise web.HTTPForbidden(
                text=_("Open the page with the URL socklab live printed (it holds the token).")
            )
        response = await handler(request)
        if not isinstance(response, web.WebSocketResponse):
            response.headers.update(_HEADERS)
            if expected is not None and from_query is not None:
                response.set_cookie(TOKEN_COOKIE, expected, httponly=True, samesite="Strict")
        return response

    async def _asset(self, request: web.Request) -> web.Response:
        name, content_type = _ASSETS[request.path]
        body = resources.files("socklab.tools.live").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=content_type, charset="utf-8")

    async def _labels(self, _request: web.Request) -> web.Response:
        trace = None if self.trace_address is None else format_endpoint(*self.trace_address)
        payload = {
            "language": self.config.language,
            "labels": dict(self.config.labels),
            "trace_address": trace,
        }
        return web.json_response(payload)

    async def _export_pcapng(self, _request: web.Request) -> web.Response:
        with self._lock:
            frames = list(self.model.frames)
            link_type = self.model.link_type
        buffer = io.BytesIO()
        writer = PcapngWriter(
            buffer,
            link_type if link_type is not None else LINKTYPE_ETHERNET,
            interface_name=self.config.interface,
        )
        writer.write_many(frames)
        return web.Response(
            body=buffer.getvalue(),
            content_type="application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="socklab-live.pcapng"'},
        )

    async def _events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        sender = asyncio.create_task(self._push(ws))
        try:
            async for message in ws:  # read-only: what the page says is ignored
                if message.type is WSMsgType.ERROR:
                    break
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
        return ws

    async def _push(self, ws: web.WebSocketResponse) -> None:
        cursor = 0
        sockets_version = -1
        capture_seen: tuple[str, str] | None = None
        while not ws.closed:
            message: dict[str, Any] = {}
            with self._lock:
                batch = self.model.events_after(cursor, MAX_EVENTS_PER_PUSH)
                if self.model.sockets_version != sockets_version:
                    sockets_version = self.model.sockets_version
                    message["sockets"] = list(self.model.snapshot_sockets())
                capture = (self.capture.state, self.capture.note)
                packets = self.model.packets
                not_drawn = self.model.packets_not_drawn
            cursor = batch.cursor
            if batch.events:
                message["events"] = list(batch.events)
            if batch.dropped:
                message["dropped"] = batch.dropped
            if capture_seen is None:
                # The clock of the arrows' times (seconds since the epoch; "time" counts from it)
                message["started"] = self.model.started
            if capture != capture_seen:
                capture_seen = capture
                message["capture"] = {"state": capture[0], "note": capture[1]}
            if message:
                message["packets"] = packets
                message["not_drawn"] = not_drawn
                await ws.send_str(json.dumps(message))
            if len(batch.events) < MAX_EVENTS_PER_PUSH:
                await asyncio.sleep(PUSH_EVERY_S)


def _trace_socket(port: int) -> socket.socket | None:
    """The UDP socket traced programs send to: loopback, the page's port number, if free."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:  # taken for UDP: the page works on, without recv() boundaries
        sock.close()
        return None
    sock.setblocking(False)
    return sock


class _TraceReceiver(asyncio.DatagramProtocol):
    def __init__(self, add: Callable[[bytes], None]) -> None:
        self._add = add

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._add(data)


__all__ = ["LiveConfig", "LiveServer", "is_loopback", "token_matches"]
