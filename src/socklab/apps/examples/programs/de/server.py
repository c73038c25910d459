# Der TCP-Server aus dem Vorbereitungsblatt: Er lauscht auf Port 9999 auf eine
# Verbindung, empfängt eine Nachricht, gibt sie aus und stoppt dann.
# Starte ihn mit:  python3 server.py          (oder: python3 server.py PORT)
import socket
import sys

print("Server: Starting...")
try:
    # Erstelle einen TCP-Socket (AF_INET: IPv4, SOCK_STREAM: TCP).
    server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print("Server: Socket created.")
    # 0.0.0.0 bedeutet alle verfügbaren Schnittstellen; den Port kannst du als Argument angeben.
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
    server_address = ("0.0.0.0", port)
    print("Server: Binding to", server_address[0] + ":" + str(server_address[1]))
    # Hänge den Socket an die Adresse und den Port an.
    server_socket.bind(server_address)
    # Beginne auf eingehende Verbindungen zu lauschen; erlaube 1 wartende Verbindung.
    server_socket.listen(1)
    print("Server: Listening on port", server_address[1])
    # Warte darauf, dass sich ein Client verbindet: Das Programm hält hier an, bis einer kommt.
    client_connection, client_address = server_socket.accept()
    print("Server: Connection accepted from", client_address[0] + ":" + str(client_address[1]))
    # Empfange Daten, bis zu 1024 Bytes, und dekodiere die Bytes zurück in einen String.
    data_received = client_connection.recv(1024)
    message = data_received.decode("utf-8")
    print("Server: Received:", message)
    # Schließe die Verbindung mit dem Client.
    client_connection.close()
    print("Server: Client connection closed.")
    # Schließe den lauschenden Socket des Servers.
    server_socket.close()
    print("Server: Server socket closed.")
except OSError as err:
    print("Server: Socket error:", err)
except Exception as e:
    print("Server: An error occurred:", e)
