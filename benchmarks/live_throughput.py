#!/usr/bin/env python3
"""`socklab live` under load: memory stays bounded at a flood, and packet -> page latency.

What it does (as root, so the live view captures): starts a converter server and `socklab live
--port P` on free loopback ports, connects a WebSocket client to the live view's event stream
(what the page receives; the browser's own drawing is not part of the figure), then

1. flood: `socklab bench --target` against the server for `--flood-s` seconds (as many packets
   a second as the machine makes: the issue's goal is 20,000), sampling the live process's RSS
   every 0.2 s; reports packets/s seen by the live view, peak RSS before and during the flood,
   and the updates the stream skipped (counted, never queued);
2. paced: one client sends a request every `1/--paced-rps` s for `--paced-s` s (about four
   packets a request: request, reply and their ACKs), and for every arrow received computes
   receive time minus the packet's kernel timestamp: p50/p95/max "packet to page" latency;
3. with `--browser`, the same paced phase again with the page open in a real headless Chromium
   (Selenium, Debian's chromium and chromium-driver): a MutationObserver injected into the page
   notes each ladder redraw, and at the next animation frame (the frame that paints it) records
   `performance.timeOrigin + performance.now()` for every arrow that redraw added. Browser and
   kernel share the machine's clock (epoch milliseconds, and the kernel's packet timestamp
   plus the live view's `started`), so render time minus packet time is the issue's "packet to
   screen" latency: p50/p95/max.

Usage:
    sudo .venv/bin/python benchmarks/live_throughput.py [--flood-s 10] [--paced-rps 250]
        [--paced-s 10] [--browser]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.socklab_process import SocklabProcess, free_port, run_socklab


class StreamReader:
    """The live view's WebSocket, read in a thread: arrows counted, latencies kept."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "events"
        self.arrows = 0
        self.last_number = 0  # of the newest arrow received
        self.skipped = 0
        self.packets = 0
        self.not_drawn = 0
        self.started: float | None = None
        self.latencies_s: list[float] = []
        self.measuring = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._read()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _read(self) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(self.url) as ws:
            while not self._stop.is_set():
                try:
                    message = await ws.receive(timeout=0.5)
                except TimeoutError:
                    continue
                if message.type is not aiohttp.WSMsgType.TEXT:
                    return
                now = time.time()
                update = json.loads(message.data)
                self.started = update.get("started", self.started)
                self.skipped += update.get("dropped", 0)
                self.packets = update.get("packets", self.packets)
                self.not_drawn = update.get("not_drawn", self.not_drawn)
                for event in update.get("events", ()):
                    if "flags" not in event:
                        continue
                    self.last_number = event["number"]
                    self.arrows += 1
                    if self.measuring and self.started is not None:
                        self.latencies_s.append(now - (self.started + event["time"]))


