# The prep sheet's TCP client: it connects to the server on this computer
# (127.0.0.1, port 9999), sends "Hi server!" and closes.
# Run it:  python3 client.py          (or: python3 client.py HOST PORT)
import socket
import sys

print("Client: Starting...")
try:
    # Create a TCP socket.
    client_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print("Client: Socket created.")
    # The server's address: localhost means this computer.
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 9999
    server_address = (host, port)
    print("Client: Connecting to", server_address[0] + ":" + str(server_address[1]))
    # Connect to the server (the TCP handshake happens here).
    client_socket.connect(server_address)
    print("Client: Connected!")
    # Send a message: it must be encoded to bytes first.
    message = "Hi server!"
    client_socket.sendall(message.encode("utf-8"))
    print("Client: Sent:", message)
    # Close the socket.
    client_socket.close()
    print("Client: Socket closed.")
except OSError as err:
    print("Client: Failed to connect or send. Is server running? Error:", err)
except Exception as e:
    print("Client: An error occurred:", e)
