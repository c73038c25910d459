# Der UDP-Server aus der Vorlesung (Port 12000): Er beantwortet jedes Datagramm
# mit seinen Großbuchstaben, zurück an die Adresse, von der es kam. Stopp mit Strg+C.
# Starte ihn mit:  python3 udp_server.py      (oder: python3 udp_server.py PORT)
import sys
from socket import AF_INET, SOCK_DGRAM, socket

serverPort = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
# Erstelle einen UDP-Socket und binde ihn an den lokalen Port.
serverSocket = socket(AF_INET, SOCK_DGRAM)
serverSocket.bind(("", serverPort))
print("The server is ready to receive")
# Endlosschleife.
while True:
    # Lies ein Datagramm und dazu die Adresse des Clients (IP und Port).
    message, clientAddress = serverSocket.recvfrom(2048)
    # Erzeuge den String in Großbuchstaben.
    modifiedMessage = message.decode("utf-8", "replace").upper().encode("utf-8")
    # Schicke ihn an diesen Client zurück: UDP braucht bei jedem Datagramm die Adresse.
    serverSocket.sendto(modifiedMessage, clientAddress)
