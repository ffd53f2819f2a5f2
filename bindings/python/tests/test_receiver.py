"""pdwebhook.Receiver over the real library: routing, filters, the status policy, dedup,
handler failures (exceptions never reach C), event lifetime, threads."""
import email.message
import gc
import json
import threading
import unittest

import pdwebhook
from pdwebhook import PdwError, Receiver

from pdw_testutil import PASSWORD, USER, basic, fixture, headers

DEAL = "v2-change.deal-pipedrive-docs.json"


def v2_deal(event_id="df47d877-b58c-4886-91cd-1aa83e1d7366", previous=None, entity_id="8"):
    """The real v2 change.deal fixture, with its own event id (a distinct delivery)."""
    body = json.loads(fixture(DEAL))
    body["meta"]["id"] = event_id
    body["meta"]["entity_id"] = entity_id
    if previous is not None:
        body["previous"] = previous
    return json.dumps(body).encode()


def receiver(**kw):
    kw.setdefault("credentials", [(USER, PASSWORD)])
    return Receiver(**kw)


def post(r, body, **kw):
    return r.handle("POST", headers(body, **kw), body)


class Routing(unittest.TestCase):
    def test_accepts_a_real_fixture_and_runs_the_handler(self):
        r = receiver()
        seen = []

        @r.on("updated.deal")   # v1 words match the v2 delivery
        def deal(event):
            seen.append((event.name, event.delivered_name, event.entity_id, event.version,
                         event.object, event.action, event.attempt, event.webhook_id,
                         event.company_id, event.user_id, event.change_source,
                         event.timestamp_ms, event.is_bulk, event.is_merge))

        status, hdrs, body = post(r, fixture(DEAL))
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"ok": True})
        self.assertIn(("Content-Type", "application/json"), hdrs)
        self.assertEqual(seen, [("change.deal", "change.deal", "8", 2, "deal", "change", 1,
                                 "4710827", "8087566", "12415231", "app", 1669302715724,
                                 False, False)])

    def test_response_details(self):
        r = receiver()
        r.on("*.*", lambda e: None)
        resp = post(r, fixture(DEAL))
        self.assertTrue(resp.ok)
        self.assertEqual(resp.reason, 0)
        self.assertEqual(resp.reason_name, "PDW_OK")
        self.assertEqual(resp.event, "change.deal")
        self.assertTrue(resp.delivery_key.startswith("2:deal:change:"))
        self.assertEqual((resp.handlers_matched, resp.handlers_failed), (1, 0))
        self.assertEqual((resp.webhook_id, resp.attempt), ("4710827", 1))
        self.assertEqual(resp.errors, [])
        self.assertEqual(len(resp), 3)

    def test_field_filter(self):
        r = receiver()
        moved = []
        r.on("change.deal", lambda e: moved.append(e.entity_id), changed="stage_id")
        r.on("change.deal", lambda e: moved.append("custom"), changed="custom_fields")
        post(r, v2_deal("e1", previous={"stage_id": 1}, entity_id="41"))
        post(r, v2_deal("e2", previous={"title": "x"}, entity_id="42"))
        post(r, fixture(DEAL))   # a custom field changed
        self.assertEqual(moved, ["41", "custom"])

    def test_event_fields(self):
        r = receiver()
        got = {}

        @r.on("change.deal")
        def deal(event):
            got["changed"] = event.changed
            got["custom"] = event.has_changed("custom_fields")
            got["stage"] = event.has_changed("stage_id")
            got["data"] = event.data
            got["previous"] = event.previous
            got["payload"] = event.payload
            got["body"] = event.body
            got["time"] = event.timestamp
            got["event_id"] = event.event_id
            got["correlation_id"] = event.correlation_id
            got["key"] = event.delivery_key
            got["merged"] = (event.merged_from_id, event.merged_to_id)

        raw = fixture(DEAL)
        post(r, raw)
        whole = json.loads(raw)
        self.assertEqual(got["changed"],
                         ("custom_fields.3d0fa3429dfa2d3dec265b4fc5dc8258ab66cdf3",))
        self.assertTrue(got["custom"])
        self.assertFalse(got["stage"])
        self.assertEqual(got["data"], whole["data"])
        self.assertEqual(got["previous"], whole["previous"])
        self.assertEqual(got["payload"], whole)
        self.assertEqual(got["body"], raw)
        self.assertEqual(got["time"].isoformat(), "2022-11-24T15:11:55.724000+00:00")
        self.assertEqual(got["event_id"], "df47d877-b58c-4886-91cd-1aa83e1d7366")
        self.assertEqual(got["correlation_id"], "121e5331-7ec6-4af8-9994-0e52fb489044")
        self.assertTrue(got["key"].startswith("2:deal:change:df47d877"))
        self.assertEqual(got["merged"], (None, None))

    def test_v1_data_is_current_and_delete_has_none(self):
        r = receiver()
        got = []
        r.on("*.*", lambda e: got.append((e.version, e.data, e.previous)))
        raw = fixture("v1-updated.deal-django_pipedrive.json")
        post(r, raw)
        post(r, fixture("v2-delete.deal-pipedrive-docs.json"))
        v1 = json.loads(raw)
        self.assertEqual(got[0], (1, v1["current"], v1["previous"]))
        self.assertEqual(got[1][0], 2)
        self.assertIsNone(got[1][1])

    def test_handlers_of_one_delivery_share_the_event(self):
        r = receiver()
        events = []
        r.on("*.deal", events.append)
        r.on("change.*", events.append)
        post(r, fixture(DEAL))
        self.assertEqual(len(events), 2)
        self.assertIs(events[0], events[1])

    def test_event_is_invalid_after_its_handler(self):
        r = receiver()
        kept = []
        r.on("*.*", kept.append)
        post(r, fixture(DEAL))
        with self.assertRaises(RuntimeError):
            kept[0].name
        with self.assertRaises(RuntimeError):
            kept[0].data
        self.assertIn("outside", repr(kept[0]))

    def test_unhandled_fallback(self):
        r = receiver()
        got = []
        r.on("*.person", lambda e: got.append("person"))
        r.on_unhandled(lambda e: got.append("fallback " + e.name))
        post(r, fixture(DEAL))
        self.assertEqual(got, ["fallback change.deal"])

    def test_decorator_returns_the_function_and_counts(self):
        r = receiver()

        @r.on("added.deal")
        def f(event):
            pass

        self.assertTrue(callable(f))
        r.on("*.*", f)
        self.assertEqual(r.handler_count, 2)

    def test_callbacks_survive_garbage_collection(self):
        r = receiver()
        seen = []

        def register():
            r.on("*.*", lambda e: seen.append(e.name))
        register()
        gc.collect()
        post(r, fixture(DEAL))
        self.assertEqual(seen, ["change.deal"])

    def test_registration_errors(self):
        r = receiver()
        with self.assertRaises(PdwError) as cm:
            r.on("nonsense", lambda e: None)
        self.assertEqual(cm.exception.name, "PDW_EPATTERN")
        post(r, fixture(DEAL))
        with self.assertRaises(PdwError) as cm:
            r.on("*.*", lambda e: None)
        self.assertEqual(cm.exception.name, "PDW_EFROZEN")


