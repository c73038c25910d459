# The live-coded upper/lowercase converter server (TCP, port 50000).
# Message format U|L:<message>: "U:" upper-cases, "L:" lower-cases, "C:" closes.
# As in the lecture, recv(2) reads the command and recv(1500) the message: TCP is
# a byte stream, so this only works while each request arrives in one piece
# (`socklab impair --slice 1` shows what happens when it does not).
# Each client gets a thread of its own, so one slow client does not block the others.
# Run it:  python3 converter_server.py      (or: python3 converter_server.py PORT)
import socket
import sys
import threading

GREETING = b"Hi I'm your upper/lowercase converter. Message format U|L:<message>"


def serve(conn, addr):
    print("connected:", addr)
    conn.send(GREETING)
    while True:
        command = conn.recv(2)  # the command: "U:", "L:" or "C:"
        if not command or command == b"C:":
            break  # the client closed the connection, or asked us to
        msg = conn.recv(1500)  # the message: whatever has arrived, up to 1500 bytes
        try:
            text = msg.decode("utf-8")
        except UnicodeDecodeError:
            conn.send(b"E:the message is not valid UTF-8")
            continue
        if command == b"U:":
            conn.send(text.upper().encode("utf-8"))
        elif command == b"L:":
            conn.send(text.lower().encode("utf-8"))
        else:
            conn.send(b"E:unknown command, use U:, L: or C:")
    conn.close()
    print("closed:", addr)


port = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
serv_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
serv_sock.bind(("", port))
serv_sock.listen(5)
print("listening on port", port)
while True:
    conn, addr = serv_sock.accept()
    threading.Thread(target=serve, args=(conn, addr), daemon=True).start()
