"""Hedging (SPEC section 15): hedge_after = 50ms | p95 in an [upstream]
section sends a second attempt of an idempotent request that has no answer
by then; the first answer wins and the other attempt is cancelled.

Against the test upstream's /tail/KEY?every=N&slow=MS (attempt I of KEY is
slow when I % N == 0, counted in /count/KEY):

  - a 200-URL batch with 5 % of the answers 500 ms late finishes in under
    250 ms with hedge_after = 50ms and takes at least 500 ms without; the
    extra upstream requests are the hedges, within the retry budget; each
    hedged result is the twin's answer ("hedged": true, the winner's
    timings) and each losing attempt is aborted at the upstream;
  - POST is never hedged; PUT is;
  - the retry budget bounds hedges (retry_budget = 0%: 3 at once);
  - over HTTP/2 the loser's stream is reset, the connection stays;
  - p95: a fixed 100 ms before 100 samples, the rolling p95 after;
    /v1/upstreams "latency" shows the rolling p50 and p95;
  - /metrics fanoutd_upstream_hedges_total and _hedges_won_total."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import count, key_of, upstream_entry  # noqa: E402
from harness import upstream_metric as metric  # noqa: E402


class Hedge(harness.TestCase):
    UPSTREAMS = 2
    STILL_ALIVE = True

    @staticmethod
    def CONFIG(c):
        # at the end of a batch only its stragglers are in flight: a budget
        # of 100 % lets each of them have a hedge (the default 20 %, 3)
        return ('[upstream "%s"]\nconcurrency = 100\nhedge_after = 50ms\n'
                'retry_budget = 100%%\n'
                '[upstream "%s"]\nconcurrency = 100\n' % (key_of(c.up), key_of(c.up2)))

    def tail(self, up, key, n=200, every=20, slow=500, method=None):
        """A batch of n /tail/KEY URLs: (seconds taken, answer)."""
        urls = [up.url("/tail/%s?every=%d&slow=%d&i=%d" % (key, every, slow, i))
                for i in range(n)]
        reqs = urls if method is None else [{"url": u, "method": method} for u in urls]
        t0 = time.time()
        status, ans = self.fd.batch({"mode": "settled", "requests": reqs})
        took = time.time() - t0
        self.assertEqual(status, 200, ans)
        return took, ans

    def test_the_slow_tail_is_hedged(self):
        hedges = metric(self.fd, "fanoutd_upstream_hedges_total", self.up)
        won = metric(self.fd, "fanoutd_upstream_hedges_won_total", self.up)
        aborted = self.up.stats()["aborted"]
        took, ans = self.tail(self.up, "hedged")
        self.assertTrue(ans["ok"], ans)
        self.assertLess(took, 0.25, "hedged batch took %.3f s" % took)
        sent = metric(self.fd, "fanoutd_upstream_hedges_total", self.up) - hedges
        n_won = metric(self.fd, "fanoutd_upstream_hedges_won_total", self.up) - won
        c = count(self.up, "hedged")["count"]
        # the 10 slow ones were hedged, each won by its twin; a fast answer
        # late on a loaded machine may be hedged too, within the budget
        self.assertEqual(c, 200 + sent)
        self.assertGreaterEqual(n_won, 10)
        self.assertLessEqual(sent, 20)
        hedged = [r for r in ans["results"] if r.get("hedged")]
        self.assertEqual(len(hedged), sent, ans)
        for r in ans["results"]:
            self.assertEqual(r["status"], 200, r)
            self.assertFalse(r["body"]["slow"], r)   # no slow answer was used
            self.assertLess(r["elapsed_ms"], 250, r)
        for r in hedged:
            self.assertLess(r["timing"]["total_ms"], 250, r)
        # every losing attempt was cancelled at the upstream
        self.assertTrue(harness.wait_until(
            lambda: self.up.stats()["aborted"] >= aborted + n_won, 3), self.up.stats())
        self.assertTrue(harness.wait_until(lambda: self.up.stats()["in_flight"] == 0, 3))

    def test_without_hedging_the_tail_waits(self):
        took, ans = self.tail(self.up2, "plain")
        self.assertTrue(ans["ok"], ans)
        self.assertGreaterEqual(took, 0.5)
        self.assertEqual(count(self.up2, "plain")["count"], 200)
        self.assertEqual(metric(self.fd, "fanoutd_upstream_hedges_total", self.up2), 0)
        self.assertEqual(sum(1 for r in ans["results"] if r["body"]["slow"]), 10)
        self.assertFalse(any(r.get("hedged") for r in ans["results"]))

    def test_post_is_never_hedged_put_is(self):
        hedges = metric(self.fd, "fanoutd_upstream_hedges_total", self.up)
        took, ans = self.tail(self.up, "post", n=3, every=1, slow=300, method="POST")
        self.assertGreaterEqual(took, 0.3)
        self.assertEqual(count(self.up, "post")["count"], 3)
        self.assertEqual(metric(self.fd, "fanoutd_upstream_hedges_total", self.up), hedges)
        self.assertFalse(any(r.get("hedged") for r in ans["results"]))
        # PUT is idempotent: hedged (every attempt is slow here: the first
        # answer, the original's, wins and the hedge is cancelled)
        took, ans = self.tail(self.up, "put", n=1, every=1, slow=300, method="PUT")
        self.assertEqual(count(self.up, "put")["count"], 2)
        r = ans["results"][0]
        self.assertIs(r["hedged"], True, r)
        self.assertEqual(r["body"]["attempt"], 1, r)

    def test_retries_still_apply_with_hedging(self):
        """the attempt and its hedge are both reset: the request is retried
        by its policy, as without hedging"""
        fd = self.fanoutd(config='[upstream "%s"]\nhedge_after = 50ms\nretries = 3\n'
                          'retry_budget = 100%%\n' % key_of(self.up))
        status, ans = fd.batch([self.up.url("/flaky/rh?fail=2&reset=1&delay=200")])
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual(r["body"]["attempt"], 3, r)
        self.assertIs(r["hedged"], True, r)
        self.assertEqual(r["attempts"], 2, r)   # a hedge is not an attempt of its own
        # 1 and its hedge 2 reset; the retry 3 is hedged too (4), 3 answers first
        self.assertEqual(count(self.up, "rh")["count"], 4)

    def test_the_budget_bounds_hedges(self):
        fd = self.fanoutd(config='[upstream "%s"]\nconcurrency = 100\nhedge_after = 20ms\n'
                          'retry_budget = 0%%\n' % key_of(self.up))
        urls = [self.up.url("/tail/budget?every=1&slow=300&i=%d" % i) for i in range(30)]
        status, ans = fd.batch({"mode": "settled", "requests": urls})
        self.assertEqual(status, 200, ans)
        self.assertEqual(metric(fd, "fanoutd_upstream_hedges_total", self.up), 3)
        self.assertEqual(metric(fd, "fanoutd_upstream_retry_budget_exhausted_total",
                                self.up), 27)
        self.assertEqual(count(self.up, "budget")["count"], 33)

    def test_a_hedge_goes_before_the_queue(self):
        """concurrency 2: one slow request, eight of 30 ms queued behind (one
        slot serves them in turn); the hedge takes the first slot that frees
        after 60 ms, before the rest of the eight."""
        up = self.upstream()
        fd = self.fanoutd(config='[upstream "%s"]\nconcurrency = 2\nhedge_after = 60ms\n'
                          % key_of(up))
        urls = ([up.url("/tail/ahead?every=1&slow=700")] +
                [up.url("/tail/behind?every=1000&base=30&i=%d" % i) for i in range(8)])
        status, ans = fd.batch(urls)
        self.assertEqual(status, 200, ans)
        self.assertIs(ans["results"][0]["hedged"], True, ans)
        t = count(up, "ahead")["times_ms"]
        behind = count(up, "behind")["times_ms"]
        self.assertEqual(len(t), 2)
        # FIFO would have sent it after all eight (about 240 ms)
        self.assertLess(t[1] - t[0], 150, (t, behind))
        self.assertGreater(behind[-1], t[1], (t, behind))

    def test_a_hedge_never_sent_is_not_counted(self):
        """concurrency 1: the hedge waits for the slot its own request
        holds; the answer comes first and the hedge is dropped unsent."""
        up = self.upstream()
        fd = self.fanoutd(config='[upstream "%s"]\nconcurrency = 1\nhedge_after = 20ms\n'
                          % key_of(up))
        status, ans = fd.batch([up.url("/tail/unsent?every=1&slow=200")])
        self.assertEqual(status, 200, ans)
        self.assertNotIn("hedged", ans["results"][0])
        self.assertEqual(count(up, "unsent")["count"], 1)
        self.assertEqual(metric(fd, "fanoutd_upstream_hedges_total", up), 0)

    def test_p95(self):
        up = self.upstream()
        fd = self.fanoutd(config='[upstream "%s"]\nconcurrency = 100\nhedge_after = p95\n'
                          % key_of(up))
        # fewer than 100 samples: hedged after a fixed 100 ms
        status, ans = fd.batch([up.url("/tail/p95a?every=1&slow=400")])
        self.assertIs(ans["results"][0]["hedged"], True, ans)
        t = count(up, "p95a")["times_ms"]
        self.assertEqual(len(t), 2)
        # measured at the upstream's arrivals: the timer runs from the first
        # attempt's slot, before its connect (a few ms under ASan and load)
        self.assertGreaterEqual(t[1] - t[0], 80)
        self.assertLess(t[1] - t[0], 250)
        # 120 answers of about 10 ms: the p95 is near 10 ms
        status, ans = fd.batch([up.url("/tail/fill?every=1000&base=10&i=%d" % i)
                                for i in range(120)])
        self.assertTrue(ans["ok"])
        lat = upstream_entry(fd, up)["latency"]
        self.assertGreaterEqual(lat["samples"], 120)
        self.assertGreaterEqual(lat["p50_ms"], 9)
        self.assertLess(lat["p50_ms"], 60)
        self.assertGreaterEqual(lat["p95_ms"], lat["p50_ms"])
        status, ans = fd.batch([up.url("/tail/p95b?every=1&slow=400")])
        self.assertIs(ans["results"][0]["hedged"], True, ans)
        t = count(up, "p95b")["times_ms"]
        self.assertEqual(len(t), 2)
        self.assertLess(t[1] - t[0], 90, lat)

    def test_latency_before_any_answer_is_null(self):
        up = self.upstream()
        fd = self.fanoutd(config='[upstream "%s"]\nconcurrency = 2\n' % key_of(up))
        fd.batch([up.url("/reset")])
        lat = upstream_entry(fd, up)["latency"]
        self.assertEqual(lat, {"samples": 0, "p50_ms": None, "p95_ms": None})


class HedgeH2(harness.TestCase):
    """Over HTTP/2 the losing attempt's stream is reset, not its connection."""
    UPSTREAMS = 0
    FANOUTD = False

    def test_the_loser_stream_is_reset(self):
        h2 = self.upstream(extra_args=["--h2"])
        fd = self.fanoutd(config='[upstream "%s"]\nhttp2 = prior-knowledge\n'
                          'hedge_after = 50ms\nconcurrency = 10\n' % key_of(h2))
        # attempt 2 of the key is the slow one: the original; its hedge
        # (attempt 3) answers at once
        urls = [h2.url("/tail/h2?every=2&slow=2000&i=%d" % i) for i in range(2)]
        t0 = time.time()
        status, ans = fd.batch(urls)
        took = time.time() - t0
        self.assertEqual(status, 200, ans)
        self.assertLess(took, 1.0)
        self.assertEqual([r.get("hedged", False) for r in ans["results"]].count(True), 1)
        for r in ans["results"]:
            self.assertEqual(r["protocol"], "h2")
            self.assertFalse(r["body"]["slow"])
        self.assertTrue(harness.wait_until(lambda: h2.stats()["rst_received"] >= 1, 3),
                        h2.stats())
        self.assertEqual(h2.stats()["h2_connections"], 1)
        self.assertEqual(count(h2, "h2")["count"], 3)


if __name__ == "__main__":
    harness.main()
