# Der TCP-Client aus dem Vorbereitungsblatt: Er verbindet sich mit dem Server auf
# diesem Computer (127.0.0.1, Port 9999), sendet "Hi server!" und schließt.
# Starte ihn mit:  python3 client.py          (oder: python3 client.py HOST PORT)
import socket
import sys

print("Client: Starting...")
try:
    # Erstelle einen TCP-Socket.
    client_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print("Client: Socket created.")
    # Die Adresse des Servers: localhost bedeutet dieser Computer.
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 9999
    server_address = (host, port)
    print("Client: Connecting to", server_address[0] + ":" + str(server_address[1]))
    # Verbinde dich mit dem Server (hier passiert der TCP-Handshake).
    client_socket.connect(server_address)
    print("Client: Connected!")
    # Sende eine Nachricht: Sie muss erst in Bytes kodiert werden.
    message = "Hi server!"
    client_socket.sendall(message.encode("utf-8"))
    print("Client: Sent:", message)
    # Schließe den Socket.
    client_socket.close()
    print("Client: Socket closed.")
except OSError as err:
    print("Client: Failed to connect or send. Is server running? Error:", err)
except Exception as e:
    print("Client: An error occurred:", e)
