"""Lines about peers, rate-limited: a flood of datagrams or connections prints a few lines a
second and one summary line, not a flood of lines.

Shared by every server that logs what peers do (`upper`, the converter's `-v` over UDP).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from socklab.i18n import _, ngettext

Report = Callable[[str], None]

# A flood must not become a flood of lines: at most this many lines about peers per second,
# then one summary line per second (the chat's rate limits and syslog's "last message repeated
# N times" do the same).
PEER_LINES_PER_S = 10
# Distinct peers remembered for a summary line: bounded, so a flood from every port of every
# address cannot grow the set without end (the line then says "at least").
MAX_COUNTED_PEERS = 10_000


class PeerLineLimiter:
    """Passes at most `lines_per_window` lines about peers per window, counts the rest, and
    reports them in one line when the window is over. Thread-safe.

    `offer(peer, make_line)` for each event; `tick()` now and then, so the summary of the last
    window also comes when the flood has stopped. `clock` is injected for the tests.
    """

    def __init__(
        self,
        report: Report,
        summarize: Callable[[int, int, bool], str],
        *,
        lines_per_window: int = PEER_LINES_PER_S,
        window_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._report = report
        self._summarize = summarize
        self._lines_per_window = lines_per_window
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._window_end = 0.0
        self._shown = 0
        self._suppressed = 0
        self._peers: set[tuple[str, int]] = set()
        self._peers_overflowed = False

    def offer(self, peer: tuple[str, int], make_line: Callable[[], str]) -> None:
        with self._lock:
            self._roll_window()
            if self._shown < self._lines_per_window:
                self._shown += 1
                self._report(make_line())
                return
            self._suppressed += 1
            if len(self._peers) < MAX_COUNTED_PEERS:
                self._peers.add(peer)
            elif peer not in self._peers:
                self._peers_overflowed = True

    def tick(self) -> None:
        """Report the summary of a window that is over."""
        with self._lock:
            self._roll_window()

    def flush(self) -> None:
        """Report what was held back, window over or not (the server is stopping)."""
        with self._lock:
            self._roll_window(force=True)

    def _roll_window(self, *, force: bool = False) -> None:
        now = self._clock()
        if now < self._window_end and not force:
            return
        if self._suppressed:
            self._report(
                self._summarize(self._suppressed, len(self._peers), self._peers_overflowed)
            )
        self._window_end = now + self._window_s
        self._shown = self._suppressed = 0
        self._peers.clear()
        self._peers_overflowed = False


def summarize_datagrams(count: int, peers: int, at_least: bool) -> str:
    return _("… and {datagrams} from {peers}").format(
        datagrams=ngettext("{count:,} more datagram", "{count:,} more datagrams", count).format(
            count=count
        ),
        peers=_describe_peers(peers, at_least),
    )


def summarize_requests(count: int, peers: int, at_least: bool) -> str:
    return _("… and {requests} from {peers}").format(
        requests=ngettext("{count:,} more request", "{count:,} more requests", count).format(
            count=count
        ),
        peers=_describe_peers(peers, at_least),
    )


def summarize_connections(count: int, peers: int, at_least: bool) -> str:
    return _("… and {connections} from {peers}").format(
        connections=ngettext(
            "{count:,} more connection", "{count:,} more connections", count
        ).format(count=count),
        peers=_describe_peers(peers, at_least),
    )


def _describe_peers(peers: int, at_least: bool) -> str:
    if at_least:
        return _("at least {count:,} peers").format(count=peers)
    return ngettext("{count:,} peer", "{count:,} peers", peers).format(count=peers)
