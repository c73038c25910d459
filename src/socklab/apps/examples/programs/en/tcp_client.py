# The lecture's TCP client: it connects to the server (port 12000), sends a
# sentence and prints the upper-case reply.
# Run it:  python3 tcp_client.py      (or: python3 tcp_client.py HOST PORT)
import sys
from socket import AF_INET, SOCK_STREAM, socket

serverName = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
serverPort = int(sys.argv[2]) if len(sys.argv) > 2 else 12000
# Create a TCP socket for the server; connect() opens the connection.
clientSocket = socket(AF_INET, SOCK_STREAM)
clientSocket.connect((serverName, serverPort))
sentence = input("Input lowercase sentence:")
# No need to attach the server's name and port: the connection knows them.
clientSocket.send(sentence.encode("utf-8"))
modifiedSentence = clientSocket.recv(1024)
print("From Server:", modifiedSentence.decode("utf-8", "replace"))
clientSocket.close()
