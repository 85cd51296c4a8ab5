"""What fanoutd refuses: hosts outside allow_hosts, addresses in
deny_networks (literal or resolved), and load beyond global_concurrency
and max_queued."""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Guards(unittest.TestCase):
    def setUp(self):
        self.up = harness.Upstream()

    def tearDown(self):
        self.up.stop()

    def test_allow_hosts(self):
        fd = harness.Fanoutd(config="[fanoutd]\nallow_hosts = 127.0.0.*, *.example.com\n")
        try:
            status, ans = fd.batch([self.up.url("/json")])
            self.assertEqual(status, 200)
            self.up.reset()
            status, ans = fd.batch([self.up.url("/json"),
                                    "http://localhost:%d/json" % self.up.port])
            self.assertEqual((status, ans), (400, {
                "ok": False, "error": "invalid_request",
                "message": '[1]: host "localhost" is not in allow_hosts'}))
            self.assertEqual(self.up.stats()["requests"], 0)   # nothing sent
        finally:
            fd.stop()

    def test_deny_networks_literal_is_400(self):
        fd = harness.Fanoutd()   # default: 169.254.0.0/16, fe80::/10
        try:
            status, ans = fd.batch([self.up.url("/json"), "http://169.254.169.254/latest/"])
            self.assertEqual((status, ans["message"]),
                             (400, "[1]: address 169.254.169.254 is in deny_networks"))
            status, ans = fd.batch(["http://[fe80::1]/x"])
            self.assertEqual(ans["message"], "[0]: address fe80::1 is in deny_networks")
            self.assertEqual(self.up.stats()["requests"], 0)
        finally:
            fd.stop()

    def test_deny_networks_resolved_name_is_forbidden(self):
        # localhost resolves (hosts file; evdns adds ::1) into denied blocks:
        # never connected to
        fd = harness.Fanoutd(config="[fanoutd]\ndeny_networks = 127.0.0.0/8, ::1/128\n")
        try:
            status, ans = fd.batch({"mode": "settled", "requests": [
                "http://localhost:%d/json" % self.up.port]})
            e = ans["results"][0]["error"]
            self.assertEqual(e["type"], "forbidden")
            self.assertEqual(e["message"], "localhost resolves into deny_networks; "
                                           "nothing was sent")
            self.assertEqual(self.up.stats()["connections"], 0)
        finally:
            fd.stop()

    def test_global_concurrency(self):
        up2 = harness.Upstream()
        fd = harness.Fanoutd(config="[fanoutd]\nupstream_concurrency = 10\n"
                                    "global_concurrency = 4\n")
        try:
            urls = [self.up.url("/delay/100")] * 10 + [up2.url("/delay/100")] * 10
            t0 = time.time()
            status, ans = fd.batch(urls)
            self.assertEqual(status, 200)
            a, b = self.up.stats()["max_in_flight"], up2.stats()["max_in_flight"]
            self.assertLessEqual(a + b, 8)      # each saw at most 4 ...
            self.assertLessEqual(a, 4)
            self.assertLessEqual(b, 4)
            self.assertGreater(time.time() - t0, 0.45)   # ... so 20 took 5 waves
        finally:
            fd.stop()
            up2.stop()

    def test_max_queued_overloaded(self):
        fd = harness.Fanoutd(config="[fanoutd]\nupstream_concurrency = 1\nmax_queued = 12\n")
        try:
            result = []
            t = threading.Thread(target=lambda: result.append(
                fd.batch([self.up.url("/delay/100")] * 10)))
            t.start()
            time.sleep(0.2)                     # 1 in flight, about 7 waiting
            requests_before = self.up.stats()["requests"]
            status, ans = fd.batch([self.up.url("/json")] * 10)
            self.assertEqual(status, 503)
            self.assertEqual(ans["error"], "overloaded")
            self.assertRegex(ans["message"], r"^\d+ requests are waiting; 10 more would pass "
                                             r"max_queued \(12\)$")
            t.join(10)
            self.assertEqual(result[0][0], 200)
            # the refused batch sent nothing: only the first batch's requests arrived
            self.assertEqual(self.up.stats()["requests"], 10)
            self.assertLessEqual(requests_before, 10)
            status, ans = fd.batch([self.up.url("/json")] * 10)   # room again
            self.assertEqual(status, 200)
        finally:
            fd.stop()


if __name__ == "__main__":
    harness.main()
