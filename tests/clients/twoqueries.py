#!/usr/bin/python3
"""Two simple Query messages in one write, as clients that pipeline simple
queries send them (tokio-postgres, for one): the server answers each with its
own ReadyForQuery without reading in between.  No Debian-packaged client
writes them so, hence this one, on the standard library alone.

usage: twoqueries.py HOST PORT USER DBNAME ROUNDS FIRST_SQL SECOND_SQL
Each round sends FIRST_SQL and SECOND_SQL in one write and waits for both
answers; a round whose first query fails still runs the second.
"""
import socket
import struct
import sys


def message(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body


class Conn:
    def __init__(self, host, port, user, db):
        self.s = socket.create_connection((host, port))
        self.buf = b""
        params = b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
        self.s.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
        for kind, body in self.until_ready():
            if kind == b"R" and struct.unpack("!I", body[:4])[0] != 0:
                sys.exit("twoqueries: the server wants a password (trust auth expected)")
            if kind == b"E":
                sys.exit("twoqueries: the server refused: %r" % body)

    def until_ready(self):
        """the messages up to and with the next ReadyForQuery"""
        out = []
        while True:
            while len(self.buf) >= 5:
                kind = self.buf[:1]
                length = struct.unpack("!I", self.buf[1:5])[0]
                if len(self.buf) < 1 + length:
                    break
                out.append((kind, self.buf[5:1 + length]))
                self.buf = self.buf[1 + length:]
                if kind == b"Z":
                    return out
            data = self.s.recv(65536)
            if not data:
                sys.exit("twoqueries: the server closed the connection")
            self.buf += data

    def close(self):
        self.s.sendall(message(b"X", b""))
        self.s.close()


def main():
    if len(sys.argv) != 8:
        sys.exit(__doc__.split("\n\n")[1])
    host, port, user, db, rounds, first, second = sys.argv[1:]
    c = Conn(host, int(port), user, db)
    errors = 0
    for _ in range(int(rounds)):
        c.s.sendall(message(b"Q", first.encode() + b"\0") + message(b"Q", second.encode() + b"\0"))
        for _ in range(2):
            errors += sum(1 for kind, _ in c.until_ready() if kind == b"E")
    c.close()
    print("twoqueries: %s rounds, %d errors" % (rounds, errors))


main()
