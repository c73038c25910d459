"""Tools that look at sockets, packets and other people's programs, and measure servers; each
returns dataclasses the CLI renders.

ports (the socket table), capture (packets on the wire), check (protocol conformance),
bench (closed-loop load and model comparison).
"""
