"""Tools that look at sockets and at other people's programs; each returns dataclasses."""
