# The lecture's UDP client: it reads a sentence, sends it to the server
# (port 12000) in one datagram and prints the upper-case reply.
# Run it:  python3 udp_client.py      (or: python3 udp_client.py HOST PORT)
import sys
from socket import AF_INET, SOCK_DGRAM, socket

serverName = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
serverPort = int(sys.argv[2]) if len(sys.argv) > 2 else 12000
# Create a UDP socket: no connection, the address goes with every datagram.
clientSocket = socket(AF_INET, SOCK_DGRAM)
# Get the user's keyboard input.
message = input("Input lowercase sentence:")
# Attach the server's name and port to the message; send it into the socket.
clientSocket.sendto(message.encode("utf-8"), (serverName, serverPort))
# Read the reply from the socket (a lost datagram would leave us waiting here).
modifiedMessage, serverAddress = clientSocket.recvfrom(2048)
# Print the received string and close the socket.
print(modifiedMessage.decode("utf-8", "replace"))
clientSocket.close()
