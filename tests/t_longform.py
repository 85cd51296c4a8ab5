"""The long form: methods, headers, bodies, ids, settled mode,
max_concurrency, the batch deadline, timings."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class LongForm(harness.TestCase):
    CONFIG = "[fanoutd]\nupstream_concurrency = 10\n"
    RESET = True

    def echo(self, **req):
        req.setdefault("url", self.up.url("/echo"))
        status, ans = self.fd.batch({"requests": [req]})
        self.assertEqual(status, 200, ans)
        return ans["results"][0]

    def test_post_body_arrives_as_sent(self):
        r = self.echo(method="post", body="a=1&b=\u00e9\n",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        b = r["body"]
        self.assertEqual(b["method"], "POST")
        self.assertEqual(b["body"], "a=1&b=\u00e9\n")
        self.assertEqual(b["headers"]["content-type"], "application/x-www-form-urlencoded")
        self.assertEqual(b["headers"]["content-length"], str(len("a=1&b=\u00e9\n".encode())))
        self.assertEqual(b["headers"]["host"], "127.0.0.1:%d" % self.up.port)
        self.assertTrue(b["headers"]["user-agent"].startswith("fanoutd/"))

    def test_json_body_sets_content_type(self):
        r = self.echo(method="PUT", json={"a": [1, 2, {"b": None}]})
        b = r["body"]
        self.assertEqual(b["method"], "PUT")
        self.assertEqual(json.loads(b["body"]), {"a": [1, 2, {"b": None}]})
        self.assertEqual(b["headers"]["content-type"], "application/json")
        r = self.echo(method="PATCH", json=[1], headers={"Content-Type": "application/vnd+json"})
        self.assertEqual(r["body"]["headers"]["content-type"], "application/vnd+json")
        self.assertEqual(r["body"]["method"], "PATCH")

    def test_body_with_delete_gets_content_length(self):
        r = self.echo(method="DELETE", body="gone")
        self.assertEqual((r["body"]["method"], r["body"]["body"]), ("DELETE", "gone"))
        self.assertEqual(r["body"]["headers"]["content-length"], "4")

    def test_methods(self):
        for m in ("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            self.assertEqual(self.echo(method=m)["body"]["method"], m)
        status, ans = self.fd.batch({"requests": [{"url": self.up.url("/json"),
                                                   "method": "HEAD"}]})
        r = ans["results"][0]
        self.assertEqual((status, r["status"], r["body"], r["encoding"]), (200, 200, "", "text"))

    def test_batch_headers_and_override(self):
        status, ans = self.fd.batch({
            "headers": {"Authorization": "Bearer one", "X-Batch": "b"},
            "requests": [self.up.url("/echo"),
                         {"url": self.up.url("/echo"), "headers": {"authorization": "Bearer two"}}]})
        self.assertEqual(status, 200, ans)
        h0 = ans["results"][0]["body"]["headers"]
        h1 = ans["results"][1]["body"]["headers"]
        self.assertEqual((h0["authorization"], h0["x-batch"]), ("Bearer one", "b"))
        self.assertEqual((h1["authorization"], h1["x-batch"]), ("Bearer two", "b"))

    def test_ids_echoed_in_results_and_errors(self):
        status, ans = self.fd.batch({"requests": [
            {"url": self.up.url("/json"), "id": "user-1"},
            {"url": self.up.url("/json"), "id": 42},
            self.up.url("/json")]})
        self.assertEqual([r.get("id") for r in ans["results"]], ["user-1", 42, None])
        status, ans = self.fd.batch({"requests": [
            {"url": self.up.url("/status/503"), "id": "bad"}]})
        self.assertEqual(ans["errors"][0]["id"], "bad")

    def test_validation_names_the_path(self):
        cases = [
            ({"requests": [{"url": self.up.url("/echo"), "headers": {"X-A": "a\r\nb"}}]},
             "requests[0].headers.X-A: CR, LF or NUL in header value"),
            ({"requests": [self.up.url("/json"), {"url": "ftp://x/"}]},
             'requests[1].url: unsupported scheme "ftp"'),
            ({"requests": [{"url": self.up.url("/echo"), "method": "BREW"}]},
             'requests[0].method: unsupported method "BREW" '
             "(GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)"),
            ({"requests": [{"url": self.up.url("/echo"), "body": "x", "json": 1}]},
             "requests[0]: give either body or json, not both"),
            ({"requests": [{"url": self.up.url("/echo"), "timeout_ms": -5}]},
             "requests[0].timeout_ms: -5 out of range 1..86400000"),
            ({"requests": [{"url": self.up.url("/echo"), "colour": "red"}]},
             'requests[0]: unknown key "colour"'),
            ({"requests": [], "mode": "some"}, 'mode: must be "all" or "settled"'),
            ({"requests": [], "max_concurrency": 0},
             "max_concurrency: 0 out of range 1..100000"),
            ({"requests": [], "extra": 1}, 'unknown key "extra"'),
            ({"requests": [{"url": self.up.url("/echo"), "headers": {"Content-Length": "3"}}]},
             "requests[0].headers.Content-Length: header is set by fanoutd"),
            ({"requests": [{"url": self.up.url("/echo"), "headers": {"X-N": 1}}]},
             "requests[0].headers.X-N: header value must be a string"),
            ({"requests": [{"url": self.up.url("/echo"), "headers": {"X-Z": "a\u0000b"}}]},
             "requests[0].headers.X-Z: CR, LF or NUL in header value"),
            ({"requests": [{"method": "GET"}]}, "requests[0]: missing url"),
        ]
        for payload, message in cases:
            status, ans = self.fd.batch(payload)
            self.assertEqual((status, ans), (400, {"ok": False, "error": "invalid_request",
                                                   "message": message}))
        self.assertEqual(self.up.stats()["requests"], 0)

    def test_settled_mode_reports_everything(self):
        port = harness.free_port()
        status, ans = self.fd.batch({"mode": "settled", "requests": [
            self.up.url("/json"),
            self.up.url("/status/500"),
            {"url": self.up.url("/hang"), "timeout_ms": 300},
            "http://127.0.0.1:%d/" % port,
            self.up.url("/delay/400")]})
        self.assertEqual(status, 200)
        self.assertIs(ans["ok"], False)
        r = ans["results"]
        self.assertEqual([x["index"] for x in r], [0, 1, 2, 3, 4])
        self.assertEqual(r[0]["status"], 200)
        self.assertEqual((r[1]["error"]["type"], r[1]["error"]["status"]), ("http_status", 500))
        self.assertEqual(r[1]["error"]["body"], "status 500\n")
        self.assertEqual((r[2]["error"]["type"], r[2]["error"]["phase"]), ("timeout", "response"))
        self.assertEqual(r[3]["error"]["type"], "connect")
        self.assertEqual(r[4]["body"], {"delay": 400})   # not cancelled by the failures
        for x in r:
            self.assertIn("timing", x)
        status, ans = self.fd.batch({"mode": "settled", "requests": [self.up.url("/json")]})
        self.assertIs(ans["ok"], True)

    def test_max_concurrency_lowers_the_limit_for_the_batch(self):
        t0 = time.time()
        status, ans = self.fd.batch({"max_concurrency": 2,
                                     "requests": [self.up.url("/delay/100")] * 10})
        self.assertEqual(status, 200)
        self.assertEqual(self.up.stats()["max_in_flight"], 2)
        self.assertGreater(time.time() - t0, 0.45)
        # and cannot raise it above the configured 10
        self.up.reset()
        status, ans = self.fd.batch({"max_concurrency": 50,
                                     "requests": [self.up.url("/delay/100")] * 30})
        self.assertEqual(self.up.stats()["max_in_flight"], 10)

    def test_batch_deadline_times_out_queued_and_in_flight(self):
        status, ans = self.fd.batch({"timeout_ms": 300, "max_concurrency": 1,
                                     "requests": [self.up.url("/delay/1000")] * 3})
        self.assertEqual(status, 502)
        phases = [(e["index"], e["type"], e["phase"]) for e in ans["errors"]]
        self.assertEqual(phases, [(0, "timeout", "response"), (1, "timeout", "queued"),
                                  (2, "timeout", "queued")])
        self.assertEqual([e.get("protocol") for e in ans["errors"]], ["http/1.1", None, None])
        self.assertEqual(ans["completed"] + ans["cancelled"], [])
        self.assertLess(ans["elapsed_ms"], 600)

    def test_timings_add_up(self):
        fd = self.fanoutd(config="[fanoutd]\nupstream_concurrency = 1\n")
        status, ans = fd.batch([self.up.url("/delay/100")] * 3)
        r = ans["results"]
        self.assertEqual(r[0]["reused"], False)
        self.assertLess(r[0]["timing"]["queued_ms"], 20)
        # the second one waited behind a limit of 1, then reused the connection
        self.assertGreater(r[1]["timing"]["queued_ms"], 90)
        self.assertGreater(r[2]["timing"]["queued_ms"], 190)
        self.assertEqual((r[1]["reused"], r[1]["timing"]["connect_ms"]), (True, 0))
        for x in r:
            t = x["timing"]
            # not "connect_ms > 0": a loopback connect can round to
            # 0.0 ms.  What must hold: nothing is negative, and the
            # connect lies within the time to the first byte (both
            # count from the slot), before the upstream's 100 ms wait
            for k in ("queued_ms", "connect_ms", "ttfb_ms", "total_ms"):
                self.assertGreaterEqual(t[k], 0, (k, t))
            self.assertLessEqual(t["connect_ms"] + 95, t["ttfb_ms"], t)
            self.assertGreaterEqual(t["ttfb_ms"], 95)
            # (valgrind translates each code path on its first run: slower)
            self.assertAlmostEqual(t["total_ms"], t["queued_ms"] + t["ttfb_ms"],
                                   delta=30 if harness.WRAPPER else 5)
            self.assertEqual(x["elapsed_ms"], t["total_ms"])

    def test_too_large_closes_the_connection(self):
        up = harness.Upstream()   # its own, so no other idle connections count
        fd = harness.Fanoutd(config="[fanoutd]\nmax_response_body = 64K\n")
        try:
            status, ans = fd.batch([up.url("/bytes/10000000"), up.url("/delay/3000")])
            e = ans["errors"][0]
            self.assertEqual(e["type"], "too_large")
            self.assertEqual(e["message"], "Content-Length over max_response_body (65536 bytes)")
            harness.wait_until(lambda: up.stats()["open_connections"] == 0, 2)
            self.assertEqual(up.stats()["open_connections"], 0)
        finally:
            fd.stop()
            up.stop()

    def test_batch_total_is_capped(self):
        fd = self.fanoutd(config="[fanoutd]\nmax_batch_response = 100K\n")
        status, ans = fd.batch([self.up.url("/bytes/40000")] * 3)
        self.assertEqual(status, 502)
        self.assertEqual(len(ans["errors"]), 1)
        e = ans["errors"][0]
        self.assertEqual(e["type"], "too_large")
        self.assertEqual(e["message"],
                         "bodies of the batch over max_batch_response (102400 bytes)")
        self.assertEqual(len(ans["completed"]) + len(ans["cancelled"]), 2)
        # under the cap the same batch succeeds
        status, ans = fd.batch([self.up.url("/bytes/40000")] * 2)
        self.assertEqual(status, 200)


if __name__ == "__main__":
    harness.main()
