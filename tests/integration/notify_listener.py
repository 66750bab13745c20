"""Receivers for the notify tests: a syslog UDP and a syslog TCP listener and an HTTP webhook listener on
127.0.0.1, each on a port the system picks. Run it where the scan runs (the lab's scanner namespace):

    ip netns exec NS python3 -m tests.integration.notify_listener OUT.jsonl

It prints one JSON line with the ports ({"udp": P, "tcp": P, "http": P}), then appends one JSON line per
message received to OUT.jsonl: {"via": "udp"|"tcp"|"http", "path": ..., "data": "<the message text>"}.
It stops on SIGTERM.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def record(out: str, via: str, data: bytes, path: str = "") -> None:
    line = json.dumps({"via": via, "path": path, "data": data.decode("utf-8", "replace")})
    with LOCK, open(out, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def udp_loop(sock: socket.socket, out: str) -> None:
    while True:
        data = sock.recv(65535)
        record(out, "udp", data)


def tcp_conn(conn: socket.socket, out: str) -> None:
    buf = b""
    with conn:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
            while b" " in buf:  # RFC 6587 octet counting: "LEN SP MSG"
                n, _, rest = buf.partition(b" ")
                if not n.isdigit() or len(rest) < int(n):
                    break
                record(out, "tcp", rest[: int(n)])
                buf = rest[int(n):]


def tcp_loop(sock: socket.socket, out: str) -> None:
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=tcp_conn, args=(conn, out), daemon=True).start()


def main() -> None:
    out = sys.argv[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    udp.bind(("127.0.0.1", 0))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            record(out, "http", self.rfile.read(min(n, 1 << 22)), self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=udp_loop, args=(udp, out), daemon=True).start()
    threading.Thread(target=tcp_loop, args=(tcp, out), daemon=True).start()
    print(json.dumps({"udp": udp.getsockname()[1], "tcp": tcp.getsockname()[1], "http": http.server_address[1]}),
          flush=True)
    http.serve_forever()


if __name__ == "__main__":
    main()