def sample_rss(pid: int, stop: threading.Event, peaks: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        peaks.append(process.memory_info().rss)
        stop.wait(0.2)


def paced_requests(port: int, rate: float, duration_s: float) -> int:
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock, sock.makefile("rb") as reader:
        reader.readline()  # the greeting
        deadline = time.monotonic() + duration_s
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            sock.sendall(b"U:paced\n")
            reader.readline()
            sent += 1
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
    return sent


# Injected into the page: after each ladder redraw, at the frame that paints it, the arrows it
# added (the selected connection's steps with numbers above the last seen) with the paint time.
# The steps' "time" counts from the live view's `started` (the kernel's packet timestamps).
RECORD_RENDERS = """
window.socklabRenders = [];
// arrows drawn before the measurement (the backlog of earlier phases) do not count
let lastNumber = Math.max(0, ...[...window.socklabLive.state.connections.values()]
  .flatMap((connection) => connection.steps.map((step) => step.number)));
new MutationObserver(() => {
  requestAnimationFrame(() => {
    const painted = performance.timeOrigin + performance.now();
    const live = window.socklabLive.state;
    const connection = live.connections.get(live.selected);
    if (!connection) return;
    for (const step of connection.steps) {
      if (step.number > lastNumber) {
        window.socklabRenders.push([step.time, painted]);
        lastNumber = step.number;
      }
    }
  });
}).observe(document.getElementById("ladder"), { childList: true, subtree: true });
"""


def percentiles(latencies_s: list[float]) -> str:
    ordered = sorted(latencies_s)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return (
        f"p50 {statistics.median(ordered) * 1e3:.0f} ms, p95 {p95 * 1e3:.0f} ms, "
        f"max {ordered[-1] * 1e3:.0f} ms"
    )


def paced_in_browser(
    url: str, port: int, reader: StreamReader, rate: float, duration_s: float
) -> None:
    """The paced phase with the page open in headless Chromium: packet -> screen latency."""
    from selenium.webdriver.support.ui import WebDriverWait
    from tests.live.chromium import headless_chromium

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        print("browser: needs Debian's chromium and chromium-driver")
        return
    with headless_chromium(chromium, chromedriver, 30.0) as driver:
        driver.get(url)
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "return document.body.dataset.ready === 'true' && window.socklabLive.state.connected"
            )
        )
        # The page first draws the backlog of earlier phases (the server's ring): measure after.
        newest = (
            "return Math.max(0, ...[...window.socklabLive.state.connections.values()]"
            ".flatMap((c) => c.steps.map((s) => s.number)))"
        )
        WebDriverWait(driver, 120).until(lambda d: d.execute_script(newest) >= reader.last_number)
        driver.execute_script(RECORD_RENDERS)
        sent = paced_requests(port, rate, duration_s)
        time.sleep(1.0)
        renders = driver.execute_script("return window.socklabRenders")
    if not renders or reader.started is None:
        print("browser: no arrows drawn (is this running as root?)")
        return
    latencies = [painted / 1e3 - (reader.started + arrow_time) for arrow_time, painted in renders]
    print(f"browser: {sent:,} requests at {rate:g}/s, {len(latencies):,} arrows painted: "
          f"packet -> screen {percentiles(latencies)}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood-s", type=float, default=10.0)
    parser.add_argument("--paced-rps", type=float, default=250.0)
    parser.add_argument("--paced-s", type=float, default=10.0)
    parser.add_argument(
        "--browser", action="store_true", help="also measure packet -> screen in headless Chromium"
    )
    args = parser.parse_args()
    port = free_port()
    server = SocklabProcess(["converter", "server", "--port", str(port)])
    server.wait_listening()
    live = SocklabProcess(["live", "--http", ":0", "--port", str(port)])
    try:
        url = live.wait_for_line(r"^socklab live: (http://\S+)$").group(1)
        reader = StreamReader(url)
        reader.start()
        time.sleep(1.0)  # the capture and the first socket table
        idle_rss = psutil.Process(live.pid).memory_info().rss

        stop, samples = threading.Event(), []
        sampler = threading.Thread(target=sample_rss, args=(live.pid, stop, samples))
        sampler.start()
        packets_before, begun = reader.packets, time.monotonic()
        flood = run_socklab(
            ["bench", "--target", f"127.0.0.1:{port}", "--duration", str(args.flood_s),
             "--warmup", "0", "--connections", "50"],
            timeout_s=args.flood_s + 60,
        )  # fmt: skip
        elapsed = time.monotonic() - begun
        time.sleep(1.0)
        stop.set()
        sampler.join()
        flood_packets = reader.packets - packets_before
        print(f"flood: {flood_packets:,} packets in {elapsed:.1f} s = "
              f"{flood_packets / elapsed:,.0f} packets/s seen by the live view")  # fmt: skip
        print(f"  live RSS: {idle_rss / 1e6:.1f} MB idle, peak {max(samples) / 1e6:.1f} MB, "
              f"last {samples[-1] / 1e6:.1f} MB")  # fmt: skip
        print(f"  arrows received by the stream: {reader.arrows:,}; packets counted, not drawn "
              f"(the capture fell behind): {reader.not_drawn:,}; stream updates skipped: "
              f"{reader.skipped:,}")  # fmt: skip
        rps = re.search(r"([\d,]+) requests/s|requests/s[^\d]*([\d,.]+)", flood.stdout)
        print(f"  bench: {rps.group(0) if rps else flood.stdout.strip().splitlines()[:1]}")

        time.sleep(2.0)  # let the relay of the flood drain
        reader.measuring = True
        sent = paced_requests(port, args.paced_rps, args.paced_s)
        time.sleep(1.0)
        reader.measuring = False
        latencies = reader.latencies_s
        if latencies:
            print(f"paced: {sent:,} requests at {args.paced_rps:g}/s, {len(latencies):,} arrows: "
                  f"packet -> stream {percentiles(latencies)}")  # fmt: skip
        else:
            print("paced: no arrows received (is this running as root?)")
        if args.browser:
            paced_in_browser(url, port, reader, args.paced_rps, args.paced_s)
        reader.stop()
    finally:
        live.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
