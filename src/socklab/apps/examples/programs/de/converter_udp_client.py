# Der im Live-Coding geschriebene Konverter-Client über UDP (Port 50000): Jede Zeile,
# die du tippst (U:text oder L:text), geht als ein Datagramm raus; das Antwort-Datagramm
# wird ausgegeben. Ein verlorenes Datagramm wird nicht wiederholt: Nach 2 Sekunden ohne
# Antwort sagt der Client das und macht mit der nächsten Zeile weiter.
# Starte ihn mit:  python3 converter_udp_client.py      (oder: python3 converter_udp_client.py HOST PORT)
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