class Policy(unittest.TestCase):
    def test_status_table(self):
        r = receiver()
        body = fixture(DEAL)
        cases = [
            (r.handle("POST", headers(body, auth=False), body), 401, "PDW_EAUTHMISSING"),
            (r.handle("POST", headers(body, auth=basic(USER, "wrong")), body), 401,
             "PDW_EAUTHWRONG"),
            (r.handle("GET", headers(body), body), 405, "PDW_EMETHOD"),
            (r.handle("POST", headers(body, content_type="text/plain"), body), 415,
             "PDW_EMEDIATYPE"),
            (post(r, b"{not json"), 400, "PDW_EJSON"),
            (post(r, b'{"meta":{}}\x00'), 400, None),
            (post(r, b'{"a":1}'), 400, "PDW_ENOMETA"),
        ]
        for resp, status, name in cases:
            with self.subTest(expect=status, reason=name):
                self.assertEqual(resp.status, status)
                if name:
                    self.assertEqual(resp.reason_name, name)
                self.assertEqual(json.loads(resp.body)["ok"], False)
        self.assertIn("WWW-Authenticate", dict(cases[0][0].headers))
        self.assertEqual(dict(cases[2][0].headers).get("Allow"), "POST")

    def test_wrong_credentials_status_403(self):
        r = receiver(wrong_credentials_status=403)
        body = fixture(DEAL)
        self.assertEqual(r.handle("POST", headers(body, auth=basic("x", "y")), body).status, 403)

    def test_duplicate_delivery_is_answered_once(self):
        r = receiver()
        runs = []
        r.on("*.*", runs.append)
        first, second = post(r, fixture(DEAL)), post(r, fixture(DEAL))
        self.assertEqual((first.status, second.status), (200, 200))
        self.assertEqual(second.reason_name, "PDW_EDUPLICATE")
        self.assertEqual(len(runs), 1)

    def test_dedup_can_be_disabled(self):
        r = receiver(disable_dedup=True)
        runs = []
        r.on("*.*", runs.append)
        post(r, fixture(DEAL))
        post(r, fixture(DEAL))
        self.assertEqual(len(runs), 2)

    def test_dedup_ttl_uses_the_clock(self):
        now = [1000]
        r = receiver(dedup_ttl_ms=50, clock=lambda: now[0])
        runs = []
        r.on("*.*", runs.append)
        post(r, fixture(DEAL))
        post(r, fixture(DEAL))
        now[0] += 100
        post(r, fixture(DEAL))
        self.assertEqual(len(runs), 2)

    def test_check_head(self):
        r = receiver(max_body=1000)
        self.assertIsNone(r.check_head("POST", headers(b"x" * 10)))
        big = r.check_head("POST", [("Content-Type", "application/json"),
                                    ("Authorization", basic()),
                                    ("Content-Length", str(2 << 30))])
        self.assertEqual((big.status, big.reason_name), (413, "PDW_ETOOLARGE"))
        self.assertEqual(r.check_head("PUT", headers(b"")).status, 405)

    def test_query_token(self):
        r = Receiver(query_token="t0k/en", query_token_name="key")
        body = fixture(DEAL)
        h = headers(body, auth=False)
        self.assertEqual(r.handle("POST", h, body, query="key=t0k%2Fen").status, 200)
        self.assertEqual(r.handle("POST", h, body, query="?key=nope").status, 401)
        self.assertEqual(r.handle("POST", h, body).status, 401)

    def test_headers_as_dict_and_http_message(self):
        r = receiver(disable_dedup=True)
        body = fixture(DEAL)
        as_dict = dict(headers(body))
        msg = email.message.Message()
        for k, v in headers(body):
            msg[k] = v
        self.assertEqual(r.handle("POST", as_dict, body).status, 200)
        self.assertEqual(r.handle("POST", msg, body).status, 200)
        self.assertEqual(r.handle(b"POST", [(k.encode(), v.encode()) for k, v in headers(body)],
                                  body.decode()).status, 200)
        # A repeated Authorization header is ambiguous, and refused.
        msg["Authorization"] = basic()
        self.assertEqual(r.handle("POST", msg, body).status, 401)

    def test_credentials_refused_by_the_library(self):
        with self.assertRaises(PdwError) as cm:
            Receiver()
        self.assertEqual(cm.exception.name, "PDW_ENOAUTH")
        with self.assertRaises(PdwError) as cm:
            Receiver(credentials=[("us:er", "pw")])
        self.assertEqual(cm.exception.name, "PDW_EINVAL")
        self.assertNotIn("pw", str(cm.exception))
        self.assertEqual(Receiver(insecure_no_auth=True).handle(
            "POST", headers(fixture(DEAL), auth=False), fixture(DEAL)).status, 200)
        single = Receiver(credentials=(USER, PASSWORD))   # one pair without its list
        self.assertEqual(post(single, fixture(DEAL)).status, 200)

    def test_closed_receiver(self):
        r = receiver()
        r.close()
        r.close()
        with self.assertRaises(ValueError):
            post(r, fixture(DEAL))
        with receiver() as r2:
            self.assertEqual(post(r2, fixture(DEAL)).status, 200)


