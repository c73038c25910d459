# Der im Live-Coding geschriebene Konverter-Client (TCP, Port 50000): Er liest die
# Begrüßung, sendet dann jede Zeile, die du tippst (U:text oder L:text), und gibt die
# Antwort aus. Am Ende deiner Eingabe (Strg+D, unter Windows Strg+Z Enter) sendet er
# "C:" und schließt. Wie in der Vorlesung geht jede Anfrage in einem send() raus und
# jede Antwort kommt in einem recv(1500): Es gibt kein Trennzeichen, das Programm
# verlässt sich also darauf, dass jedes recv() genau eine Antwort liefert.
# Starte ihn mit:  python3 converter_client.py      (oder: python3 converter_client.py HOST PORT)
import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
client_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client_sock.connect((host, port))
print(client_sock.recv(1500).decode("utf-8", "replace"))  # die Begrüßung
for line in sys.stdin:
    request = line.rstrip("\r\n")
    if not request:
        continue
    client_sock.send(request.encode("utf-8"))
    reply = client_sock.recv(1500).decode("utf-8", "replace")
    if reply.startswith("E:"):
        print("error from the server:", reply[2:])  # eine Fehlerantwort: zeig sie und mach weiter
    else:
        print(reply)
client_sock.send(b"C:")
client_sock.close()
