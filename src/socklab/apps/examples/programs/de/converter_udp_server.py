# Der im Live-Coding geschriebene Konverter über UDP (Port 50000): Jedes Datagramm
# ist eine Anfrage (U:text oder L:text) und bekommt ein Antwort-Datagramm, an die
# Adresse, die recvfrom() geliefert hat. Ohne Verbindung gibt es keine Begrüßung und kein "C:".
# Starte ihn mit:  python3 converter_udp_server.py      (oder: python3 converter_udp_server.py PORT)
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp_sock.bind(("", port))
print("listening on port", port)
while True:
    msg, addr = udp_sock.recvfrom(1500)  # ein ganzes Datagramm, bis zu 1500 Bytes
    command, text = msg[:2], msg[2:]
    # Keine Antwort auf ein leeres Datagramm oder auf eine Fehlerantwort (sonst
    # beantworten zwei Server ewig gegenseitig ihre Fehler), und keine auf "C:".
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
    # Eine Antwort nie länger als die Anfrage: Sonst könnte jeder mit gefälschter
    # Absenderadresse diesen Server benutzen, um einen dritten Computer zu fluten.
    if len(reply) > len(msg):
        reply = b"E:too long"
    if len(reply) <= len(msg):
        udp_sock.sendto(reply, addr)
