"""Retries, Retry-After and the circuit breaker (SPEC section 10) against the
test upstream's /flaky/KEY (the first N requests fail), /count/KEY (how many
came, when they arrived), /time (when a request arrived) and /status/CODE:

  - a 429 or 503 with Retry-After (delta-seconds, decimal, HTTP-date) pauses
    the upstream for every client, not another upstream; honor_retry_after
    = no does not; max_retry_after caps it; a request whose timeout is
    shorter than the pause times out queued;
  - retries: the back-off's full jitter, Retry-After preferred over it, the
    batch's and the request's "retry" over the config's, max_retries'
    clamp, only idempotent methods (and POST/PATCH with Idempotency-Key),
    retry_on, a response timeout retried for GET but not POST, no retry
    past the batch deadline, no slot held while waiting and a new place at
    the end of the queue, [upstream] overrides, connect errors, h2, a bad
    "retry" object (400, nothing sent);
  - fail fast waits for the last attempt; a retry waiting when the batch
    fails is cancelled;
  - the retry budget (20 %, never fewer than 3 retries at once);
  - the breaker: open, circuit_open with nothing sent, one probe at a time,
    a failing probe re-opens, a success closes, a cancelled probe frees the
    half-open slot, a retry meeting an open breaker; 5xx, response timeouts
    and connect errors count, 4xx, 429 and queued timeouts do not;
  - /v1/upstreams (paused_ms, breaker) and /metrics (retries by reason,
    budget exhausted, seconds paused, breaker state and trips) moving by
    exactly what each test implies.

The upstream and the test share one wall clock (same machine): /count's
times_ms and /time's now_ms are compared with each other and time.time()."""

import email.utils
import json
import math
import os
import sys
import threading
import time
import urllib.parse

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import count, key_of  # noqa: E402

REASONS = ("connect", "timeout", "429", "500", "502", "503", "504", "other_status")


class Background:
    """fn() on a thread of its own; join() gives its result."""

    def __init__(self, fn):
        self.result = None
        self.error = None
        self.t0 = time.time()
        self.thread = threading.Thread(target=self.run, args=(fn,), daemon=True)
        self.thread.start()

    def run(self, fn):
        try:
            self.result = fn()
        except Exception as e:  # noqa: BLE001 - raised in join()
            self.error = e
        self.took = time.time() - self.t0

    def join(self):
        self.thread.join(60)
        if self.error is not None:
            raise self.error
        return self.result


def upstream_entry(fd, up):
    status, _, data = fd.request("GET", "/v1/upstreams")
    assert status == 200, data
    return {u["upstream"]: u for u in json.loads(data)["upstreams"]}[key_of(up)]


