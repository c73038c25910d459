# Der TCP-Server aus der Vorlesung (Port 12000): Von jedem Client empfängt er einen
# Satz, schickt ihn in Großbuchstaben zurück und schließt die Verbindung. Stopp mit Strg+C.
# Starte ihn mit:  python3 tcp_server.py      (oder: python3 tcp_server.py PORT)
import sys
from socket import AF_INET, SOCK_STREAM, socket

serverPort = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
# Erstelle den TCP-Willkommens-Socket.
serverSocket = socket(AF_INET, SOCK_STREAM)
serverSocket.bind(("", serverPort))
# Der Server beginnt, auf eingehende TCP-Anfragen zu lauschen.
serverSocket.listen(1)
print("The server is ready to receive")
# Endlosschleife.
while True:
    # accept() wartet auf einen Client und gibt einen neuen Socket für diesen Client zurück.
    connectionSocket, addr = serverSocket.accept()
    # Lies Bytes aus dem Socket (anders als bei UDP ohne Adresse).
    sentence = connectionSocket.recv(1024)
    capitalizedSentence = sentence.decode("utf-8", "replace").upper().encode("utf-8")
    connectionSocket.send(capitalizedSentence)
    # Schließe die Verbindung zu diesem Client (aber nicht den Willkommens-Socket).
    connectionSocket.close()