class HandlerErrors(unittest.TestCase):
    def test_exception_is_a_handler_error_not_a_crash(self):
        r = receiver()
        ran = []

        @r.on("change.deal")
        def broken(event):
            raise ValueError("boom")

        r.on("*.*", lambda e: ran.append(e.name))   # runs anyway
        with self.assertLogs("pdwebhook", "ERROR") as logs:
            resp = post(r, fixture(DEAL))
        self.assertEqual(resp.status, 200)            # the default policy
        self.assertEqual(resp.reason_name, "PDW_EHANDLER")
        self.assertEqual((resp.handlers_matched, resp.handlers_failed), (2, 1))
        self.assertEqual(resp.handler_rc, 1)
        self.assertEqual(ran, ["change.deal"])
        self.assertEqual(len(resp.errors), 1)
        e = resp.errors[0]
        self.assertIsInstance(e.exception, ValueError)
        self.assertIsNotNone(e.exception.__traceback__)
        self.assertEqual((e.pattern, e.handler, e.event_name), ("change.deal", broken,
                                                                "change.deal"))
        self.assertEqual(r.last_errors, resp.errors)
        self.assertIn("boom", "\n".join(logs.output))
        # The next request starts clean.
        self.assertEqual(post(r, fixture("v2-create.deal-pipedrive-docs.json")).errors, [])
        self.assertEqual(r.last_errors, [])

    def test_handler_error_status_500_releases_the_claim(self):
        r = receiver(handler_error_status=500)
        calls = []

        @r.on("*.*")
        def flaky(event):
            calls.append(event.attempt)
            if len(calls) == 1:
                raise RuntimeError("first time fails")

        with self.assertLogs("pdwebhook", "ERROR"):
            first = post(r, fixture(DEAL))
        retry = post(r, fixture(DEAL))
        self.assertEqual((first.status, retry.status), (500, 200))
        self.assertEqual(retry.reason_name, "PDW_OK")
        self.assertEqual(len(calls), 2)

    def test_keyboard_interrupt_is_reraised_after_the_request(self):
        r = receiver()

        @r.on("*.*")
        def stop(event):
            if event.event_id != "next":
                raise KeyboardInterrupt()

        with self.assertRaises(KeyboardInterrupt):
            post(r, fixture(DEAL))
        self.assertIsInstance(r.last_errors[0].exception, KeyboardInterrupt)
        self.assertEqual(post(r, v2_deal("next")).status, 200)   # still usable

    def test_accept_hook_then_dispatch_body(self):
        queue = []
        fail = [True]

        def accept(event):
            if fail[0]:
                fail[0] = False
                raise OSError("disk full")
            queue.append(event.body)

        r = receiver(accept=accept, retry_after_seconds=7)
        done = []
        r.on("change.deal", lambda e: done.append(e.entity_id))
        with self.assertLogs("pdwebhook", "ERROR"):
            refused = post(r, fixture(DEAL))
        self.assertEqual(refused.status, 503)
        self.assertEqual(dict(refused.headers).get("Retry-After"), "7")
        self.assertIsInstance(refused.errors[0].exception, OSError)
        self.assertEqual(refused.errors[0].pattern, "accept")
        accepted = post(r, fixture(DEAL))          # the retry: the claim was released
        self.assertEqual(accepted.status, 200)
        self.assertEqual(done, [])                 # queued, not run
        result = r.dispatch_body(queue[0])
        self.assertEqual((result.rc, result.matched, result.failed), (0, 1, 0))
        self.assertEqual(done, ["8"])
        with self.assertRaises(PdwError) as cm:
            r.dispatch_body(b"[]")
        self.assertEqual(cm.exception.name, "PDW_ENOTOBJECT")

    def test_accept_deferred_then_confirm_or_release(self):
        keys = []

        def accept(event):
            keys.append(event.delivery_key)
            return pdwebhook.ACCEPT_DEFERRED

        r = receiver(accept=accept, retry_after_seconds=7)
        first = json.loads(fixture(DEAL))
        self.assertEqual(post(r, json.dumps(first)).status, 200)
        retry = dict(first, meta=dict(first["meta"], attempt=2))
        pending = post(r, json.dumps(retry))       # still in flight: come back later
        self.assertEqual(pending.status, 503)
        self.assertEqual(dict(pending.headers).get("Retry-After"), "7")
        self.assertIn("PDW_EINFLIGHT", pending.body.decode())
        r.release(keys[0])                         # the commit failed
        self.assertEqual(post(r, json.dumps(retry)).status, 200)
        self.assertEqual(len(keys), 2)             # handed on again
        r.confirm(keys[1])                         # now it is safe
        dup = post(r, json.dumps(retry))
        self.assertEqual(dup.status, 200)
        self.assertIn("PDW_EDUPLICATE", dup.body.decode())
        self.assertEqual(len(keys), 2)
        with self.assertRaises(PdwError):
            r.confirm("no-such-key")

    def test_inflight_lease_frees_a_claim_never_settled(self):
        now = [1000000]
        keys = []

        def accept(event):
            keys.append(event.delivery_key)
            return pdwebhook.ACCEPT_DEFERRED          # and never settled: a crash

        first = json.loads(fixture(DEAL))
        retry = json.dumps(dict(first, meta=dict(first["meta"], attempt=2)))
        for lease, expect in ((0, 60000), (5000, 5000)):
            r = receiver(accept=accept, clock=lambda: now[0], inflight_lease_ms=lease)
            start = now[0]
            self.assertEqual(post(r, json.dumps(first)).status, 200)
            now[0] = start + expect - 1               # within the lease: in flight
            self.assertIn("PDW_EINFLIGHT", post(r, retry).body.decode())
            now[0] = start + expect                   # after it: taken as new
            self.assertEqual(post(r, retry).reason_name, "PDW_OK")
            r.confirm(keys[-1])                       # confirmed: for the dedup TTL
            now[0] = start + 10 * expect
            self.assertEqual(post(r, retry).reason_name, "PDW_EDUPLICATE")
            r.close()
            now[0] += 100 * expect
        self.assertEqual(len(keys), 4)

    def test_dispatch_body_reports_handler_errors(self):
        r = receiver()
        r.on("*.*", lambda e: 1 / 0)
        with self.assertLogs("pdwebhook", "ERROR"):
            result = r.dispatch_body(fixture(DEAL))
        self.assertEqual(result.rc, pdwebhook._lib.PDW_EHANDLER)
        self.assertEqual(result.failed, 1)
        self.assertIsInstance(result.errors[0].exception, ZeroDivisionError)


class Threads(unittest.TestCase):
    def test_concurrent_requests(self):
        r = receiver()
        lock = threading.Lock()
        seen = set()

        @r.on("change.deal")
        def deal(event):
            if event.entity_id.endswith("7"):
                raise ValueError(event.entity_id)
            with lock:
                seen.add(event.event_id)

        failures = []

        def worker(n):
            for i in range(25):
                resp = post(r, v2_deal("t%d-%d" % (n, i), entity_id="%d%d" % (n, i)))
                errs = r.last_errors
                bad = i % 10 == 7
                if resp.status != 200 or len(errs) != (1 if bad else 0) or \
                        (bad and str(errs[0].exception) != "%d%d" % (n, i)):
                    failures.append((n, i, resp, errs))

        logger = pdwebhook.log
        level, logger.disabled = logger.level, True
        try:
            threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            logger.disabled = False
            logger.setLevel(level)
        self.assertEqual(failures, [])
        self.assertEqual(len(seen), 8 * 25 - 8 * 2)


if __name__ == "__main__":
    unittest.main()
