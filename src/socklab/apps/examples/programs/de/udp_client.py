# Der UDP-Client aus der Vorlesung: Er liest einen Satz, schickt ihn in einem
# Datagramm an den Server (Port 12000) und gibt die Antwort in Großbuchstaben aus.
# Starte ihn mit:  python3 udp_client.py      (oder: python3 udp_client.py HOST PORT)
import sys
from socket import AF_INET, SOCK_DGRAM, socket

serverName = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
serverPort = int(sys.argv[2]) if len(sys.argv) > 2 else 12000
# Erstelle einen UDP-Socket: keine Verbindung, die Adresse geht mit jedem Datagramm mit.
clientSocket = socket(AF_INET, SOCK_DGRAM)
# Lies die Eingabe von der Tastatur.
message = input("Input lowercase sentence:")
# Hänge Name und Port des Servers an die Nachricht; schicke sie in den Socket.
clientSocket.sendto(message.encode("utf-8"), (serverName, serverPort))
# Lies die Antwort aus dem Socket (bei einem verlorenen Datagramm warten wir hier ewig).
modifiedMessage, serverAddress = clientSocket.recvfrom(2048)
# Gib den empfangenen String aus und schließe den Socket.
print(modifiedMessage.decode("utf-8", "replace"))
clientSocket.close()
