# The lecture's TCP server (port 12000): for each client it receives one
# sentence, sends back its upper case and closes that connection. Ctrl+C stops it.
# Run it:  python3 tcp_server.py      (or: python3 tcp_server.py PORT)
import sys
from socket import AF_INET, SOCK_STREAM, socket

serverPort = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
# Create the TCP welcoming socket.
serverSocket = socket(AF_INET, SOCK_STREAM)
serverSocket.bind(("", serverPort))
# The server begins listening for incoming TCP requests.
serverSocket.listen(1)
print("The server is ready to receive")
# Loop forever.
while True:
    # accept() waits for a client; it returns a new socket for this client.
    connectionSocket, addr = serverSocket.accept()
    # Read bytes from the socket (no address needed, unlike UDP).
    sentence = connectionSocket.recv(1024)
    capitalizedSentence = sentence.decode("utf-8", "replace").upper().encode("utf-8")
    connectionSocket.send(capitalizedSentence)
    # Close the connection to this client (but not the welcoming socket).
    connectionSocket.close()
