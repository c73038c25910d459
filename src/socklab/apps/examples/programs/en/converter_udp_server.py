# The live-coded converter server over UDP (port 50000): each datagram is one
# request (U:text or L:text) and gets one reply datagram, sent to the address
# recvfrom() returned. There is no connection, so there is no greeting and no "C:".
# Run it:  python3 converter_udp_server.py      (or: python3 converter_udp_server.py PORT)
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp_sock.bind(("", port))
print("listening on port", port)
while True:
    msg, addr = udp_sock.recvfrom(1500)  # one whole datagram, up to 1500 bytes
    command, text = msg[:2], msg[2:]
    # No reply to an empty datagram or to an error reply (two servers would
    # otherwise answer each other's errors forever), and none to "C:".
    if not msg or command in (b"E:", b"C:"):
        continue
    try:
        if command == b"U:":
            reply = text.decode("utf-8").upper().encode("utf-8")
        elif command == b"L:":
            reply = text.decode("utf-8").lower().encode("utf-8")
        else:
            reply = b"E:unknown command"
    except UnicodeDecodeError:
        reply = b"E:not UTF-8"
    # A reply never longer than the request: otherwise a forged sender address
    # would let anyone use this server to flood a third computer.
    if len(reply) > len(msg):
        reply = b"E:too long"
    if len(reply) <= len(msg):
        udp_sock.sendto(reply, addr)