class Scrape:
    """One GET /metrics, parsed with the Prometheus text parser."""

    def __init__(self, fd):
        status, _, body = fd.request("GET", "/metrics")
        assert status == 200, body
        self.values = {}
        for fam in text_string_to_metric_families(body.decode()):
            for s in fam.samples:
                self.values[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(self, name, **labels):
        return self.values[(name, tuple(sorted(labels.items())))]

    def retries(self, up):
        """{reason: retries} of upstream up, the reasons that are not 0."""
        out = {}
        for r in REASONS:
            v = self.get("fanoutd_upstream_retries_total", upstream=key_of(up), reason=r)
            if v:
                out[r] = v
        return out

    def up(self, name, up):
        return self.get(name, upstream=key_of(up))


def wait_for_time(t):
    """Sleep until time.time() >= t."""
    left = t - time.time()
    if left > 0:
        time.sleep(left)


class RetryCase(harness.TestCase):
    PER_TEST = True          # a pause or a breaker is the upstream's own state
    STILL_ALIVE = True

    def key(self, up=None):
        return key_of(up or self.up)

    def batch(self, payload, fd=None):
        return (fd or self.fd).batch(payload)

    def one_error(self, status, ans, index=0):
        self.assertEqual(status, 502, ans)
        self.assertFalse(ans["ok"])
        self.assertEqual(len(ans["errors"]), 1, ans)
        e = ans["errors"][0]
        self.assertEqual(e["index"], index, e)
        return e


# --------------------------------------------------------------------------
# Retry-After pauses the upstream for every caller.

class Pause(RetryCase):
    UPSTREAMS = 2

    def flaky_429(self, name, retry_after, status=429, fd=None):
        """Batch A: /flaky/NAME answering 429 (or status) with Retry-After;
        returns (the error, the 429's arrival at the upstream in ms)."""
        url = self.up.url("/flaky/%s?fail=1&status=%d&retry_after=%s"
                          % (name, status, urllib.parse.quote(retry_after, safe="")))
        e = self.one_error(*self.batch([url], fd=fd))
        self.assertEqual((e["status"], e["attempts"], e["retry_wait_ms"]), (status, 1, 0.0), e)
        c = count(self.up, name)
        self.assertEqual(c["count"], 1, c)
        return e, c["times_ms"][0]

    def time_batch(self, fd=None, up=None):
        """Batch B: one GET /time; (its result, its arrival in ms)."""
        status, ans = self.batch([(up or self.up).url("/time")], fd=fd)
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual(r["attempts"], 1, r)
        return r, r["body"]["now_ms"]

    def test_429_retry_after_pauses_every_client_not_another_upstream(self):
        e, t_429 = self.flaky_429("pa", "1")
        self.assertEqual((e["type"], e["retry_after_s"]), ("rate_limited", 1), e)
        # client B, right after, to the same upstream: waits for the pause
        sent_ms = time.time() * 1000.0
        b = Background(self.time_batch)
        time.sleep(0.15)
        u = upstream_entry(self.fd, self.up)
        self.assertGreater(u["paused_ms"], 0, u)
        self.assertLessEqual(u["paused_ms"], 1000 - 100, u)
        # the other upstream is not slowed
        t0 = time.time()
        r2, t_other = self.time_batch(up=self.up2)
        self.assertLess(time.time() - t0, 0.2)
        self.assertLess(t_other - t_429, 700)
        self.assertLess(r2["timing"]["queued_ms"], 100, r2)
        self.assertEqual(upstream_entry(self.fd, self.up2)["paused_ms"], 0)
        r, t_b = b.join()
        self.assertGreaterEqual(t_b - t_429, 900)
        self.assertLess(t_b - t_429, 1500)
        # queued for what was left of the pause when B was sent (one clock)
        self.assertGreaterEqual(r["timing"]["queued_ms"], t_429 + 1000 - sent_ms - 50, r)
        self.assertGreaterEqual(r["timing"]["queued_ms"], 700, r)
        self.assertEqual(r["retry_wait_ms"], 0.0, r)
        self.assertEqual(upstream_entry(self.fd, self.up)["paused_ms"], 0)
        m = Scrape(self.fd)
        self.assertAlmostEqual(m.up("fanoutd_upstream_paused_seconds_total", self.up),
                               1.0, places=3)
        self.assertEqual(m.up("fanoutd_upstream_paused_seconds_total", self.up2), 0)
        self.assertEqual(m.retries(self.up), {})
        self.assertEqual(m.get("fanoutd_upstream_requests_total", upstream=self.key(),
                               outcome="rate_limited"), 1)

    def test_honor_retry_after_no_leaves_the_queue_running(self):
        fd = self.fanoutd(config="[fanoutd]\nhonor_retry_after = no\n")
        e, t_429 = self.flaky_429("pn", "1", fd=fd)
        self.assertEqual(e["retry_after_s"], 1, e)
        r, t_b = self.time_batch(fd=fd)
        self.assertLess(t_b - t_429, 300)
        self.assertLess(r["timing"]["queued_ms"], 100, r)
        self.assertEqual(upstream_entry(fd, self.up)["paused_ms"], 0)
        # the wait before a retry still follows Retry-After (0.3 s), while
        # another client's request goes at once
        url = self.up.url("/flaky/pr?fail=1&status=429&retry_after=0.3")
        b = Background(lambda: self.batch({"requests": [url], "retry": {"attempts": 2}},
                                          fd=fd))
        time.sleep(0.1)
        t0 = time.time()
        self.time_batch(fd=fd)
        self.assertLess(time.time() - t0, 0.2)
        status, ans = b.join()
        self.assertEqual(status, 200, ans)
        res = ans["results"][0]
        self.assertEqual(res["attempts"], 2, res)
        self.assertAlmostEqual(res["retry_wait_ms"], 300, delta=1)
        times = count(self.up, "pr")["times_ms"]
        self.assertGreaterEqual(times[1] - times[0], 290)
        m = Scrape(fd)
        self.assertEqual(m.up("fanoutd_upstream_paused_seconds_total", self.up), 0)
        self.assertEqual(m.retries(self.up), {"429": 1})

    def test_decimal_retry_after(self):
        e, t_429 = self.flaky_429("pdec", "0.5")
        self.assertEqual(e["retry_after_s"], 1, e)    # rounded up
        sent_ms = time.time() * 1000.0
        r, t_b = self.time_batch()
        self.assertGreaterEqual(t_b - t_429, 450)
        self.assertLess(t_b - t_429, 900)
        # queued for what was left of the pause when it was sent (the same
        # clock: one machine)
        self.assertGreaterEqual(r["timing"]["queued_ms"], t_429 + 500 - sent_ms - 50, r)
        self.assertAlmostEqual(Scrape(self.fd).up("fanoutd_upstream_paused_seconds_total",
                                                  self.up), 0.5, places=3)

    def test_http_date_retry_after(self):
        now = time.time()
        date = email.utils.formatdate(now + 2, usegmt=True)
        until_ms = math.floor(now + 2) * 1000.0      # the date has whole seconds
        e, t_429 = self.flaky_429("pdate", date)
        self.assertIn(e["retry_after_s"], (1, 2), e)
        self.assertEqual(e["headers"]["retry-after"], date, e)
        r, t_b = self.time_batch()
        self.assertGreaterEqual(t_b, until_ms - 20)
        self.assertLess(t_b, until_ms + 500)
        paused = Scrape(self.fd).up("fanoutd_upstream_paused_seconds_total", self.up)
        self.assertGreater(paused, (until_ms - t_429) / 1000 - 0.1)
        self.assertLessEqual(paused, 2.0)

    def test_max_retry_after_caps_the_pause_and_the_wait(self):
        fd = self.fanoutd(config="[fanoutd]\nmax_retry_after = 500ms\n")
        e, t_429 = self.flaky_429("pcap", "100", fd=fd)
        self.assertEqual(e["retry_after_s"], 100, e)     # what the upstream said
        r, t_b = self.time_batch(fd=fd)
        self.assertGreaterEqual(t_b - t_429, 450)
        self.assertLess(t_b - t_429, 900)
        # as the wait before a retry too
        status, ans = self.batch({"requests": [
            self.up.url("/flaky/pcap2?fail=1&status=429&retry_after=100")],
            "retry": {"attempts": 2}}, fd=fd)
        self.assertEqual(status, 200, ans)
        res = ans["results"][0]
        self.assertEqual(res["attempts"], 2, res)
        self.assertAlmostEqual(res["retry_wait_ms"], 500, delta=1)
        m = Scrape(fd)
        self.assertAlmostEqual(m.up("fanoutd_upstream_paused_seconds_total", self.up),
                               1.0, places=3)
        self.assertEqual(m.retries(self.up), {"429": 1})

    def test_503_pauses_and_a_short_timeout_fails_queued(self):
        e, t_503 = self.flaky_429("p503", "1", status=503)
        self.assertEqual((e["type"], e["status"]), ("http_status", 503), e)
        t0 = time.time()
        sent_ms = t0 * 1000.0
        status, ans = self.batch({"mode": "settled", "requests": [
            {"url": self.up.url("/time"), "timeout_ms": 300},
            self.up.url("/time")]})
        took = time.time() - t0
        self.assertEqual(status, 200, ans)
        short, long_ = ans["results"]
        err = short["error"]
        self.assertEqual((err["type"], err["phase"], err["message"]),
                         ("timeout", "queued",
                          "not started within 300 ms: %s is paused by its Retry-After"
                          % self.key()), short)
        self.assertNotIn("protocol", short)
        self.assertGreaterEqual(short["elapsed_ms"], 290)
        self.assertLess(short["elapsed_ms"], 700)
        self.assertGreaterEqual(long_["body"]["now_ms"] - t_503, 900)
        self.assertGreaterEqual(long_["timing"]["queued_ms"], t_503 + 1000 - sent_ms - 50, long_)
        self.assertGreater(took, 0.85)
        m = Scrape(self.fd)
        self.assertAlmostEqual(m.up("fanoutd_upstream_paused_seconds_total", self.up),
                               1.0, places=3)
        self.assertEqual(m.get("fanoutd_upstream_requests_total", upstream=self.key(),
                               outcome="timeout"), 1)
        # the timed-out one sent nothing: A's 503 and B's second /time only
        self.assertEqual(self.up.stats()["requests"], 2)


# --------------------------------------------------------------------------
# Retries.

class Retries(RetryCase):
    CONFIG = "[fanoutd]\nretries = 3\nretry_backoff = 100ms\n"

    def settled(self, requests, fd=None, **batch):
        body = dict(batch, requests=requests, mode="settled")
        status, ans = self.batch(body, fd=fd)
        self.assertEqual(status, 200, ans)
        return ans["results"]

    def test_flaky_succeeds_on_the_third_attempt_full_jitter(self):
        status, ans = self.batch([self.up.url("/flaky/k?fail=2")])
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual((r["status"], r["body"], r["attempts"]),
                         (200, {"key": "k", "attempt": 3}, 3), r)
        # full jitter: the first wait in [0, 100], the second in [0, 200]
        self.assertGreaterEqual(r["retry_wait_ms"], 0)
        self.assertLessEqual(r["retry_wait_ms"], 300.1)
        c = count(self.up, "k")
        self.assertEqual(c["count"], 3, c)
        t = c["times_ms"]
        self.assertLess(t[1] - t[0], 100 + 150)
        self.assertLess(t[2] - t[1], 200 + 150)
        self.assertGreaterEqual(t[2] - t[0], r["retry_wait_ms"] - 5)
        self.assertGreaterEqual(r["elapsed_ms"], r["retry_wait_ms"])
        m = Scrape(self.fd)
        self.assertEqual(m.retries(self.up), {"503": 2})
        self.assertEqual(m.up("fanoutd_upstream_retry_budget_exhausted_total", self.up), 0)
        # a request is counted once, by how it ended
        self.assertEqual(m.get("fanoutd_upstream_requests_total", upstream=self.key(),
                               outcome="ok"), 1)
        self.assertEqual(m.get("fanoutd_upstream_requests_total", upstream=self.key(),
                               outcome="http_status"), 0)
        self.assertEqual(m.up("fanoutd_upstream_paused_seconds_total", self.up), 0)

    def test_retry_after_is_preferred_over_the_backoff(self):
        status, ans = self.batch([self.up.url("/flaky/ra?fail=2&status=503&retry_after=0.3")])
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual(r["attempts"], 3, r)
        self.assertGreaterEqual(r["retry_wait_ms"], 2 * 300 * 0.9)
        self.assertAlmostEqual(r["retry_wait_ms"], 600, delta=1)
        t = count(self.up, "ra")["times_ms"]
        self.assertEqual(len(t), 3)
        self.assertGreaterEqual(t[1] - t[0], 290)
        self.assertGreaterEqual(t[2] - t[1], 290)
        m = Scrape(self.fd)
        self.assertEqual(m.retries(self.up), {"503": 2})
        self.assertAlmostEqual(m.up("fanoutd_upstream_paused_seconds_total", self.up),
                               0.6, places=3)

    def test_batch_and_request_retry_override_the_config(self):
        res = self.settled([
            self.up.url("/flaky/oa?fail=5"),
            {"url": self.up.url("/flaky/ob?fail=5"),
             "retry": {"attempts": 4, "max_backoff_ms": 20}},
            {"url": self.up.url("/flaky/oc?fail=5"), "retry": {"attempts": 1}},
        ], retry={"attempts": 2, "backoff_ms": 10})
        self.assertEqual([r["error"]["status"] for r in res], [503, 503, 503])
        self.assertEqual([r["attempts"] for r in res], [2, 4, 1])
        self.assertEqual([count(self.up, k)["count"] for k in ("oa", "ob", "oc")], [2, 4, 1])
        self.assertLessEqual(res[0]["retry_wait_ms"], 10.1)
        self.assertLessEqual(res[1]["retry_wait_ms"], 10 + 20 + 20 + 0.1)
        self.assertEqual(res[2]["retry_wait_ms"], 0.0)
        self.assertEqual(Scrape(self.fd).retries(self.up), {"503": 1 + 3})

    def test_attempts_clamped_to_1_plus_max_retries(self):
        fd = self.fanoutd(config="[fanoutd]\nretries = 3\nmax_retries = 2\n"
                                 "retry_backoff = 10ms\n")
        res = self.settled([
            {"url": self.up.url("/flaky/ca?fail=5"), "retry": {"attempts": 10}},
            self.up.url("/flaky/cb?fail=5"),     # retries = 3 is clamped too
        ], fd=fd)
        self.assertEqual([r["error"]["type"] for r in res], ["http_status"] * 2)
        self.assertEqual([r["attempts"] for r in res], [3, 3])
        self.assertEqual([count(self.up, k)["count"] for k in ("ca", "cb")], [3, 3])
        self.assertEqual(Scrape(fd).retries(self.up), {"503": 4})

    def test_only_idempotent_methods_or_an_idempotency_key(self):
        # two batches of three: at most 3 retries at once (the budget's floor)
        res = self.settled([
            {"url": self.up.url("/flaky/ma?fail=1"), "method": "POST", "body": "x"},
            {"url": self.up.url("/flaky/mb?fail=1"), "method": "POST", "body": "x",
             "headers": {"Idempotency-Key": "k-1"}},
            {"url": self.up.url("/flaky/mc?fail=1"), "method": "PATCH",
             "headers": {"idempotency-key": "k-2"}},
        ], retry={"backoff_ms": 10}) + self.settled([
            {"url": self.up.url("/flaky/md?fail=1"), "method": "PATCH"},
            {"url": self.up.url("/flaky/me?fail=1"), "method": "PUT", "body": "x"},
            {"url": self.up.url("/flaky/mf?fail=1"), "method": "DELETE"},
        ], retry={"backoff_ms": 10})
        self.assertEqual([r.get("status", r.get("error", {}).get("status")) for r in res],
                         [503, 200, 200, 503, 200, 200])
        self.assertEqual([r["attempts"] for r in res], [1, 2, 2, 1, 2, 2])
        self.assertEqual([count(self.up, k)["count"] for k in ("ma", "mb", "mc", "md",
                                                                "me", "mf")],
                         [1, 2, 2, 1, 2, 2])
        m = Scrape(self.fd)
        self.assertEqual(m.retries(self.up), {"503": 4})
        self.assertEqual(m.up("fanoutd_upstream_retry_budget_exhausted_total", self.up), 0)

    def test_the_budget_floor_in_one_batch(self):
        # 6 in flight: 20 % is 1.2, the floor 3; 4 failures want a retry
        res = self.settled([self.up.url("/flaky/bf%d?fail=1" % i) for i in range(4)] +
                           [self.up.url("/delay/300")] * 2, retry={"backoff_ms": 100})
        attempts = [r["attempts"] for r in res[:4]]
        self.assertEqual(sorted(attempts), [1, 2, 2, 2], res)
        m = Scrape(self.fd)
        self.assertEqual(m.retries(self.up), {"503": 3})
        self.assertEqual(m.up("fanoutd_upstream_retry_budget_exhausted_total", self.up), 1)

    def test_retry_on(self):
        res = self.settled([
            self.up.url("/flaky/s1?fail=1&status=500"),            # the default: no
            {"url": self.up.url("/flaky/s2?fail=1&status=500"), "retry": {"on": ["500"]}},
            # "on" replaces the list: a 503 is no longer retried
            {"url": self.up.url("/flaky/s3?fail=1&status=503"), "retry": {"on": [500]}},
        ], retry={"backoff_ms": 10})
        self.assertEqual(res[0]["error"]["status"], 500, res[0])
        self.assertEqual((res[1]["status"], res[1]["attempts"]), (200, 2), res[1])
        self.assertEqual(res[2]["error"]["status"], 503, res[2])
        self.assertEqual([r["attempts"] for r in res], [1, 2, 1])
        self.assertEqual([count(self.up, k)["count"] for k in ("s1", "s2", "s3")], [1, 2, 1])
        self.assertEqual(Scrape(self.fd).retries(self.up), {"500": 1})

    def test_response_timeout_retried_for_get_not_for_post(self):
        res = self.settled([
            {"url": self.up.url("/flaky/ta?delay=500"), "timeout_ms": 150},
            {"url": self.up.url("/flaky/tb?delay=500"), "timeout_ms": 150, "method": "POST",
             "headers": {"Idempotency-Key": "t-1"}, "body": "x"},
        ], retry={"attempts": 2, "backoff_ms": 10})
        for r in res:
            self.assertEqual((r["error"]["type"], r["error"]["phase"]),
                             ("timeout", "response"), r)
        self.assertEqual([r["attempts"] for r in res], [2, 1])
        self.assertEqual([count(self.up, k)["count"] for k in ("ta", "tb")], [2, 1])
        # each attempt had its own 150 ms
        self.assertGreaterEqual(res[0]["elapsed_ms"], 300)
        self.assertLess(res[1]["elapsed_ms"], 300)
        self.assertEqual(Scrape(self.fd).retries(self.up), {"timeout": 1})

    def test_connect_errors_are_retried(self):
        # a reset before any answer, on a new connection: connect
        status, ans = self.batch({"requests": [self.up.url("/flaky/cr?fail=1&reset=1")],
                                  "retry": {"backoff_ms": 10}})
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["results"][0]["attempts"], 2, ans)
        self.assertEqual(count(self.up, "cr")["count"], 2)
        refused = "http://127.0.0.1:%d/x" % harness.free_port()
        e = self.one_error(*self.batch({"requests": [refused],
                                        "retry": {"attempts": 3, "backoff_ms": 10}}))
        self.assertEqual((e["type"], e["attempts"]), ("connect", 3), e)
        m = Scrape(self.fd)
        self.assertEqual(m.retries(self.up), {"connect": 1})
        self.assertEqual(m.get("fanoutd_upstream_retries_total", upstream=refused[:-2],
                               reason="connect"), 2)

    def test_a_waiting_retry_holds_no_slot_and_queues_at_the_end(self):
        fd = self.fanoutd(config="[fanoutd]\nupstream_concurrency = 1\nretries = 1\n"
                                 "retry_backoff = 10ms\n")
        res = self.settled([self.up.url("/flaky/q?fail=1"), self.up.url("/delay/200"),
                            self.up.url("/delay/200")], fd=fd)
        self.assertEqual([(r["status"], r["attempts"]) for r in res],
                         [(200, 2), (200, 1), (200, 1)], res)
        # the two requests queued behind it went while it waited, and its
        # retry queued behind them
        t = count(self.up, "q")["times_ms"]
        self.assertGreaterEqual(t[1] - t[0], 390)
        self.assertGreaterEqual(res[0]["timing"]["queued_ms"], 300, res[0])
        self.assertLessEqual(res[0]["retry_wait_ms"], 10.1)
        self.assertEqual(self.up.stats()["max_in_flight"], 1)

    def test_no_retry_past_the_batch_deadline(self):
        # within the deadline: retried after its Retry-After
        status, ans = self.batch({"requests": [
            self.up.url("/flaky/dk?fail=1&status=503&retry_after=0.2")], "timeout_ms": 1000})
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["results"][0]["attempts"], 2, ans)
        # a wait of 2 s would end after the 500 ms deadline: the 503 stands
        t0 = time.time()
        e = self.one_error(*self.batch({"requests": [
            self.up.url("/flaky/dl?fail=1&status=503&retry_after=2")], "timeout_ms": 500}))
        took = time.time() - t0
        self.assertEqual((e["type"], e["status"], e["attempts"], e["retry_wait_ms"]),
                         ("http_status", 503, 1, 0.0), e)
        self.assertLess(took, 1.0)
        self.assertLess(e["elapsed_ms"], 200)
        self.assertEqual(count(self.up, "dl")["count"], 1)
        self.assertEqual(Scrape(self.fd).retries(self.up), {"503": 1})

    def test_upstream_section_overrides(self):
        other = self.upstream()
        fd = self.fanoutd(config="[fanoutd]\nretries = 0\nretry_backoff = 10ms\n"
                                 "[upstream \"%s\"]\nretries = 2\nretry_on = 500\n" % self.key())
        res = self.settled([
            self.up.url("/flaky/ua?fail=2&status=500"),
            self.up.url("/flaky/ub?fail=1"),            # 503 is not in its retry_on
            other.url("/flaky/uc?fail=1&status=500"),   # [fanoutd]: no retries
        ], fd=fd)
        self.assertEqual((res[0]["status"], res[0]["attempts"]), (200, 3), res[0])
        self.assertEqual((res[1]["error"]["status"], res[1]["attempts"]), (503, 1), res[1])
        self.assertEqual((res[2]["error"]["status"], res[2]["attempts"]), (500, 1), res[2])
        m = Scrape(fd)
        self.assertEqual(m.retries(self.up), {"500": 2})
        self.assertEqual(m.retries(other), {})

    def test_a_bad_retry_object_is_400_and_nothing_sent(self):
        u = self.up.url("/json")
        for body, message in [
            ({"requests": [{"url": u, "retry": {"attempts": 0}}]},
             "requests[0].retry.attempts: 0 out of range 1..1000"),
            ({"requests": [u, {"url": u, "retry": {"attempts": 1001}}]},
             "requests[1].retry.attempts: 1001 out of range 1..1000"),
            ({"requests": [u], "retry": {"attempts": 2.5}}, "retry.attempts: must be an integer"),
            ({"requests": [u], "retry": {"tries": 3}}, 'retry: unknown key "tries"'),
            ({"requests": [u], "retry": []}, "retry: must be an object"),
            ({"requests": [u], "retry": {"on": ["5xx"]}},
             'retry.on[0]: "5xx" is not "connect", "timeout" or a status 400..599'),
            ({"requests": [u], "retry": {"backoff_ms": -1}},
             "retry.backoff_ms: -1 out of range 0..3600000"),
        ]:
            status, ans = self.batch(body)
            self.assertEqual((status, ans["error"], ans["message"]),
                             (400, "invalid_request", message), body)
        self.assertEqual(self.up.stats()["requests"], 0)

    def test_h2(self):
        up = self.upstream(extra_args=["--h2"])
        fd = self.fanoutd(config="[upstream \"%s\"]\nhttp2 = prior-knowledge\nretries = 1\n"
                                 "retry_backoff = 10ms\n" % key_of(up))
        status, ans = self.batch([up.url("/flaky/h?fail=1")], fd=fd)
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual((r["status"], r["attempts"], r["protocol"], r["body"]),
                         (200, 2, "h2", {"key": "h", "attempt": 2}), r)
        self.assertLessEqual(r["retry_wait_ms"], 10.1)
        self.assertEqual(count(up, "h")["count"], 2)
        self.assertEqual(up.stats()["h2_connections"], 1)
        self.assertEqual(Scrape(fd).retries(up), {"503": 1})


