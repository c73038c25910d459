"""Packet capture for `socklab capture`: a platform source, pure decoding, pcap, teaching views.

Layout: `packets` (frames -> Packet dataclasses), `pcap` (the file format), `selection`
(--tcp/--udp/--port as a user-space test and a kernel BPF program), `streams` (TCP
reassembly by sequence number), `ladder` (segments with the messages inside them), `owners`
(which local socket receives a packet), `linux` (the AF_PACKET source) and `runner` (the loop).
Everything but `linux`, `owners` and `runner` is pure: bytes in, dataclasses out.
"""
