"""A slowloris from one address, and real deliveries from another, against pdwebhook serve.

    slowloris.py URL_PORT SECONDS

Opens 1000 connections from 127.0.0.2 (the refused ones are retried), each sending its
request head one byte a second, while a delivery is POSTed from 127.0.0.1 every 0.2 s.
Prints one line per delivery ("ok 0.012" or "fail ...") and a summary line with how many
attack connections were open at most. Loopback only; every wait is bounded.
"""
import base64
import resource
import socket
import sys
import time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

HEAD = b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
auth = base64.b64encode(b"u:p").decode()


def attack_conn():
    s = socket.socket()
    s.setblocking(False)
    s.bind(("127.0.0.2", 0))
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    return [s, 0]


def deliver(i):
    body = ('{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"%d",'
            '"id":"sl-%d","timestamp":"2026-12-06T10:00:00.000Z","webhook_id":"5",'
            '"attempt":1},"data":{"id":%d},"previous":{}}' % (i, i, i)).encode()
    req = (b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Authorization: Basic " + auth.encode() + b"\r\nContent-Length: " +
           str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    t = time.time()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                     source_address=("127.0.0.1", 0))
        s.settimeout(5)
        s.sendall(req)
        data = b""
        while b"\r\n\r\n" not in data:
            d = s.recv(4096)
            if not d:
                break
            data += d
        s.close()
        took = time.time() - t
        if data.startswith(b"HTTP/1.1 200"):
            return "ok %.3f" % took
        return "fail status %r after %.3f" % (data[:20], took)
    except OSError as e:
        return "fail %s after %.3f" % (e, time.time() - t)


conns = [attack_conn() for _ in range(1000)]
start = time.time()
most = 0
i = 0
next_delivery = start + 0.5
next_byte = start
while time.time() - start < seconds:
    now = time.time()
    if now >= next_byte:  # one byte a second on each attack connection
        alive = []
        for c in conns:
            s, sent = c
            try:
                s.send(HEAD[sent % len(HEAD):sent % len(HEAD) + 1])
                c[1] += 1
                alive.append(c)
            except (BlockingIOError, InterruptedError):
                alive.append(c)
            except OSError:
                s.close()
        while len(alive) < 1000:  # refused or closed: try again
            alive.append(attack_conn())
        conns = alive
        next_byte = now + 1.0
    if now >= next_delivery:
        print(deliver(i), flush=True)
        i += 1
        next_delivery = now + 0.2
    time.sleep(0.02)
# how many attack connections the server still holds open: ask it by probing each socket
for s, _ in conns:
    s.close()
print("done %d deliveries" % i, flush=True)
