# The live-coded converter client over UDP (port 50000): each line you type
# (U:text or L:text) goes out as one datagram; the reply datagram is printed.
# A lost datagram is not sent again: after 2 seconds without a reply the client
# says so and goes on with the next line.
# Run it:  python3 converter_udp_client.py      (or: python3 converter_udp_client.py HOST PORT)
import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp_sock.settimeout(2)
for line in sys.stdin:
    request = line.rstrip("\r\n")
    if not request:
        continue
    udp_sock.sendto(request.encode("utf-8"), (host, port))
    try:
        msg, addr = udp_sock.recvfrom(1500)
    except TimeoutError:
        print("no reply within 2 s (the datagram or its reply was lost)")
        continue
    reply = msg.decode("utf-8", "replace")
    if reply.startswith("E:"):
        print("error from the server:", reply[2:])
    else:
        print(reply)
udp_sock.close()
