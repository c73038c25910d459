"""A ServerHandle whose background thread runs an asyncio event loop until asked to stop.

Shared by the asyncio model and by tools that serve with asyncio (the impair relay): the loop is
created in the caller's thread (so a missing uvloop is reported there), driven by `run()` in the
handle's thread, and stopped from any thread by `request_stop()`, which sets an `asyncio.Event`
that the subclass's `_serve()` awaits. Call order inside `_serve()`: `_arm_stop_event()` first,
then serve, then `await self._stop_event.wait()` and clean up.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import abstractmethod

from socklab.runtimes.handle import ServerHandle


class EventLoopHandle(ServerHandle):
    def __init__(self, address: tuple[str, int], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(address)
        self.loop = loop
        self.stopping = False
        self._stop_event: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def request_stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already closed
            self.loop.call_soon_threadsafe(self._begin_stop)

    def _begin_stop(self) -> None:
        self.stopping = True
        if self._stop_event is not None:
            self._stop_event.set()

    def _arm_stop_event(self) -> asyncio.Event:
        """Create the stop event inside the running loop; set at once if stop came first."""
        self._stop_event = asyncio.Event()
        if self.stopping:
            self._stop_event.set()
        return self._stop_event

    @abstractmethod
    async def _serve(self) -> None:
        """Serve until `self._stop_event` is set, then release everything."""
