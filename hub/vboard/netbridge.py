"""One TCP connection for the virtual board (run by vboard.mjs, CPython).

    python netbridge.py HOST PORT TIMEOUT_S

Connects, prints `OK` or `ERR <errno> <message>` on a line, then relays
stdin to the socket and the socket to stdout until either side closes.  The
board's `socket` module (vb_socket.py) talks to it through the glue."""
import os
import selectors
import socket
import sys


def main():
    host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    out = sys.stdout.buffer
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        out.write(f"ERR {e.errno or 110} {e.strerror or e}\n".encode())
        out.flush()
        return 1
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(True)
    s.settimeout(None)
    out.write(b"OK\n")
    out.flush()
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ)
    sel.register(0, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is s:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    return 0
                os.write(1, data)
            else:
                data = os.read(0, 65536)
                if not data:
                    s.close()
                    return 0
                s.sendall(data)


if __name__ == "__main__":
    sys.exit(main())
