# Der TCP-Client aus der Vorlesung: Er verbindet sich mit dem Server (Port 12000),
# sendet einen Satz und gibt die Antwort in Großbuchstaben aus.
# Starte ihn mit:  python3 tcp_client.py      (oder: python3 tcp_client.py HOST PORT)
import sys
from socket import AF_INET, SOCK_STREAM, socket

serverName = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
serverPort = int(sys.argv[2]) if len(sys.argv) > 2 else 12000
# Erstelle einen TCP-Socket für den Server; connect() baut die Verbindung auf.
clientSocket = socket(AF_INET, SOCK_STREAM)
clientSocket.connect((serverName, serverPort))
sentence = input("Input lowercase sentence:")
# Name und Port des Servers musst du nicht anhängen: Die Verbindung kennt sie.
clientSocket.send(sentence.encode("utf-8"))
modifiedSentence = clientSocket.recv(1024)
print("From Server:", modifiedSentence.decode("utf-8", "replace"))
clientSocket.close()
