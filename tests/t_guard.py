"""What fanoutd refuses: hosts outside allow_hosts, addresses in
deny_networks (literal or resolved) and the unspecified addresses that
reach the local host, and load beyond global_concurrency and max_queued."""

import http.client
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from dnsserver import DNSServer  # noqa: E402


def stats(up):
    """up.stats(), also for an upstream on [::1] (Upstream asks 127.0.0.1)."""
    if up.host == "127.0.0.1":
        return up.stats()
    c = http.client.HTTPConnection("::1", up.port, timeout=10)
    c.request("GET", "/stats")
    body = c.getresponse().read()
    c.close()
    return json.loads(body)


class DNSServer6(DNSServer):
    """DNSServer that also answers AAAA queries, from records6."""

    def __init__(self, records, records6, ttl=1):
        self.records6 = records6
        super().__init__(records, ttl)

    def _answer(self, data):
        reply = super()._answer(data)
        if reply is None or len(data) < 12:
            return reply
        i = 12
        while i < len(data) and data[i] != 0:
            i += 1 + data[i]
        qtype, = struct.unpack("!H", data[i + 1:i + 3])
        name = self.queries[-1][0]
        if qtype != 28 or name not in self.records6:
            return reply
        qid, flags = struct.unpack("!HH", data[:4])
        answers = b"".join(struct.pack("!HHHIH", 0xC00C, 28, 1, self.ttl, 16) +
                           socket.inet_pton(socket.AF_INET6, a) for a in self.records6[name])
        return (struct.pack("!HHHHHH", qid, 0x8180 | (flags & 0x0100), 1,
                            len(self.records6[name]), 0, 0) + data[12:i + 5] + answers)


class Guards(harness.TestCase):
    FANOUTD = False
    PER_TEST = True

    def test_allow_hosts(self):
        fd = self.fanoutd(config="[fanoutd]\nallow_hosts = 127.0.0.*, *.example.com\n")
        status, ans = fd.batch([self.up.url("/json")])
        self.assertEqual(status, 200)
        self.up.reset()
        status, ans = fd.batch([self.up.url("/json"),
                                "http://localhost:%d/json" % self.up.port])
        self.assertEqual((status, ans), (400, {
            "ok": False, "error": "invalid_request",
            "message": '[1]: host "localhost" is not in allow_hosts'}))
        self.assertEqual(self.up.stats()["requests"], 0)   # nothing sent

    def test_deny_networks_literal_is_400(self):
        fd = self.fanoutd()   # default: 169.254.0.0/16, fe80::/10
        status, ans = fd.batch([self.up.url("/json"), "http://169.254.169.254/latest/"])
        self.assertEqual((status, ans["message"]),
                         (400, "[1]: address 169.254.169.254 is in deny_networks"))
        status, ans = fd.batch(["http://[fe80::1]/x"])
        self.assertEqual(ans["message"], "[0]: address fe80::1 is in deny_networks")
        self.assertEqual(self.up.stats()["requests"], 0)

    def test_deny_networks_resolved_name_is_forbidden(self):
        # localhost resolves (hosts file; evdns adds ::1) into denied blocks:
        # never connected to
        fd = self.fanoutd(config="[fanoutd]\ndeny_networks = 127.0.0.0/8, ::1/128\n")
        status, ans = fd.batch({"mode": "settled", "requests": [
            "http://localhost:%d/json" % self.up.port]})
        e = ans["results"][0]["error"]
        self.assertEqual(e["type"], "forbidden")
        self.assertEqual(e["message"], "localhost resolves into deny_networks; "
                                       "nothing was sent")
        self.assertEqual(self.up.stats()["connections"], 0)

    def test_unspecified_literal_is_400(self):
        # 0.0.0.0/8 and :: connect to the local host: refused whatever
        # deny_networks says (here the default, which allows loopback)
        fd = self.fanoutd()
        for host, shown in (("0.0.0.0", "0.0.0.0"), ("0.1.2.3", "0.1.2.3"),
                            ("[::]", "::"), ("[::ffff:0.0.0.0]", "::ffff:0.0.0.0")):
            status, ans = fd.batch([self.up.url("/json"),
                                    "http://%s:%d/json" % (host, self.up.port)])
            self.assertEqual((status, ans), (400, {
                "ok": False, "error": "invalid_request",
                "message": "[1]: address %s is in deny_networks" % shown}))
        self.assertEqual(self.up.stats()["requests"], 0)   # nothing sent

    def test_ipv4_mapped_literal_counts_as_ipv4(self):
        fd = self.fanoutd(config="[fanoutd]\ndeny_networks = 127.0.0.0/8\n")
        status, ans = fd.batch(["http://[::ffff:127.0.0.1]:%d/json" % self.up.port])
        self.assertEqual((status, ans), (400, {
            "ok": False, "error": "invalid_request",
            "message": "[0]: address ::ffff:127.0.0.1 is in deny_networks"}))
        self.assertEqual(self.up.stats()["requests"], 0)

    def test_name_resolving_to_unspecified_is_forbidden(self):
        v6 = harness.has_ipv6()
        up6 = harness.Upstream(listen="[::1]:0") if v6 else None
        dns = DNSServer6({"zero.fanoutd.test.": ["0.0.0.0"]},
                         {"zero6.fanoutd.test.": ["::"]})
        tmp = tempfile.mkdtemp(prefix="fanoutd-dns-")
        resolv = os.path.join(tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1:%d\n" % dns.port)
        fd = harness.Fanoutd(config="[fanoutd]\nresolv_conf = %s\n" % resolv)
        try:
            names = [("zero.fanoutd.test", self.up)] + ([("zero6.fanoutd.test", up6)]
                                                        if v6 else [])
            for name, up in names:
                url = "http://%s:%d/json" % (name, up.port)
                status, ans = fd.batch({"mode": "settled", "requests": [url]})
                self.assertEqual(status, 200, ans)
                e = ans["results"][0]["error"]
                self.assertEqual(e, {"type": "forbidden", "message": "%s resolves into "
                                     "deny_networks; nothing was sent" % name})
                self.assertEqual(stats(up)["connections"], 0)   # never connected
        finally:
            fd.stop()
            dns.stop()
            if up6:
                up6.stop()
            shutil.rmtree(tmp, ignore_errors=True)

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
        fd = self.fanoutd(config="[fanoutd]\nupstream_concurrency = 1\nmax_queued = 12\n")
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


if __name__ == "__main__":
    harness.main()
