"""The framework examples end to end: examples/python/flask_app.py (WSGI middleware) under
gunicorn, examples/python/starlette_app.py (ASGI mount) under uvicorn."""
import json
import os
import unittest

from pdw_testutil import ROOT, expected_rows, fixture
from test_servers import CURL, Server, delivery, have, post

EXAMPLES = os.environ.get("PDW_EXAMPLES") or os.path.join(ROOT, "examples", "python")


class Frameworks(unittest.TestCase):
    def serve(self, kind, app, module):
        if CURL is None:
            self.skipTest("curl is not installed")
        for m in (module, kind):
            if not have(m):
                self.skipTest("%s is not importable" % m)
        s = Server(kind, {"PDW_USER": "pipedrive", "PDW_PASSWORD": "s3cret"}, app=app,
                   cwd=EXAMPLES)
        self.addCleanup(s.stop)
        return s

    def check(self, s, hook_url):
        ok = [r["file"] for r in expected_rows() if r["result"] == "PDW_OK"]
        for name in ok:
            with self.subTest(fixture=name):
                status, body = post(hook_url, fixture(name))
                self.assertEqual(status, 200, body)
        status, _ = post(hook_url, delivery(7), password="nope")
        self.assertEqual(status, 401)
        status, page = post(s.base + "/", b"", method="GET")
        self.assertEqual(status, 200)
        self.assertGreaterEqual(json.loads(page)["events"], 1)   # the framework's own route

    def test_flask_under_gunicorn(self):
        s = self.serve("gunicorn", "flask_app:app", "flask")
        self.check(s, s.base + "/pipedrive")

    def test_starlette_under_uvicorn(self):
        s = self.serve("uvicorn", "starlette_app:app", "starlette")
        self.check(s, s.base + "/pipedrive/")


if __name__ == "__main__":
    unittest.main()
