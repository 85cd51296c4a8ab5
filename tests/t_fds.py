"""Out of file descriptors (a low ulimit -n): a request that finds no
descriptor to connect with waits for one to be freed, FIFO, under its own
timeout (phase "queued"), instead of failing as a connect error."""

import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from t_tls import make_pki  # noqa: E402

# fanoutd itself holds about 10 (stdio, epoll, signal pipe, listener, DNS,
# a spare for accept): some 30 are left for upstream connections
NOFILE = 40


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


class OutOfFds(harness.TestCase):
    # the upstream limit is far above what the descriptors allow
    CONFIG = "[fanoutd]\nupstream_concurrency = 200\nrequest_timeout = 10s\n"
    FANOUTD_ARGS = {"preexec": low_nofile}
    PER_TEST = True

    def test_requests_wait_for_a_descriptor(self):
        n = 100
        status, ans = self.fd.batch([self.up.url("/delay/200?%d" % i) for i in range(n)],
                                    timeout=60)
        self.assertEqual(status, 200, ans)
        self.assertEqual([r["status"] for r in ans["results"]], [200] * n)
        st = self.up.stats()
        self.assertEqual(st["requests"], n)
        # the descriptors were the limit: never all at once, but many
        self.assertLess(st["max_in_flight"], NOFILE)
        self.assertGreater(st["max_in_flight"], 5)
        # those that waited for a descriptor count it as queued time
        waited = [r for r in ans["results"] if r["timing"]["queued_ms"] >= 150]
        self.assertGreater(len(waited), 0)
        for r in waited:
            self.assertLess(r["timing"]["connect_ms"], 150, r)
        # and fanoutd goes on: the descriptors came back
        status, ans = self.fd.batch([self.up.url("/json")] * 5)
        self.assertEqual(status, 200, ans)

    def test_idle_connections_of_another_upstream_make_room(self):
        # 30 kept-alive connections to one upstream hold the descriptors
        # (keepalive_timeout is 30 s): a batch to another must not wait for them
        up2 = harness.Upstream()
        try:
            status, ans = self.fd.batch([self.up.url("/delay/300?%d" % i) for i in range(30)])
            self.assertEqual(status, 200, ans)
            status, ans = self.fd.batch([up2.url("/delay/100?%d" % i) for i in range(40)],
                                        timeout=60)
            self.assertEqual(status, 200, ans)
            self.assertLess(ans["elapsed_ms"], 4000)    # well before any timeout
            self.assertEqual(up2.stats()["requests"], 40)
        finally:
            up2.stop()

    def test_https_requests_wait_too(self):
        # the same through an OpenSSL bufferevent, with the handshake after
        pki_dir = tempfile.mkdtemp(prefix="fanoutd-pki-")
        pki = make_pki(pki_dir)
        up = harness.Upstream(tls=pki["good"])
        fd = harness.Fanoutd(config="[fanoutd]\nupstream_concurrency = 200\n"
                                    "request_timeout = 10s\nca_file = %s\n"
                                    % os.path.join(pki_dir, "ca.pem"), preexec=low_nofile)
        try:
            n = 60
            status, ans = fd.batch([up.url("/delay/200?%d" % i) for i in range(n)],
                                   timeout=60)
            self.assertEqual(status, 200, ans)
            self.assertEqual([r["status"] for r in ans["results"]], [200] * n)
            self.assertLess(up.stats()["max_in_flight"], NOFILE)
        finally:
            fd.stop()
            up.stop()
            shutil.rmtree(pki_dir, ignore_errors=True)

    def test_wait_for_a_descriptor_is_bounded_by_the_request_timeout(self):
        # a client connection opened while there are descriptors to accept it
        c = self.fd.connection()
        c.request("GET", "/healthz")
        self.assertEqual(c.getresponse().read(), b'{"status":"ok"}')
        # one batch takes every descriptor for 2 s (and queues the rest) ...
        result = []
        t = threading.Thread(target=lambda: result.append(self.fd.batch(
            [self.up.url("/delay/2000?%d" % i) for i in range(40)], timeout=60)))
        t.start()
        harness.wait_until(lambda: self.up.stats()["in_flight"] >= 20, 5, 0.05)
        time.sleep(0.2)
        # ... so another batch's requests wait for one, until their own timeout
        c.request("POST", "/v1/batch", json.dumps({"mode": "settled", "requests": [
            {"url": self.up.url("/json?%d" % i), "timeout_ms": 500} for i in range(5)]}))
        r = c.getresponse()
        ans = json.loads(r.read())
        c.close()
        self.assertEqual(r.status, 200, ans)
        self.assertEqual([e["error"] for e in ans["results"]], [{
            "type": "timeout", "phase": "queued",
            "message": "no free file descriptor to connect with within 500 ms (ulimit -n)"}] * 5)
        t.join(30)
        # the first batch got its descriptors as its own connections freed them
        status, ans = result[0]
        self.assertEqual(status, 200, ans)
        self.assertEqual(self.up.stats()["requests"], 40)     # the 5 sent nothing


if __name__ == "__main__":
    harness.main()