# --------------------------------------------------------------------------
# Fail fast (mode "all") with retries.

class FailFast(RetryCase):
    CONFIG = "[fanoutd]\nretries = 2\n"

    def test_a_retry_that_succeeds_does_not_fail_the_batch(self):
        status, ans = self.batch([self.up.url("/flaky/f?fail=1")] +
                                 [self.up.url("/delay/300")] * 3)
        self.assertEqual(status, 200, ans)
        self.assertTrue(ans["ok"])
        self.assertEqual([r["attempts"] for r in ans["results"]], [2, 1, 1, 1])
        self.assertEqual(count(self.up, "f")["count"], 2)
        self.assertEqual(Scrape(self.fd).retries(self.up), {"503": 1})

    def test_the_batch_fails_after_the_last_attempt(self):
        t0 = time.time()
        status, ans = self.batch([self.up.url("/flaky/g?fail=10&retry_after=0.2")] +
                                 [self.up.url("/delay/2000")] * 3)
        took = time.time() - t0
        e = self.one_error(status, ans)
        self.assertEqual((e["type"], e["status"], e["attempts"]), ("http_status", 503, 3), e)
        self.assertAlmostEqual(e["retry_wait_ms"], 400, delta=1)
        # not before the last attempt failed (two waits of 200 ms), not
        # after the slow ones
        self.assertGreaterEqual(ans["elapsed_ms"], 400)
        self.assertGreaterEqual(took, 0.4)
        self.assertLess(took, 1.5)
        self.assertEqual((ans["message"], ans["completed"], ans["cancelled"]),
                         ("1 of 4 requests failed, 3 cancelled", [], [1, 2, 3]), ans)
        self.assertEqual(count(self.up, "g")["count"], 3)
        m = Scrape(self.fd)
        self.assertEqual(m.retries(self.up), {"503": 2})
        self.assertEqual(m.get("fanoutd_upstream_requests_total", upstream=self.key(),
                               outcome="cancelled"), 3)

    def test_a_retry_waiting_when_the_batch_fails_is_cancelled(self):
        status, ans = self.batch([self.up.url("/flaky/w?fail=1&retry_after=1"),
                                  self.up.url("/status/404?delay=300")])
        self.assertEqual(status, 502, ans)
        self.assertEqual((ans["completed"], ans["cancelled"]), ([], [0]), ans)
        self.assertEqual([(x["index"], x["type"], x["status"]) for x in ans["errors"]],
                         [(1, "http_status", 404)])
        self.assertGreaterEqual(ans["elapsed_ms"], 290)
        self.assertLess(ans["elapsed_ms"], 900)
        c = count(self.up, "w")
        self.assertEqual(c["count"], 1, c)
        # the retry is never made, not even after its Retry-After
        wait_for_time(c["times_ms"][0] / 1000 + 1.3)
        self.assertEqual(count(self.up, "w")["count"], 1)
        self.assertEqual(self.up.stats()["requests"], 2)
        m = Scrape(self.fd)
        self.assertEqual(m.get("fanoutd_upstream_requests_total", upstream=self.key(),
                               outcome="cancelled"), 1)
        # "retries made" (fanoutd(8), METRICS): this one was never made
        self.assertEqual(m.retries(self.up), {})


