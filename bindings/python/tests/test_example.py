"""examples/python/receiver.py for real: started as a process on a free port, sent real
fixtures over HTTP with Basic auth; it answers 200 and its handlers run."""
import json
import os
import queue
import subprocess
import sys
import threading
import unittest
import urllib.error
import urllib.request

from pdw_testutil import PASSWORD, ROOT, USER, basic, fixture

EXAMPLE = os.environ.get("PDW_EXAMPLE") or os.path.join(ROOT, "examples", "python",
                                                        "receiver.py")


class Example(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(EXAMPLE):
            raise unittest.SkipTest("no example at %s" % EXAMPLE)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        cls.proc = subprocess.Popen(
            [sys.executable, EXAMPLE, "--port", "0", "--user", USER, "--password", PASSWORD],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        cls.lines = queue.Queue()
        cls.stderr = []
        threading.Thread(target=cls._pump, args=(cls.proc.stdout, cls.lines.put),
                         daemon=True).start()
        threading.Thread(target=cls._pump, args=(cls.proc.stderr, cls.stderr.append),
                         daemon=True).start()
        first = cls._line(cls)
        if not first.startswith("listening on "):
            cls.proc.kill()
            raise AssertionError("the example did not start: %r %s" % (first, cls.stderr))
        cls.url = first.split()[2]

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(10)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait()
        cls.proc.stdout.close()
        cls.proc.stderr.close()

    @staticmethod
    def _pump(stream, sink):
        for raw in iter(stream.readline, b""):
            sink(raw.decode("utf-8", "replace").rstrip("\n"))

    def _line(self, timeout=15):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no output from the example within %ss; stderr: %s"
                                 % (timeout, self.stderr))

    def post(self, body, auth=None, method="POST"):
        req = urllib.request.Request(self.url + "?source=test", data=body, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": auth or basic()})
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def test_1_real_fixture_answers_200_and_runs_the_handler(self):
        status, headers, body = self.post(fixture("v2-change.deal-pipedrive-docs.json"))
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"ok": True})
        self.assertEqual(headers.get("Content-Type"), "application/json")
        line = self._line()
        self.assertIn("event change.deal (delivered as change.deal, v2) id=8 attempt=1", line)
        self.assertIn("custom_fields.3d0fa3429dfa2d3dec265b4fc5dc8258ab66cdf3", line)

    def test_2_v1_fixture_and_stage_move(self):
        raw = json.loads(fixture("v1-updated.deal-django_pipedrive.json"))
        raw["current"]["stage_id"], raw["previous"]["stage_id"] = 3, 2
        status, _, _ = self.post(json.dumps(raw).encode())
        self.assertEqual(status, 200)
        lines = {self._line(), self._line()}
        self.assertIn("deal 999 moved from stage 2 to stage 3", lines)
        self.assertTrue(any(line.startswith("event change.deal (delivered as updated.deal, v1)")
                            for line in lines), lines)

    def test_3_retry_is_a_duplicate(self):
        status, _, body = self.post(fixture("v2-change.deal-pipedrive-docs.json"))
        self.assertEqual(status, 200)
        # Already accepted by test_1: answered, not handed on again. The next line printed
        # is the next event's.
        status, _, _ = self.post(fixture("v2-create.deal-pipedrive-docs.json"))
        self.assertEqual(status, 200)
        self.assertIn("event create.deal", self._line())

    def test_4_refusals(self):
        status, headers, body = self.post(fixture("v2-create.deal-pipedrive-docs.json"),
                                          auth=basic(USER, "wrong"))
        self.assertEqual(status, 401)
        self.assertIn("WWW-Authenticate", headers)
        self.assertEqual(json.loads(body)["error"], "PDW_EAUTHWRONG")
        status, headers, _ = self.post(None, method="GET")
        self.assertEqual((status, headers.get("Allow")), (405, "POST"))
        status, _, body = self.post(b"{not json")
        self.assertEqual((status, json.loads(body)["error"]), (400, "PDW_EJSON"))
        self.assertIsNone(self.proc.poll(), "the example is still running")


if __name__ == "__main__":
    unittest.main()
