"""Raw HTTP requests whose framing cannot be trusted, against pdwebhook serve.

    framing.py PORT BODY_FILE

For each case prints "CASE STATUS CLOSED SECONDS": the status line's code (or "none"), and
whether the server closed the connection after its answer (a second request smuggled on
it must not be answered). Every read is bounded (5 s).
"""
import base64
import socket
import sys
import time

port = int(sys.argv[1])
body = open(sys.argv[2], "rb").read()
auth = base64.b64encode(b"u:p").decode()
head = ("POST /hook HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n"
        "Content-Type: application/json\r\n" % auth)
smuggled = ("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").encode()


def probe(name, raw):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    t = time.time()
    s.sendall(raw)
    data = b""
    closed = "open"
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = "closed"
                break
            data += d
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = "closed"
    status = data[9:12].decode() if data.startswith(b"HTTP/1.1 ") else "none"
    answers = data.count(b"HTTP/1.1 ")
    print(name, status, closed, answers, "%.1f" % (time.time() - t), flush=True)


chunk = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
probe("cl_te", (head + "Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
                % len(body)).encode() + chunk + smuggled)
probe("cl_space", (head + "Content-Length : %d\r\n\r\n" % len(body)).encode() + body + smuggled)
probe("te_gzip", (head + "Transfer-Encoding: gzip\r\n\r\n").encode() + body)
big = b"x" * 5000
probe("chunked_big", (head + "Transfer-Encoding: chunked\r\n\r\n").encode() +
      b"%x\r\n" % len(big) + big + b"\r\n0\r\n\r\n")
probe("chunked_ok", (head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
      + chunk)