# --------------------------------------------------------------------------
# The retry budget.

class Budget(RetryCase):
    FANOUTD = False
    RESET = True

    def run_100(self, budget, prefix):
        fd = self.fanoutd(config="[fanoutd]\nupstream_concurrency = 100\nretries = 1\n"
                                 "retry_budget = %s\n" % budget)
        self.fd = fd            # for STILL_ALIVE
        keys = ["%s%d" % (prefix, i) for i in range(100)]
        status, ans = self.batch({"mode": "settled", "requests": [
            self.up.url("/flaky/%s?fail=1&delay=200" % k) for k in keys]}, fd=fd)
        self.assertEqual(status, 200, ans)
        res = ans["results"]
        ok = [r for r in res if "error" not in r]
        failed = [r for r in res if "error" in r]
        self.assertEqual({(r["status"], r["attempts"]) for r in ok}, {(200, 2)} if ok else set())
        self.assertEqual({(r["error"]["status"], r["attempts"]) for r in failed},
                         {(503, 1)} if failed else set())
        counts = {k: count(self.up, k) for k in keys}
        for r, k in zip(res, keys):
            self.assertEqual(counts[k]["count"], 1 if "error" in r else 2, (k, r))
        # the retries at the upstream at once: each in flight for its 200 ms
        events = []
        for c in counts.values():
            if c["count"] == 2:
                events += [(c["times_ms"][1], 1), (c["times_ms"][1] + 200, -1)]
        most = now = 0
        for _, d in sorted(events, key=lambda e: (e[0], e[1])):
            now += d
            most = max(most, now)
        m = Scrape(fd)
        retries = m.retries(self.up).get("503", 0)
        exhausted = m.up("fanoutd_upstream_retry_budget_exhausted_total", self.up)
        self.assertEqual(m.retries(self.up), {"503": retries} if retries else {})
        # each first failure was either retried or stood for want of budget
        self.assertEqual(retries + exhausted, 100)
        self.assertEqual((retries, exhausted), (len(ok), len(failed)))
        return retries, most

    def test_20_percent(self):
        retries, most = self.run_100("20%", "b")
        # the first 20 failures are retried (100 in flight: 20 % is 20)
        self.assertGreaterEqual(retries, 20)
        self.assertLessEqual(most, 20)
        self.assertGreaterEqual(most, 10)

    def test_0_percent_still_3(self):
        retries, most = self.run_100("0%", "z")
        self.assertGreaterEqual(retries, 3)
        self.assertLessEqual(most, 3)


