# The prep sheet's TCP server: it listens on port 9999 for one connection,
# receives one message, prints it, and stops.
# Run it:  python3 server.py          (or: python3 server.py PORT)
import socket
import sys

print("Server: Starting...")
try:
    # Create a TCP socket (AF_INET: IPv4, SOCK_STREAM: TCP).
    server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print("Server: Socket created.")
    # 0.0.0.0 means all available interfaces; the port comes from the command line if given.
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
    server_address = ("0.0.0.0", port)
    print("Server: Binding to", server_address[0] + ":" + str(server_address[1]))
    # Attach the socket to the address and port.
    server_socket.bind(server_address)
    # Start listening for incoming connections; allow 1 waiting connection.
    server_socket.listen(1)
    print("Server: Listening on port", server_address[1])
    # Wait for a client to connect: this stops the program until a client connects.
    client_connection, client_address = server_socket.accept()
    print("Server: Connection accepted from", client_address[0] + ":" + str(client_address[1]))
    # Receive data, up to 1024 bytes, and decode the bytes back into a string.
    data_received = client_connection.recv(1024)
    message = data_received.decode("utf-8")
    print("Server: Received:", message)
    # Close the connection with the client.
    client_connection.close()
    print("Server: Client connection closed.")
    # Close the server's listening socket.
    server_socket.close()
    print("Server: Server socket closed.")
except OSError as err:
    print("Server: Socket error:", err)
except Exception as e:
    print("Server: An error occurred:", e)
