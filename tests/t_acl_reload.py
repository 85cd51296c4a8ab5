"""deny_networks changed by a reload (SIGHUP) holds for kept-alive
connections too: a connection to an address the new list denies is closed,
idle or busy, and never carries another request.  (A name is checked on its
resolved addresses just before connecting; a reused connection connects to
nothing, so without this it would slip past the new list.)"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

OPEN = "[fanoutd]\nkeepalive_timeout = 30s\n"
DENY_LOOPBACK = ("[fanoutd]\nkeepalive_timeout = 30s\n"
                 "deny_networks = 169.254.0.0/16, fe80::/10, 127.0.0.0/8, ::1/128\n")


class ReloadDeny(harness.TestCase):
    CONFIG = OPEN
    PER_TEST = True

    def setUp(self):
        super().setUp()
        # a name, so that the request passes validation after the reload
        # and only the check on addresses stands between it and the upstream
        self.url = "http://localhost:%d/json" % self.up.port

    def reload(self, text):
        self.fd.reload(text, timeout=5)

    def idle_connections(self):
        status, hdrs, data = self.fd.request("GET", "/v1/upstreams")
        ups = [u for u in json.loads(data)["upstreams"]
               if u["upstream"] == "http://localhost:%d" % self.up.port]
        return ups[0]["idle_connections"] if ups else 0

    def assert_forbidden(self):
        status, ans = self.fd.batch({"mode": "settled", "requests": [self.url]})
        self.assertEqual(status, 200, ans)
        entry = ans["results"][0]
        for k in ("elapsed_ms", "timing"):
            entry.pop(k, None)
        self.assertEqual(entry, {
            "index": 0, "url": self.url, "reused": False, "attempts": 1, "retry_wait_ms": 0.0,
            "error": {"type": "forbidden",
                      "message": "localhost resolves into deny_networks; nothing was sent"}})

    def test_reload_closes_idle_connections_it_denies(self):
        for reused in (False, True):         # the second batch rides the kept connection
            status, ans = self.fd.batch([self.url])
            self.assertEqual(status, 200, ans)
            self.assertEqual(ans["results"][0]["reused"], reused)
        self.assertEqual(self.idle_connections(), 1)
        self.up.reset()
        self.reload(DENY_LOOPBACK)
        # closed by the reload itself, not at the next request
        self.assertEqual(self.idle_connections(), 0)
        for _ in range(3):
            self.assert_forbidden()
            time.sleep(0.2)
        self.assertEqual(self.up.stats()["requests"], 0)      # nothing reached it
        # and back: allowed again, on a new connection
        self.reload(OPEN)
        status, ans = self.fd.batch([self.url])
        self.assertEqual(status, 200, ans)
        self.assertFalse(ans["results"][0]["reused"])

    def test_connection_busy_during_reload_is_not_kept(self):
        result = []
        t = threading.Thread(target=lambda: result.append(
            self.fd.batch([self.url.replace("/json", "/delay/1000")])))
        t.start()
        harness.wait_until(lambda: self.up.stats()["in_flight"] >= 1)
        self.reload(DENY_LOOPBACK)
        t.join(10)
        # in flight when the list changed: it finishes (a reload drops nothing) ...
        self.assertEqual(result[0][0], 200, result)
        # ... but its connection is not kept for the next request
        self.assertEqual(self.idle_connections(), 0)
        self.up.reset()
        self.assert_forbidden()
        self.assertEqual(self.up.stats()["requests"], 0)


if __name__ == "__main__":
    harness.main()
