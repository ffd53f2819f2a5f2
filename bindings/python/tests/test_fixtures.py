"""Every real fixture (tests/fixtures/) through pdwebhook.Receiver, checked against
tests/fixtures/expected.tsv (written by an independent Python oracle): what the C tests
check, seen from Python."""
import json
import os
import unittest

from pdwebhook import Receiver

from pdw_testutil import FIXTURES, PASSWORD, USER, expected_rows, fixture, headers


def dash(value):
    return None if value == "-" else value


class Fixtures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(FIXTURES, "expected.tsv")):
            raise unittest.SkipTest("no fixtures at %s" % FIXTURES)
        cls.rows = expected_rows()

    def test_there_are_fixtures(self):
        self.assertGreaterEqual(len(self.rows), 40)

    def test_every_fixture(self):
        for row in self.rows:
            with self.subTest(fixture=row["file"]):
                self.check(row)

    def check(self, row):
        body = fixture(row["file"])
        r = Receiver(credentials=[(USER, PASSWORD)])
        got = []

        @r.on("*.*")
        def every(event):
            got.append({
                "version": str(event.version),
                "event": event.name,
                "delivered": event.delivered_name,
                "entity_id": event.entity_id,
                "event_id": event.event_id,
                "webhook_id": event.webhook_id,
                "company_id": event.company_id,
                "user_id": event.user_id,
                "attempt": str(event.attempt),
                "timestamp_ms": None if event.timestamp_ms is None else str(event.timestamp_ms),
                "merge": "1" if event.is_merge else "0",
                "bulk": "1" if event.is_bulk else "0",
                "merged_from|to": "%s|%s" % (event.merged_from_id or "-",
                                             event.merged_to_id or "-"),
                "changed": ",".join(event.changed) or None,
                "payload": event.payload,
                "data": event.data,
                "previous": event.previous,
            })

        resp = r.handle("POST", headers(body), body)
        self.assertEqual(resp.reason_name, row["result"])
        if row["result"] != "PDW_OK":
            self.assertEqual(resp.status, 400)
            self.assertEqual(got, [])
            return
        self.assertEqual(resp.status, 200)
        self.assertEqual(len(got), 1)
        ev = got[0]
        for col in ("version", "event", "delivered", "entity_id", "event_id", "webhook_id",
                    "company_id", "user_id", "attempt", "timestamp_ms", "merge", "bulk",
                    "merged_from|to", "changed"):
            want = row[col] if col == "merged_from|to" else dash(row[col])
            self.assertEqual(ev[col], want, col)
        whole = json.loads(body)
        self.assertEqual(ev["payload"], whole)
        section = whole.get("data" if ev["version"] == "2" else "current")
        if isinstance(section, list):
            section = section[0] if section else None
        self.assertEqual(ev["data"], section)
        self.assertTrue(ev["data"] is None or isinstance(ev["data"], dict))
        section = whole.get("previous")
        if ev["version"] == "1" and isinstance(section, list):
            section = section[0] if section else None
        self.assertEqual(ev["previous"], section)
        self.assertTrue(ev["previous"] is None or isinstance(ev["previous"], dict))


if __name__ == "__main__":
    unittest.main()
