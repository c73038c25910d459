"""The notices a server sends when it turns a client away for its own reasons, not the client's.

A request the converter cannot answer gets its `E:` reply from the session; these lines are
for the cases where the server itself is short of something: a slot (`--max-clients`, the
per-host bound, the open-file limit, a thread that could not start) or memory. They are plain
`E:` lines, like every error reply, so any converter client shows them; a runtime frames them
with the connection's framing before sending.
"""

from __future__ import annotations

# memcached answers a connection over its `-c` bound with "ERROR Too many open connections";
# the advice to come back is ours, since the condition is temporary.
BUSY_REPLY = b"E:server busy, try again later"

# A MemoryError while answering one client ends that client's connection with this line; the
# server goes on serving the others (Redis answers "-OOM command not allowed" the same way).
OUT_OF_MEMORY_REPLY = b"E:server out of memory, try again later"
