"""A hostile chat buddy, for the tests of issue 15 §2: run it against a real `socklab chat`.

    python -m tests.robustness.chat_hostile_buddy introduce HOST:PORT SECONDS
    python -m tests.robustness.chat_hostile_buddy flood HOST:PORT SECONDS

`introduce` (run in the hostile network namespace): one connection says hello claiming
`"listen": "10.99.200.1:445"` and sends a `peers` frame every 0.25 s naming ssh ports, fresh
addresses of the test range, the same ten addresses again and again, host names to resolve,
loopback, and addresses of other scopes. From half-time on, a new buddy (a new node id every
time, so a fresh per-buddy budget) connects every second, introduces 60 fresh addresses and
hangs up without bye. It prints `phase2 EPOCH` when the second half starts and `done` at the end.

`flood`: one buddy sends 16,000-byte messages (with terminal escapes in them) as fast as the
victim reads them, and prints `sent N BYTES` at the end.

Both answer pings, so the victim never drops them for silence.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

from socklab.protocol.chat import (
    Frame,
    Hello,
    Message,
    PeerEntry,
    Peers,
    Ping,
    Pong,
    decode_frame,
    encode_frame,
)
from socklab.protocol.framing.length_prefix import LengthPrefixFramer

FRAMER_LIMIT = 1 << 20
NAME = "mallory"


class Buddy:
    """One connection to the victim: sends frames, answers pings from a reader thread."""

    def __init__(self, target: tuple[str, int], node_id: str, listen: tuple[str, int]) -> None:
        self.sock = socket.create_connection(target, timeout=5)
        self.sock.settimeout(None)
        self._lock = threading.Lock()
        self._encoder = LengthPrefixFramer(FRAMER_LIMIT)
        self.send(Hello(NAME, time.time(), node_id, listen))
        threading.Thread(target=self._read, daemon=True).start()

    def send(self, frame: Frame) -> None:
        data = self._encoder.encode(encode_frame(frame))
        with self._lock:
            self.sock.sendall(data)

    def _read(self) -> None:
        framer = LengthPrefixFramer(FRAMER_LIMIT)
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            for payload in framer.receive_data(data):
                if not isinstance(payload, bytes):
                    return
                frame = decode_frame(payload)
                if isinstance(frame, Ping):
                    try:
                        self.send(Pong(NAME, time.time(), frame.id))
                    except OSError:
                        return

    def close(self) -> None:
        self.sock.close()


class FreshAddresses:
    """Addresses of the test range 10.99.0.0/16 on ports from 5000, never the same twice."""

    def __init__(self) -> None:
        self.count = 0

    def take(self, n: int) -> list[tuple[str, int]]:
        out = []
        for _ in range(n):
            k = self.count
            self.count += 1
            out.append((f"10.99.{1 + k // 250 % 200}.{1 + k % 250}", 5000 + k // 50_000))
        return out


def introduce(target: tuple[str, int], seconds: float) -> None:
    fresh = FreshAddresses()
    main = Buddy(target, "hostile-main", ("10.99.200.1", 445))
    start = time.monotonic()
    half = start + seconds / 2
    end = start + seconds
    frame_number = 0
    rotation = 0
    next_rotation = half
    announced = False
    while time.monotonic() < end:
        addresses: list[tuple[str, int]] = [
            (f"10.99.{210 + frame_number % 40}.{1 + i}", 22) for i in range(16)
        ]
        addresses += fresh.take(16)
        addresses += [(f"10.99.250.{1 + i}", 6000) for i in range(10)]
        addresses += [(f"exfil-{frame_number}-{i}.attacker.example", 4000) for i in range(12)]
        addresses += [
            ("127.0.0.1", 5555),
            ("127.0.0.1", 1),
            ("::1", 5555),
            ("2001:db8::1", 4443),
            ("2001:db8::1", 443),
            ("192.0.2.1", 5000),
        ]
        entries = tuple(
            PeerEntry(f"f{frame_number}e{i}", f"ghost{i}", address)
            for i, address in enumerate(addresses)
        )
        main.send(Peers(NAME, time.time(), entries))
        frame_number += 1
        now = time.monotonic()
        if now >= half and not announced:
            print(f"phase2 {time.time():.3f}", flush=True)
            announced = True
        if now >= next_rotation:
            next_rotation += 1.0
            rotation += 1
            try:
                buddy = Buddy(target, f"hostile-{rotation}", ("10.99.200.1", 40001))
                entries = tuple(
                    PeerEntry(f"r{rotation}e{i}", f"ghost{i}", address)
                    for i, address in enumerate(fresh.take(60))
                )
                buddy.send(Peers(NAME, time.time(), entries))
                time.sleep(0.2)
                buddy.close()  # no bye: the victim sees the connection lost
            except OSError as exc:
                print(f"rotation {rotation}: {exc}", flush=True)
        time.sleep(0.25)
    main.close()
    print(f"done {frame_number} frames {rotation} rotations", flush=True)


def flood(target: tuple[str, int], seconds: float) -> None:
    buddy = Buddy(target, "hostile-flood", ("127.0.0.1", 40002))
    text = ("\x1b]0;PWNED\x07\x1b[2J" + "x" * 16_000)[:16_000]
    end = time.monotonic() + seconds
    sent = 0
    message_id = 0
    while time.monotonic() < end:
        message_id += 1
        buddy.send(Message(NAME, time.time(), message_id, text))
        sent += len(text)
    buddy.close()
    print(f"sent {message_id} {sent}", flush=True)


def main() -> None:
    mode, address, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    host, _, port = address.rpartition(":")
    target = (host, int(port))
    print("ready", flush=True)
    {"introduce": introduce, "flood": flood}[mode](target, seconds)


if __name__ == "__main__":
    main()
