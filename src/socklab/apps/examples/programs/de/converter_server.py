# Der im Live-Coding geschriebene Groß-/Kleinschreibungs-Konverter (TCP, Port 50000).
# Nachrichtenformat U|L:<nachricht>: "U:" macht groß, "L:" klein, "C:" schließt.
# Wie in der Vorlesung liest recv(2) das Kommando und recv(1500) die Nachricht: TCP
# ist ein Bytestrom, das klappt also nur, solange jede Anfrage am Stück ankommt
# (`socklab impair --slice 1` zeigt dir, was passiert, wenn nicht).
# Jeder Client bekommt einen eigenen Thread, damit ein langsamer die anderen nicht aufhält.
# Starte ihn mit:  python3 converter_server.py      (oder: python3 converter_server.py PORT)
import socket
import sys
import threading

GREETING = b"Hi I'm your upper/lowercase converter. Message format U|L:<message>"


def serve(conn, addr):
    print("connected:", addr)
    conn.send(GREETING)
    while True:
        command = conn.recv(2)  # das Kommando: "U:", "L:" oder "C:"
        if not command or command == b"C:":
            break  # der Client hat geschlossen oder bittet darum
        msg = conn.recv(1500)  # die Nachricht: was bisher angekommen ist, bis zu 1500 Bytes
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
