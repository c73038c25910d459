"""The notices a server sends when it turns a client away for its own reasons, not the client's.

A request the converter cannot answer gets its `E:` reply from the session; these lines are
for the cases where the server itself is short of something: a slot (`--max-clients`, the
per-host bound, the open-file limit, a thread that could not start) or memory. They are the
notices of `socklab.protocol.closing` (the one table of them), unframed; a session frames them
(`socklab.protocol.session.notice_of`).
"""

from __future__ import annotations

from typing import Final

from socklab.protocol.closing import CloseReason, notice_for

BUSY_REPLY: Final = notice_for(CloseReason.BUSY) or b""
OUT_OF_MEMORY_REPLY: Final = notice_for(CloseReason.OUT_OF_MEMORY) or b""
