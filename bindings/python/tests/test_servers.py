"""The WSGI app under gunicorn and the ASGI app under uvicorn, over HTTP with curl, on
loopback: every fixture, a wrong password, a retry, oversized bodies, a handler that
raises; and the durable mode killed with SIGKILL after some 200s: after a restart on the
same journal, every acknowledged delivery is handed on.

Run with the interpreter that has gunicorn and uvicorn (Debian's python3-gunicorn,
python3-uvicorn: /usr/bin/python3, or a venv made from it with --system-site-packages);
the package and the library as installed (ctest installs both into a venv first).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from pdw_testutil import FIXTURES, HERE, PASSWORD, USER, expected_rows, fixture

CURL = shutil.which("curl")
MAX_BODY = 256 * 1024


def have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


class Server:
    """A server process on a listening socket made here (no port race), in its own
    process group so that SIGKILL takes the whole of it (gunicorn's master and worker)."""

    def __init__(self, kind, env, app=None, cwd=HERE, ready_path="/"):
        self.kind = kind
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        fd = self.sock.fileno()
        if kind == "gunicorn":
            cmd = [sys.executable, "-m", "gunicorn", "-b", "fd://%d" % fd, "-k", "gthread",
                   "--workers", "1", "--threads", "8", "--graceful-timeout", "5",
                   app or "server_app:wsgi"]
        else:
            cmd = [sys.executable, "-m", "uvicorn", "--fd", str(fd), "--no-access-log",
                   "--lifespan", "on", app or "server_app:asgi"]
        full = dict(os.environ)
        full.update(env)
        full["PYTHONPATH"] = cwd + os.pathsep + full.get("PYTHONPATH", "")
        self.errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=full, pass_fds=(fd,),
                                     stdout=self.errfile, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.base = "http://127.0.0.1:%d" % self.port
        self.url = self.base + "/"
        self._wait_ready(self.base + ready_path)

    def _wait_ready(self, url):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited: %s" % (self.kind, self.output()))
            try:
                status, _ = post(url, b"", method="GET", timeout=2)
                if status:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("%s not answering: %s" % (self.kind, self.output()))

    def output(self):
        self.errfile.seek(0)
        return self.errfile.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.sock.close()


def post(url, body, user=USER, password=PASSWORD, method="POST", timeout=10,
         content_type="application/json"):
    """curl: (status, body); status 0 when curl got no answer."""
    with tempfile.NamedTemporaryFile() as f, tempfile.NamedTemporaryFile() as out:
        f.write(body)
        f.flush()
        cmd = [CURL, "-sS", "-o", out.name, "-w", "%{http_code}", "-X", method,
               "--max-time", str(timeout), "-H", "Expect:"]
        if content_type:
            cmd += ["-H", "Content-Type: " + content_type]
        if user is not None:
            cmd += ["-u", "%s:%s" % (user, password)]
        if method == "POST":
            cmd += ["--data-binary", "@" + f.name]
        p = subprocess.run(cmd + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 5)
        code = p.stdout.decode().strip()
        return (int(code) if code.isdigit() else 0), open(out.name, "rb").read()


def delivery(n, entity_id=None):
    """A distinct v2 delivery (its own event id), from a real fixture."""
    d = json.loads(fixture("v2-change.deal-pipedrive-docs.json"))
    d["meta"]["id"] = "00000000-0000-4000-8000-%012d" % n
    d["meta"]["entity_id"] = str(entity_id if entity_id is not None else 100000 + n)
    if isinstance(d.get("data"), dict) and "id" in d["data"]:
        d["data"]["id"] = int(d["meta"]["entity_id"])
    return json.dumps(d).encode()


def read_log(path):
    try:
        with open(path) as f:
            return [line.rstrip("\n").split("\t") for line in f if line.strip()]
    except FileNotFoundError:
        return []


class Base:
    kind = None

    @classmethod
    def setUpClass(cls):
        if CURL is None:
            raise unittest.SkipTest("curl is not installed")
        if not have(cls.module):
            raise unittest.SkipTest("%s is not importable by %s" % (cls.module, sys.executable))

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pdw-py-")
        self.log = os.path.join(self.tmp, "handled.log")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, **env):
        env.setdefault("PDW_APP_LOG", self.log)
        env.setdefault("PDW_APP_MAX_BODY", str(MAX_BODY))
        server = Server(self.kind, {k: str(v) for k, v in env.items()})
        self.addCleanup(server.stop)
        return server

    # -- synchronous mode: the Receiver --
    def test_receiver_over_http(self):
        s = self.start()
        rows = expected_rows()
        self.assertGreaterEqual(len(rows), 40)
        for row in rows:
            with self.subTest(fixture=row["file"]):
                status, body = post(s.url, fixture(row["file"]))
                self.assertEqual(status, 200 if row["result"] == "PDW_OK" else 400,
                                 body)
        handled = read_log(self.log)
        self.assertTrue(handled, "no handler ran")
        self.assertTrue(all(h[0] for h in handled))

        # wrong password: 401 with the challenge
        body = delivery(1)
        status, answer = post(s.url, body, password="wrong")
        self.assertEqual(status, 401, answer)
        status, _ = post(s.url, body, user=None)
        self.assertEqual(status, 401)

        # accepted, then its retry: a duplicate (200, handed on once)
        status, first = post(s.url, body)
        self.assertEqual(status, 200, first)
        status, again = post(s.url, body)
        self.assertEqual(status, 200, again)
        self.assertIn(b"PDW_EDUPLICATE", again)
        key_lines = [h for h in read_log(self.log) if h[1] == "change.deal"]
        self.assertEqual(len(key_lines), len(set(h[0] for h in key_lines)),
                         "a delivery handed on twice")

        # oversized: a real body over the limit, and one only declared (never sent)
        status, answer = post(s.url, b" " * (MAX_BODY + 1024))
        self.assertEqual(status, 413, answer)
        self.assert_refused_unread(s)

        # a handler that raises: 200 (Pipedrive's ban counter is not fed), reported
        status, answer = post(s.url, delivery(2, entity_id=424242))
        self.assertEqual(status, 200, answer)
        deadline = time.monotonic() + 10
        while "boom-424242" not in s.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("boom-424242", s.output())

        # a request on another method: 405 without a body read
        status, _ = post(s.url, b"", method="GET")
        self.assertEqual(status, 405)

    def assert_refused_unread(self, s):
        """A Content-Length of 50 MB and no body sent: the 413 comes at once, so the
        adapter did not try to read the body."""
        c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        try:
            import base64
            auth = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
            c.sendall(("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                       "\r\nAuthorization: Basic %s\r\nContent-Length: 50000000\r\n\r\n{"
                       % auth).encode())
            data = b""
            while b"\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])
        finally:
            c.close()

    # -- durable mode: the Intake, killed --
    def test_durable_kill(self):
        spool = os.path.join(self.tmp, "spool")
        s = self.start(PDW_APP_SPOOL=spool, PDW_APP_SLOW_MS=150)
        results = {}
        lock = threading.Lock()
        stop = threading.Event()
        counter = iter(range(1000, 2000))

        def sender():
            while not stop.is_set():
                with lock:
                    n = next(counter)
                try:
                    status, _ = post(s.url, delivery(n), timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    status = 0
                with lock:
                    results[n] = status

        threads = [threading.Thread(target=sender) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if sum(1 for v in results.values() if v == 200) >= 30:
                    break
            time.sleep(0.02)
        s.stop(signal.SIGKILL)       # the server and its worker, mid-stream
        stop.set()
        for t in threads:
            t.join(15)
        acked = {n for n, v in results.items() if v == 200}
        self.assertGreaterEqual(len(acked), 30, results)
        handled_before = len(read_log(self.log))
        print("acked %d, handled before the kill %d" % (len(acked), handled_before))

        s2 = self.start(PDW_APP_SPOOL=spool)
        want = {"change.deal"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            handled = read_log(self.log)
            ids = {entity_of(h) for h in handled if h[1] in want}
            if {100000 + n for n in acked} <= ids:
                break
            time.sleep(0.1)
        handled = read_log(self.log)
        ids = {entity_of(h) for h in handled}
        missing = sorted(n for n in acked if 100000 + n not in ids)
        self.assertEqual(missing, [], "acknowledged but never handed on (%d handled before "
                         "the kill, %d after): %s" % (handled_before, len(handled),
                                                      s2.output()))
        print([l for l in s2.output().splitlines() if "recovered" in l])
        # a retry of an acknowledged delivery after the restart is a duplicate
        n = min(acked)
        status, answer = post(s2.url, delivery(n))
        self.assertEqual(status, 200)
        self.assertIn(b"PDW_EDUPLICATE", answer)


def entity_of(line):
    try:
        return int(line[2])
    except (IndexError, ValueError):
        return None


class Gunicorn(Base, unittest.TestCase):
    kind = "gunicorn"
    module = "gunicorn"


class Uvicorn(Base, unittest.TestCase):
    kind = "uvicorn"
    module = "uvicorn"


if __name__ == "__main__":
    unittest.main()
