"""Tools that look at sockets, packets and other people's programs; each returns dataclasses.

ports (the socket table), capture (packets on the wire), check (protocol conformance).
"""
