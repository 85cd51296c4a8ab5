"""Per-upstream FIFO semaphore shared by all batches; keep-alive reuse;
many clients at once."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import in_threads  # noqa: E402


class Limits(harness.TestCase):
    UPSTREAMS = 2
    CONFIG = "[fanoutd]\nupstream_concurrency = 5\n"
    RESET = True

    def test_limit_5_holds_and_paces(self):
        t0 = time.time()
        status, ans = self.fd.batch([self.up.url("/delay/100")] * 50)
        took = time.time() - t0
        self.assertEqual(status, 200, ans)
        st = self.up.stats()
        self.assertEqual(st["max_in_flight"], 5)
        self.assertEqual(st["requests"], 50)
        # 10 waves of 100 ms: about 1 s, not 0.1 s, not 5 s
        self.assertGreater(took, 0.95)
        self.assertLess(took, 2.5)
        queued = [r["timing"]["queued_ms"] for r in ans["results"]]
        self.assertLess(max(queued[:5]), 50)
        self.assertGreater(max(queued[45:]), 800)   # the last wave waited ~900 ms

    def test_two_batches_share_the_limit_and_second_upstream_is_free(self):
        slow = [self.up.url("/delay/100")] * 40
        t_other = []

        def other():
            time.sleep(0.1)
            t0 = time.time()
            r = self.fd.batch([self.up2.url("/delay/50")] * 5)
            t_other.append(time.time() - t0)
            return r

        res = in_threads([lambda: self.fd.batch(slow), lambda: self.fd.batch(slow), other])
        for status, ans in res:
            self.assertEqual(status, 200, ans)
        self.assertEqual(self.up.stats()["max_in_flight"], 5)
        self.assertEqual(self.up.stats()["requests"], 80)
        # the busy first upstream does not slow the second one
        self.assertLess(t_other[0], 0.5)

    def test_fifo_small_batch_not_starved(self):
        big = [self.up.url("/delay/50")] * 100
        t_small = []

        def small():
            time.sleep(0.1)
            t0 = time.time()
            r = self.fd.batch([self.up.url("/delay/50")] * 5)
            t_small.append(time.time() - t0)
            return r

        res = in_threads([lambda: self.fd.batch(big), small])
        self.assertEqual([s for s, _ in res], [200, 200])
        # FIFO: the small batch waits behind what was queued before it
        # (~1 s of the big one) but finishes long before the big one ends
        self.assertLess(t_small[0], 1.6)

    def test_keepalive_reuse_opens_at_most_limit_connections(self):
        fd = self.fanoutd(config="[fanoutd]\nupstream_concurrency = 10\n")
        status, ans = fd.batch([self.up.url("/delay/5")] * 100)
        self.assertEqual(status, 200)
        self.assertLessEqual(self.up.stats()["connections"], 10)
        self.assertGreaterEqual(sum(r["reused"] for r in ans["results"]), 90)
        # a second batch reuses the idle connections
        fd.batch([self.up.url("/json")] * 10)
        self.assertLessEqual(self.up.stats()["connections"], 10)
        reused = [r for r in ans["results"] if r["reused"]]
        self.assertEqual({r["timing"]["connect_ms"] for r in reused}, {0})

    def test_max_connections_caps_connections_not_requests(self):
        fd = self.fanoutd(config="[fanoutd]\nupstream_concurrency = 10\n"
                                 "max_connections = 20\n"
                                 "[upstream \"%s\"]\nmax_connections = 2\n" % self.up.url(""))
        t0 = time.time()
        status, ans = fd.batch([self.up.url("/delay/100")] * 10)
        took = time.time() - t0
        self.assertEqual(status, 200, ans)
        st = self.up.stats()
        # 10 slots, 2 connections: 2 at a time, 5 waves of 100 ms
        self.assertEqual((st["connections"], st["max_in_flight"], st["requests"]), (2, 2, 10))
        self.assertGreater(took, 0.45)
        self.assertLess(took, 1.5)
        self.assertEqual(sum(r["reused"] for r in ans["results"]), 8)
        _, _, data = fd.request("GET", "/v1/upstreams")
        up = json.loads(data)["upstreams"][0]
        self.assertEqual((up["connections"], up["idle_connections"],
                          up["connections_opened"]), (2, 2, 2))
        # the wait for a connection is queued time, and the deadline holds
        self.assertGreater(max(r["timing"]["queued_ms"] for r in ans["results"]), 300)
        status, ans = fd.batch({"mode": "settled", "requests": [
            {"url": self.up.url("/delay/300"), "timeout_ms": 200} for _ in range(3)]})
        errors = [r["error"] for r in ans["results"] if "error" in r]
        self.assertIn({"type": "timeout", "phase": "queued",
                       "message": "no connection to %s free within 200 ms "
                                  "(max_connections)" % self.up.url("")}, errors)
        # [fanoutd] max_connections = 20 applies to the other upstream
        status, ans = fd.batch([self.up2.url("/delay/50")] * 10)
        self.assertEqual((status, self.up2.stats()["connections"]), (200, 10))

    def test_idle_connections_closed_after_keepalive_timeout(self):
        up = harness.Upstream()
        fd = harness.Fanoutd(config="[fanoutd]\nkeepalive_timeout = 300ms\n")
        try:
            fd.batch([up.url("/delay/10")] * 4)
            self.assertEqual(up.stats()["open_connections"], 4)
            status, _, data = fd.request("GET", "/v1/upstreams")
            self.assertEqual(json.loads(data)["upstreams"][0]["idle_connections"], 4)
            time.sleep(0.8)
            self.assertEqual(up.stats()["open_connections"], 0)
            status, _, data = fd.request("GET", "/v1/upstreams")
            self.assertEqual(json.loads(data)["upstreams"][0]["idle_connections"], 0)
            # and the next batch simply opens new ones
            status, ans = fd.batch([up.url("/json")])
            self.assertEqual((status, ans["results"][0]["reused"]), (200, False))
        finally:
            fd.stop()
            up.stop()

    def test_2000_urls_and_50_clients(self):
        fd = self.fanoutd(config="[fanoutd]\nupstream_concurrency = 64\n")
        big = [self.up.url("/json?i=%d" % i) for i in range(2000)]
        clients = [lambda: fd.batch(big, timeout=60)]
        clients += [lambda i=i: fd.batch([self.up2.url("/delay/%d" % (i % 20))] * 10)
                    for i in range(50)]
        res = in_threads(clients)
        for status, ans in res:
            self.assertEqual(status, 200)
            self.assertIs(ans["ok"], True)
        self.assertEqual(len(res[0][1]["results"]), 2000)
        self.assertEqual([r["index"] for r in res[0][1]["results"]], list(range(2000)))
        self.assertLessEqual(self.up2.stats()["max_in_flight"], 64)


if __name__ == "__main__":
    harness.main()