# --------------------------------------------------------------------------
# The circuit breaker.

def breaker_config(t):
    return ("[upstream \"http://127.0.0.1:%d\"]\nbreaker_failures = 3\n"
            "breaker_cooldown = 1s\n" % t.up.port)


class Breaker(RetryCase):
    CONFIG = staticmethod(breaker_config)
    RESET = True

    def state(self, fd=None):
        fd = fd or self.fd
        m = Scrape(fd)
        return (upstream_entry(fd, self.up)["breaker"],
                m.up("fanoutd_upstream_breaker_state", self.up),
                m.up("fanoutd_upstream_breaker_trips_total", self.up))

    def circuit_open(self, retry_after_s, fd=None):
        t0 = time.time()
        e = self.one_error(*self.batch([self.up.url("/json")], fd=fd))
        self.assertLess(time.time() - t0, 0.1)
        self.assertEqual((e["type"], e["retry_after_s"], e["attempts"], e["message"]),
                         ("circuit_open", retry_after_s, 1,
                          "circuit open: %s failed 3 times in a row; nothing was sent"
                          % self.key()), e)
        self.assertNotIn("protocol", e)
        return e

    def test_opens_probes_reopens_and_closes(self):
        status, ans = self.batch({"mode": "settled", "max_concurrency": 1,
                                  "requests": [self.up.url("/status/503")] * 3})
        t_open = time.time()
        self.assertEqual(status, 200, ans)
        self.assertEqual([r["error"]["status"] for r in ans["results"]], [503] * 3)
        self.assertEqual(self.up.stats()["requests"], 3)
        self.assertEqual(self.state(), ("open", 1, 1))
        self.circuit_open(1)
        self.assertEqual(self.up.stats()["requests"], 3)     # nothing sent
        self.assertEqual(Scrape(self.fd).get("fanoutd_upstream_requests_total",
                                             upstream=self.key(), outcome="circuit_open"), 1)
        # after the cooldown a failing probe opens it again
        wait_for_time(t_open + 1.1)
        e = self.one_error(*self.batch([self.up.url("/status/503")]))
        t_open = time.time()
        self.assertEqual((e["type"], e["status"]), ("http_status", 503), e)
        self.assertEqual(self.up.stats()["requests"], 4)
        self.assertEqual(self.state(), ("open", 1, 2))
        self.circuit_open(1)
        # after the next cooldown: one probe goes, the others fail at once
        wait_for_time(t_open + 1.1)
        probe = Background(lambda: self.batch([self.up.url("/delay/300")]))
        time.sleep(0.1)
        self.assertEqual(self.state(), ("half_open", 2, 2))
        self.circuit_open(0)
        status, ans = probe.join()
        self.assertEqual(status, 200, ans)
        self.assertEqual(self.up.stats()["requests"], 5)
        self.assertEqual(self.state(), ("closed", 0, 2))
        status, ans = self.batch([self.up.url("/json")] * 3)
        self.assertEqual(status, 200, ans)
        self.assertEqual(self.up.stats()["requests"], 8)
        m = Scrape(self.fd)
        self.assertEqual(m.get("fanoutd_upstream_requests_total", upstream=self.key(),
                               outcome="circuit_open"), 3)
        self.assertEqual(m.retries(self.up), {})

    def test_timeouts_and_connect_errors_count(self):
        refused = "http://127.0.0.1:%d" % harness.free_port()
        fd = self.fanoutd(config="[fanoutd]\nbreaker_failures = 3\nbreaker_cooldown = 1s\n")
        status, ans = self.batch({"mode": "settled", "max_concurrency": 1, "requests": [
            {"url": self.up.url("/delay/500"), "timeout_ms": 100}] * 3 +
            [refused + "/x"] * 3}, fd=fd)
        self.assertEqual(status, 200, ans)
        self.assertEqual([(r["error"]["type"], r["error"].get("phase")) for r in ans["results"]],
                         [("timeout", "response")] * 3 + [("connect", None)] * 3)
        self.assertEqual(self.state(fd), ("open", 1, 1))
        self.circuit_open(1, fd=fd)
        e = self.one_error(*self.batch([refused + "/x"], fd=fd))
        self.assertEqual((e["type"], e["retry_after_s"]), ("circuit_open", 1), e)
        m = Scrape(fd)
        self.assertEqual(m.get("fanoutd_upstream_breaker_trips_total", upstream=refused), 1)
        self.assertEqual(m.get("fanoutd_upstream_breaker_state", upstream=refused), 1)

    def test_a_retry_meets_the_open_breaker(self):
        fd = self.fanoutd(config="[fanoutd]\nretries = 3\nretry_backoff = 10ms\n"
                                 "breaker_failures = 2\nbreaker_cooldown = 1s\n")
        e = self.one_error(*self.batch([self.up.url("/flaky/bo?fail=5")], fd=fd))
        # the second 503 opened it: the third attempt is not sent
        self.assertEqual((e["type"], e["attempts"], e["retry_after_s"]),
                         ("circuit_open", 3, 1), e)
        self.assertEqual(count(self.up, "bo")["count"], 2)
        m = Scrape(fd)
        self.assertEqual(m.retries(self.up), {"503": 2})
        self.assertEqual(m.up("fanoutd_upstream_breaker_trips_total", self.up), 1)

    def test_a_cancelled_probe_lets_the_next_one_go(self):
        other = self.upstream()
        status, ans = self.batch({"mode": "settled", "max_concurrency": 1,
                                  "requests": [self.up.url("/status/503")] * 3})
        t_open = time.time()
        self.assertEqual(self.state(), ("open", 1, 1))
        wait_for_time(t_open + 1.1)
        # the probe is cancelled by another upstream's failure (fail fast)
        status, ans = self.batch([self.up.url("/delay/500"), other.url("/status/404")])
        self.assertEqual((status, ans["cancelled"]), (502, [0]), ans)
        self.assertEqual(self.state(), ("half_open", 2, 1))
        # the next request is the probe (not circuit_open), and closes it
        status, ans = self.batch([self.up.url("/json")])
        self.assertEqual(status, 200, ans)
        self.assertEqual(self.state(), ("closed", 0, 1))

    def test_what_counts(self):
        fd = self.fanoutd(config="[fanoutd]\nbreaker_failures = 3\nbreaker_cooldown = 1s\n")
        u = self.up.url

        def run(*paths):
            status, ans = self.batch({"mode": "settled", "max_concurrency": 1,
                                      "requests": [u(p) for p in paths]}, fd=fd)
            self.assertEqual(status, 200, ans)
            return ans["results"]

        # 4xx and 429 do not count
        run(*(["/status/404"] * 5 + ["/status/429"] * 5))
        self.assertEqual(self.state(fd), ("closed", 0, 0))
        # nor do timeouts while queued (behind a Retry-After pause of 0.3 s)
        run("/status/429?retry_after=0.3")
        t_pause = time.time()
        status, ans = self.batch({"mode": "settled", "requests": [
            {"url": u("/json"), "timeout_ms": 100}] * 3}, fd=fd)
        self.assertEqual([(r["error"]["type"], r["error"]["phase"]) for r in ans["results"]],
                         [("timeout", "queued")] * 3, ans)
        self.assertEqual(self.state(fd), ("closed", 0, 0))
        wait_for_time(t_pause + 0.35)
        # a success resets the count
        run("/status/503", "/status/502", "/json", "/status/500", "/status/503")
        self.assertEqual(self.state(fd), ("closed", 0, 0))
        # a 404 neither counts nor resets: the third 5xx in a row opens it
        run("/status/404", "/status/504")
        self.assertEqual(self.state(fd), ("open", 1, 1))
        self.assertEqual(self.up.stats()["requests"], 18)
        self.circuit_open(1, fd=fd)
        self.assertEqual(self.up.stats()["requests"], 18)


if __name__ == "__main__":
    harness.main()
