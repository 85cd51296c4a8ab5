"""Observability: GET /metrics parsed with a real Prometheus text parser
(Debian's python3-prometheus-client), its counters moving by exactly what
the test's batches imply, the in-flight and queued gauges during a batch,
the JSON access log line per batch, and /metrics behind the bearer token."""

import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OUTCOMES = ("ok", "failed", "settled", "draining", "client_gone")
REJECTED = ("invalid_request", "request_too_large", "unauthorized", "overloaded",
            "draining", "not_found", "method_not_allowed")
UPSTREAM_OUTCOMES = ("ok", "cancelled", "http_status", "rate_limited", "timeout",
                     "connect", "dns", "tls", "protocol", "too_large", "forbidden",
                     "circuit_open")
# family name (as the parser gives it, counters without _total) -> type
FAMILIES = {
    "fanoutd_build_info": "gauge",
    "fanoutd_uptime_seconds": "gauge",
    "fanoutd_batches": "counter",
    "fanoutd_rejected_requests": "counter",
    "fanoutd_client_request_bytes": "counter",
    "fanoutd_client_answer_bytes": "counter",
    "fanoutd_upstream_response_bytes": "counter",
    "fanoutd_upstream_request_duration_seconds": "histogram",
    "fanoutd_upstream_queue_wait_seconds": "histogram",
    "fanoutd_queued_requests": "gauge",
    "fanoutd_in_flight_requests": "gauge",
    "fanoutd_dns_queries": "counter",
    "fanoutd_live_upstreams": "gauge",
    "fanoutd_upstream_series": "gauge",
    "fanoutd_upstream_requests": "counter",
    "fanoutd_upstream_limit": "gauge",
    "fanoutd_upstream_in_flight": "gauge",
    "fanoutd_upstream_queued": "gauge",
    "fanoutd_upstream_idle_connections": "gauge",
    "fanoutd_upstream_connections_opened": "counter",
    "fanoutd_upstream_tls_handshakes": "counter",
    "fanoutd_upstream_retries": "counter",
    "fanoutd_upstream_paused_seconds": "counter",
    "fanoutd_upstream_retry_budget_exhausted": "counter",
    "fanoutd_upstream_breaker_state": "gauge",
    "fanoutd_upstream_breaker_trips": "counter",
}
# reason label of fanoutd_upstream_retries_total
RETRY_REASONS = ("connect", "timeout", "429", "500", "502", "503", "504", "other_status")
LOG_KEYS = ["time", "client", "n", "outcome", "status", "elapsed_ms"]
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Metrics:
    """One scrape: families by name, sample values by (name, labels)."""

    def __init__(self, text):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.values = {}
        for f in self.families.values():
            for s in f.samples:
                self.values[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(self, name, **labels):
        return self.values[(name, tuple(sorted(labels.items())))]

    def buckets(self, name):
        """[(le, cumulative count)] in the order of the exposition."""
        return [(s.labels["le"], s.value) for s in self.families[name].samples
                if s.name == name + "_bucket"]


def scrape(fd, headers=None):
    status, hdrs, body = fd.request("GET", "/metrics", headers=headers)
    assert status == 200, (status, body)
    assert hdrs["content-type"] == CONTENT_TYPE, hdrs
    return Metrics(body.decode())


def access_lines(fd):
    """The access log lines of fanoutd's log, parsed."""
    return [json.loads(line) for line in fd.read_log().splitlines() if line.startswith("{")]


def wait_lines(fd, n, timeout=5):
    harness.wait_until(lambda: len(access_lines(fd)) >= n, timeout)
    return access_lines(fd)


class TestMetrics(harness.TestCase):
    CONFIG = "[fanoutd]\nupstream_concurrency = 2\n"
    PER_TEST = True

    def setUp(self):
        super().setUp()
        self.key = "http://127.0.0.1:%d" % self.up.port

    def test_families_parse_with_their_types(self):
        m = scrape(self.fd)
        for name in ("fanoutd_upstream_requests", "fanoutd_upstream_in_flight"):
            self.assertIn(name, m.families)   # present before any upstream exists
        fd_types = {n: m.families[n].type for n in FAMILIES if n in m.families}
        self.assertEqual(fd_types, FAMILIES)
        for f in m.families.values():
            self.assertTrue(f.name.startswith("fanoutd_"), f.name)
            self.assertTrue(f.documentation, f.name)
        [info] = m.families["fanoutd_build_info"].samples
        self.assertEqual(sorted(info.labels), ["systemd", "version"])
        self.assertRegex(info.labels["version"], r"^\d+\.\d+")
        self.assertEqual(info.value, 1)
        self.assertGreater(m.get("fanoutd_uptime_seconds"), 0)
        for o in OUTCOMES:
            self.assertEqual(m.get("fanoutd_batches_total", outcome=o), 0)
        for e in REJECTED:
            self.assertEqual(m.get("fanoutd_rejected_requests_total", error=e), 0)
        self.assertEqual(m.get("fanoutd_upstream_request_duration_seconds_count"), 0)
        self.assertEqual(m.get("fanoutd_live_upstreams"), 0)
        self.assertEqual(m.get("fanoutd_upstream_series"), 0)

    def test_counters_move_by_what_the_batches_imply(self):
        before = scrape(self.fd)
        ok_body = json.dumps([self.up.url("/json")] * 5)
        status, _, ok_answer = self.fd.request("POST", "/v1/batch", ok_body)
        self.assertEqual(status, 200)
        bad_body = json.dumps([self.up.url("/status/500")])
        status, _, bad_answer = self.fd.request("POST", "/v1/batch", bad_body)
        self.assertEqual(status, 502)
        m = scrape(self.fd)

        self.assertEqual({o: m.get("fanoutd_batches_total", outcome=o) for o in OUTCOMES},
                         {"ok": 1, "failed": 1, "settled": 0, "draining": 0,
                          "client_gone": 0})
        want = {o: 0 for o in UPSTREAM_OUTCOMES}
        want.update(ok=5, http_status=1)
        self.assertEqual({o: m.get("fanoutd_upstream_requests_total", upstream=self.key,
                                   outcome=o) for o in UPSTREAM_OUTCOMES}, want)
        for h in ("fanoutd_upstream_request_duration_seconds",
                  "fanoutd_upstream_queue_wait_seconds"):
            self.assertEqual(m.get(h + "_count"), 6)
            buckets = m.buckets(h)
            self.assertEqual(buckets[-1], ("+Inf", 6))
            bounds = [float(le) for le, _ in buckets]
            self.assertEqual(bounds, sorted(bounds))
            counts = [c for _, c in buckets]
            self.assertEqual(counts, sorted(counts))   # cumulative
            self.assertGreaterEqual(m.get(h + "_sum"), 0)
        self.assertGreater(m.get("fanoutd_upstream_request_duration_seconds_sum"), 0)
        # bytes: exactly the bodies posted and the answers sent; at least
        # the upstream bodies (5 x {"name":"Ada",...} and "status 500\n")
        grew = lambda name: m.get(name) - before.get(name)   # noqa: E731
        self.assertEqual(grew("fanoutd_client_request_bytes_total"),
                         len(ok_body) + len(bad_body))
        self.assertEqual(grew("fanoutd_client_answer_bytes_total"),
                         len(ok_answer) + len(bad_answer))
        self.assertGreaterEqual(grew("fanoutd_upstream_response_bytes_total"),
                                5 * len('{"name":"Ada","n":[1,2,3]}') + len("status 500\n"))
        self.assertEqual(m.get("fanoutd_upstream_connections_opened_total",
                               upstream=self.key), 2)
        self.assertEqual(m.get("fanoutd_upstream_tls_handshakes_total", upstream=self.key), 0)
        self.assertEqual(m.get("fanoutd_upstream_limit", upstream=self.key), 2)
        # retries are off by default: none made, nothing paused, the
        # breaker off (closed) and never tripped
        self.assertEqual({r: m.get("fanoutd_upstream_retries_total", upstream=self.key,
                                   reason=r) for r in RETRY_REASONS},
                         {r: 0 for r in RETRY_REASONS})
        for name in ("fanoutd_upstream_paused_seconds_total",
                     "fanoutd_upstream_retry_budget_exhausted_total",
                     "fanoutd_upstream_breaker_state", "fanoutd_upstream_breaker_trips_total"):
            self.assertEqual(m.get(name, upstream=self.key), 0, name)
        # the upstream keeps its idle connections, so its live state too
        self.assertEqual(m.get("fanoutd_live_upstreams"), 1)
        self.assertEqual(m.get("fanoutd_upstream_series"), 1)

    def test_rejected_requests_by_error_code(self):
        self.fd.request("GET", "/nope")
        self.fd.request("GET", "/v1/batch")
        self.fd.request("POST", "/metrics")
        self.fd.request("POST", "/v1/batch", "[1]")
        status, hdrs, _ = self.fd.request("PUT", "/metrics")
        self.assertEqual((status, hdrs["allow"]), (405, "GET, HEAD"))
        m = scrape(self.fd)
        got = {e: m.get("fanoutd_rejected_requests_total", error=e) for e in REJECTED}
        want = {e: 0 for e in REJECTED}
        want.update(not_found=1, method_not_allowed=3, invalid_request=1)
        self.assertEqual(got, want)
        self.assertEqual(sum(m.get("fanoutd_batches_total", outcome=o) for o in OUTCOMES), 0)

    def test_gauges_during_a_batch(self):
        m = scrape(self.fd)
        self.assertEqual(m.get("fanoutd_queued_requests"), 0)
        self.assertEqual(m.get("fanoutd_in_flight_requests"), 0)
        result = []
        t = threading.Thread(target=lambda: result.append(
            self.fd.batch([self.up.url("/delay/1000")] * 5)))
        t.start()
        try:
            deadline = time.time() + 3
            while time.time() < deadline:
                m = scrape(self.fd)
                if ("fanoutd_upstream_in_flight", (("upstream", self.key),)) in m.values:
                    if m.get("fanoutd_upstream_in_flight", upstream=self.key) == 2:
                        break
                time.sleep(0.02)
            self.assertEqual(m.get("fanoutd_upstream_in_flight", upstream=self.key), 2)
            self.assertEqual(m.get("fanoutd_upstream_queued", upstream=self.key), 3)
            self.assertEqual(m.get("fanoutd_queued_requests"), 3)
            self.assertEqual(m.get("fanoutd_in_flight_requests"), 2)
        finally:
            t.join(10)
        self.assertEqual(result[0][0], 200)
        m = scrape(self.fd)
        self.assertEqual(m.get("fanoutd_upstream_in_flight", upstream=self.key), 0)
        self.assertEqual(m.get("fanoutd_upstream_queued", upstream=self.key), 0)
        self.assertEqual(m.get("fanoutd_queued_requests"), 0)
        self.assertEqual(m.get("fanoutd_upstream_idle_connections", upstream=self.key), 2)
        # the three that waited a whole round show in the queue-wait buckets
        waited = dict(m.buckets("fanoutd_upstream_queue_wait_seconds"))
        self.assertEqual(waited["+Inf"] - waited["0.5"], 3)


class TestAccessLog(harness.TestCase):
    FANOUTD = False
    PER_TEST = True

    def test_one_line_per_batch(self):
        fd = harness.Fanoutd()
        try:
            self.assertEqual(fd.batch([self.up.url("/json")] * 3)[0], 200)
            status, ans = fd.batch([self.up.url("/json"), self.up.url("/delay/2000"),
                                    self.up.url("/status/404")])
            self.assertEqual((status, ans["completed"], ans["cancelled"]), (502, [0], [1]))
            status, ans = fd.batch({"mode": "settled", "requests": [
                self.up.url("/json"), self.up.url("/status/503")]})
            self.assertEqual(status, 200)
            fd.request("POST", "/v1/batch", "not json")   # 400: no batch, no line
            lines = wait_lines(fd, 3)
        finally:
            fd.stop()
        self.assertEqual(len(lines), 3, lines)
        for line in lines:
            self.assertRegex(line["time"], TIME_RE)
            self.assertRegex(line["client"], r"^127\.0\.0\.1:\d+$")
            self.assertIsInstance(line["elapsed_ms"], (int, float))
            self.assertGreaterEqual(line["elapsed_ms"], 0)
        ok, failed, settled = lines
        self.assertEqual(list(ok), LOG_KEYS)
        self.assertEqual((ok["n"], ok["outcome"], ok["status"]), (3, "ok", 200))
        self.assertEqual(list(failed), LOG_KEYS + ["failed_index", "failed_type"])
        self.assertEqual((failed["n"], failed["outcome"], failed["status"],
                          failed["failed_index"], failed["failed_type"]),
                         (3, "failed", 502, 2, "http_status"))
        self.assertLess(failed["elapsed_ms"], 1500)   # fail fast, not the 2 s delay
        self.assertEqual((settled["n"], settled["outcome"], settled["status"],
                          settled["failed_index"], settled["failed_type"]),
                         (2, "settled", 200, 1, "http_status"))

    def test_client_gone(self):
        fd = harness.Fanoutd()
        try:
            s = socket.create_connection(("127.0.0.1", fd.port))
            body = json.dumps([self.up.url("/delay/3000")] * 2)
            s.sendall(("POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body)).encode())
            harness.wait_until(lambda: self.up.stats()["in_flight"] >= 2, 3)
            s.close()
            lines = wait_lines(fd, 1)
            m = scrape(fd)
        finally:
            fd.stop()
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(list(lines[0]), LOG_KEYS)
        self.assertEqual((lines[0]["n"], lines[0]["outcome"], lines[0]["status"]),
                         (2, "client_gone", 0))
        self.assertEqual(m.get("fanoutd_batches_total", outcome="client_gone"), 1)
        self.assertEqual(m.get("fanoutd_upstream_requests_total",
                               upstream="http://127.0.0.1:%d" % self.up.port,
                               outcome="cancelled"), 2)

    def test_draining(self):
        fd = harness.Fanoutd(config="[fanoutd]\nshutdown_timeout = 300ms\n")
        t = threading.Thread(target=lambda: fd.batch([self.up.url("/hang")]))
        t.start()
        time.sleep(0.3)
        fd.send_signal(signal.SIGTERM)
        t.join(10)
        lines = wait_lines(fd, 1)
        fd.stop()
        self.assertEqual([(x["outcome"], x["status"]) for x in lines], [("draining", 503)])
        self.assertNotIn("failed_index", lines[0])

    def test_access_log_no(self):
        fd = harness.Fanoutd(config="[fanoutd]\naccess_log = no\n")
        try:
            self.assertEqual(fd.batch([self.up.url("/json")])[0], 200)
            self.assertEqual(fd.batch([self.up.url("/status/500")])[0], 502)
            m = scrape(fd)
            log = fd.read_log()
        finally:
            fd.stop()
        self.assertEqual(m.get("fanoutd_batches_total", outcome="ok"), 1)
        self.assertEqual([x for x in log.splitlines() if x.startswith("{")], [])
        self.assertNotIn('"outcome"', log)


class TestMetricsAuth(unittest.TestCase):
    TOKEN = "s3cret-token-for-metrics"

    def test_token_required(self):
        d = tempfile.mkdtemp(prefix="fanoutd-metrics-")
        path = os.path.join(d, "token")
        with open(path, "w") as f:
            f.write(self.TOKEN + "\n")
        up = harness.Upstream()
        fd = harness.Fanoutd(config="[fanoutd]\nauth_token_file = %s\n" % path)
        try:
            status, hdrs, body = fd.request("GET", "/metrics")
            self.assertEqual((status, json.loads(body)["error"]), (401, "unauthorized"))
            status, _, _ = fd.request("GET", "/metrics",
                                      headers={"Authorization": "Bearer wrong"})
            self.assertEqual(status, 401)
            auth = {"Authorization": "Bearer " + self.TOKEN}
            self.assertEqual(fd.batch([up.url("/json")], headers=auth)[0], 200)
            m = scrape(fd, headers=auth)
            self.assertEqual(m.get("fanoutd_rejected_requests_total", error="unauthorized"), 2)
            self.assertEqual(m.get("fanoutd_batches_total", outcome="ok"), 1)
            log = fd.read_log()
        finally:
            fd.stop()
            up.stop()
            shutil.rmtree(d, ignore_errors=True)
        self.assertNotIn(self.TOKEN, log)
        self.assertEqual(len([x for x in log.splitlines() if x.startswith("{")]), 1)


if __name__ == "__main__":
    harness.main()
