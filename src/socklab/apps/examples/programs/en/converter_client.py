# The live-coded converter client (TCP, port 50000): it reads the greeting, then
# sends each line you type (U:text or L:text) and prints the reply. At the end of
# your input (Ctrl+D, on Windows Ctrl+Z Enter) it sends "C:" and closes.
# As in the lecture each request goes out in one send() and each reply comes in
# one recv(1500): there is no delimiter, so this relies on one reply per recv().
# Run it:  python3 converter_client.py      (or: python3 converter_client.py HOST PORT)
import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
client_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client_sock.connect((host, port))
print(client_sock.recv(1500).decode("utf-8", "replace"))  # the greeting
for line in sys.stdin:
    request = line.rstrip("\r\n")
    if not request:
        continue
    client_sock.send(request.encode("utf-8"))
    reply = client_sock.recv(1500).decode("utf-8", "replace")
    if reply.startswith("E:"):
        print("error from the server:", reply[2:])  # an error reply: show it, carry on
    else:
        print(reply)
client_sock.send(b"C:")
client_sock.close()
