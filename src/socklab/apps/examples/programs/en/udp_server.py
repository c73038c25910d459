# The lecture's UDP server (port 12000): it answers every datagram with its
# upper case, sent back to the address it came from. Stop it with Ctrl+C.
# Run it:  python3 udp_server.py      (or: python3 udp_server.py PORT)
import sys
from socket import AF_INET, SOCK_DGRAM, socket

serverPort = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
# Create a UDP socket and bind it to the local port.
serverSocket = socket(AF_INET, SOCK_DGRAM)
serverSocket.bind(("", serverPort))
print("The server is ready to receive")
# Loop forever.
while True:
    # Read a datagram, and the client's address (IP and port) with it.
    message, clientAddress = serverSocket.recvfrom(2048)
    # Create the upper case string.
    modifiedMessage = message.decode("utf-8", "replace").upper().encode("utf-8")
    # Send it back to this client: UDP needs the address with every datagram.
    serverSocket.sendto(modifiedMessage, clientAddress)
