"""How a lesson talks: headings, indented steps, and the "Observe:" lines that carry the point.

Two helpers keep a lesson the same on every run and at the instructor's pace:

* `TakingTurns` lets the lines of a server thread and a client out in a fixed order. Both sides
  run for real and concurrently; only their *printing* waits for its turn, so the order no
  longer depends on which thread the scheduler runs first.
* `PacedSay` (`socklab demo --step`) waits for Enter after each point a lesson makes (its
  "Observe:" lines) and before each new part (a heading), reading standard input; at the end of
  input it says so once and goes on without pausing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from socklab.i18n import _

Say = Callable[[str], None]
# Every wait in a lesson is bounded by this; loopback answers in microseconds.
TIMEOUT_S = 5.0


class PacedSay:
    """A `Say` that can pause for Enter. Call order: (__call__ | observation | new_part)*."""

    def __init__(self, say: Say, readline: Callable[[], str]) -> None:
        self._say = say
        self._readline = readline
        self._parts = 0
        self._pause_pending = False
        self._input_ended = False
        self._lock = threading.Lock()  # a lesson may speak from a server thread too

    def __call__(self, line: str) -> None:
        with self._lock:
            if self._pause_pending:
                self._pause_pending = False
                self._wait_for_enter()
            self._say(line)

    def observation(self, line: str) -> None:
        """A point of the lesson: said at once; the next line waits for Enter."""
        with self._lock:
            self._say(line)
            self._pause_pending = True

    def new_part(self) -> None:
        """A heading follows: pause before it, except before the first one."""
        with self._lock:
            if self._parts:
                self._pause_pending = True
            self._parts += 1

    def _wait_for_enter(self) -> None:
        if self._input_ended:
            return
        self._say("   [" + _("Enter: next step") + "]")
        if self._readline() == "":
            self._input_ended = True
            self._say("   " + _("(end of input: going on without pauses)"))


class TakingTurns:
    """Lines from several threads, let out in the order `order` names their speakers.

    `voice(speaker)` is the `Say` of one side; each of its lines waits until the next letter
    of `order` is `speaker`, at most TIMEOUT_S (a side that failed must not hang the lesson:
    its partner's lines then come out as they arrive). Past the end of `order` lines come as
    they are said.
    """

    def __init__(self, say: Say, order: str) -> None:
        self._say = say
        self._order = order.replace(" ", "")
        self._next = 0
        self._changed = threading.Condition()

    def voice(self, speaker: str, prefix: str = "") -> Say:
        def speak(line: str) -> None:
            with self._changed:
                self._wait_for_turn(speaker)
                self._say(prefix + line)
                self._next += 1
                self._changed.notify_all()

        return speak

    def _wait_for_turn(self, speaker: str) -> None:
        # The bound restarts whenever another line comes out: a partner that is slow (or
        # paused by --step) is alive; only one that says nothing for TIMEOUT_S is given up.
        deadline = time.monotonic() + TIMEOUT_S
        while self._next < len(self._order) and self._order[self._next] != speaker:
            seen = self._next
            self._changed.wait(max(0.0, deadline - time.monotonic()))
            if self._next != seen:
                deadline = time.monotonic() + TIMEOUT_S
            elif time.monotonic() >= deadline:
                return


def heading(say: Say, title: str) -> None:
    if isinstance(say, PacedSay):
        say.new_part()
    say("")
    say(f"== {title} ==")


def step(say: Say, text: str) -> None:
    say("   " + text)


def observe(say: Say, text: str) -> None:
    line = "   -> " + _("Observe: {text}").format(text=text)
    if isinstance(say, PacedSay):
        say.observation(line)
    else:
        say(line)


def show_bytes(data: bytes) -> str:
    """Bytes as a student would type them in Python: b'L:UPPER\\n'."""
    return repr(bytes(data))
