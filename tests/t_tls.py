"""Real upstreams: HTTPS with verification (a throwaway CA made here with
the openssl CLI), async DNS with /etc/hosts and a cache, IPv6."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from dnsserver import DNSServer  # noqa: E402

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d):
    """A CA, and certificates signed by it: good (localhost, 127.0.0.1,
    ::1), wrong host, expired; and a self-signed one."""
    openssl("req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=fanoutd test CA", cwd=d)

    def signed(name, san, days):
        openssl("req", *EC, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + name, cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", str(days),
                "-extfile", name + ".ext", cwd=d)

    signed("good", "DNS:localhost,IP:127.0.0.1,IP:::1", 2)
    signed("wronghost", "DNS:other.example", 2)
    signed("expired", "DNS:localhost,IP:127.0.0.1", -1)
    openssl("req", "-x509", *EC, "-keyout", "self.key", "-out", "self.pem", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", cwd=d)
    return {n: (os.path.join(d, n + ".pem"), os.path.join(d, n + ".key"))
            for n in ("good", "wronghost", "expired", "self")}


class TLS(harness.TestCase):
    UPSTREAMS = 0           # cls.good, with the PKI's certificate
    CONFIG = staticmethod(lambda cls: "[fanoutd]\nca_file = %s\n" % cls.ca)

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="fanoutd-pki-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, ignore_errors=True)
        cls.pki = make_pki(cls.dir)
        cls.ca = os.path.join(cls.dir, "ca.pem")
        cls.good = harness.Upstream(tls=cls.pki["good"])
        cls.addClassCleanup(cls.good.stop)
        super().setUpClass()

    def setUp(self):
        super().setUp()
        self.good.reset()

    def tls_error(self, name):
        up = harness.Upstream(tls=self.pki[name])
        try:
            status, ans = self.fd.batch([up.url("/json")])
            self.assertEqual(status, 502)
            e = ans["errors"][0]
            self.assertEqual(e["type"], "tls")
            # the handshake failed: no HTTP request reached the upstream
            self.assertEqual(up.stats()["requests"], 0)
            return e["message"]
        finally:
            up.stop()

    def test_trusted_certificate(self):
        urls = [self.good.url("/json"), self.good.url("/binary"),
                "https://localhost:%d/bytes/70000" % self.good.port]
        status, ans = self.fd.batch(urls)
        self.assertEqual(status, 200, ans)
        r = ans["results"]
        self.assertEqual(r[0]["body"], {"name": "Ada", "n": [1, 2, 3]})
        self.assertEqual(r[1]["encoding"], "base64")
        self.assertEqual(len(r[2]["body"]), 70000)

    def test_untrusted(self):
        self.assertEqual(self.tls_error("self"),
                         "untrusted certificate (self-signed certificate)")

    def test_host_name_mismatch(self):
        self.assertEqual(self.tls_error("wronghost"), "certificate does not match host")

    def test_expired(self):
        self.assertEqual(self.tls_error("expired"), "certificate expired")

    def test_plain_http_to_tls_port_is_tls_error(self):
        plain = harness.Upstream()
        try:
            status, ans = self.fd.batch(["https://127.0.0.1:%d/json" % plain.port])
            e = ans["errors"][0]
            self.assertEqual(e["type"], "tls")
            self.assertTrue(e["message"].startswith("TLS handshake failed"), e["message"])
        finally:
            plain.stop()

    def test_tls_verify_no_per_upstream(self):
        up = harness.Upstream(tls=self.pki["self"])
        fd = harness.Fanoutd(config='[fanoutd]\nca_file = %s\n\n[upstream "https://127.0.0.1:%d"]\n'
                                    "tls_verify = no\n" % (self.ca, up.port))
        try:
            status, ans = fd.batch([up.url("/json")])
            self.assertEqual(status, 200, ans)
            self.assertIn("tls_verify = no for https://127.0.0.1:%d" % up.port, fd.read_log())
        finally:
            fd.stop()
            up.stop()

    def test_reuse_skips_the_handshake(self):
        fd = self.fanoutd(config="[fanoutd]\nca_file = %s\nupstream_concurrency = 1\n"
                                 % self.ca)
        status, ans = fd.batch([self.good.url("/json")] * 3)
        r = ans["results"]
        self.assertEqual([x["reused"] for x in r], [False, True, True])
        self.assertEqual([x["protocol"] for x in r], ["http/1.1"] * 3)
        self.assertGreater(r[0]["timing"]["connect_ms"], 0)
        self.assertEqual(r[1]["timing"]["connect_ms"], 0)
        self.assertEqual(self.good.stats()["handshakes"], 1)

    def test_200_urls_limit_10_at_most_10_handshakes(self):
        t0 = time.time()
        status, ans = self.fd.batch([self.good.url("/json?i=%d" % i) for i in range(200)])
        took = time.time() - t0
        self.assertEqual(status, 200)
        st = self.good.stats()
        self.assertLessEqual(st["handshakes"], 10)
        self.assertLessEqual(st["max_in_flight"], 10)
        print("200 HTTPS URLs, limit 10: %.1f ms, %d handshakes" % (took * 1000,
                                                                    st["handshakes"]))

    def test_slow_handshake_times_out_in_phase_tls(self):
        # a TCP server that accepts and never speaks TLS
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        fd = harness.Fanoutd(config="[fanoutd]\nconnect_timeout = 300ms\n")
        try:
            status, ans = fd.batch(["https://127.0.0.1:%d/" % port])
            e = ans["errors"][0]
            self.assertEqual((e["type"], e["phase"]), ("timeout", "tls"))
            self.assertEqual(e["message"], "no TLS handshake within 300 ms")
            self.assertNotIn("protocol", e)   # the handshake never ended
        finally:
            fd.stop()
            srv.close()


class DNS(harness.TestCase):
    pass

    def test_localhost_from_hosts_file(self):
        status, ans = self.fd.batch(["http://localhost:%d/json" % self.up.port])
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["results"][0]["body"]["name"], "Ada")

    def test_invalid_name_fails_fast(self):
        t0 = time.time()
        status, ans = self.fd.batch(["http://no-such-host.invalid/x"])
        self.assertLess(time.time() - t0, 2)
        e = ans["errors"][0]
        self.assertEqual(e["type"], "dns")
        self.assertEqual(e["message"], "cannot resolve no-such-host.invalid: no such host "
                                       "(.invalid names never resolve, RFC 6761)")


class DNSCache(harness.TestCase):
    """Names from a test-owned nameserver on loopback (resolv_conf)."""

    # idle connections go quickly, so every batch needs new ones (and names)
    CONFIG = staticmethod(lambda cls: "[fanoutd]\nresolv_conf = %s\n"
                                      "keepalive_timeout = 100ms\n"
                                      "connect_timeout = 400ms\n" % cls.resolv)

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="fanoutd-dns-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, ignore_errors=True)
        cls.dns = DNSServer({"svc.fanoutd.test.": ["127.0.0.1"],
                             "multi.fanoutd.test.": ["127.0.0.2", "127.0.0.1"],
                             "silent.fanoutd.test.": None}, ttl=1)
        cls.addClassCleanup(cls.dns.stop)
        cls.resolv = os.path.join(cls.dir, "resolv.conf")
        with open(cls.resolv, "w") as f:
            f.write("nameserver 127.0.0.1:%d\n" % cls.dns.port)
        super().setUpClass()

    def test_answers_cached_for_their_ttl(self):
        url = "http://svc.fanoutd.test:%d/json" % self.up.port
        status, ans = self.fd.batch([url] * 20)
        self.assertEqual(status, 200, ans)
        self.assertEqual(self.dns.count("svc.fanoutd.test."), 1)   # one lookup for all
        time.sleep(0.3)                     # the idle connections are gone ...
        self.fd.batch([url])
        self.assertEqual(self.dns.count("svc.fanoutd.test."), 1)   # ... the answer is cached
        time.sleep(1.0)                                             # TTL is 1 s
        fd_status, ans = self.fd.batch([url + "?again"])
        self.assertEqual(fd_status, 200)
        self.assertEqual(self.dns.count("svc.fanoutd.test."), 2)   # asked again

    def test_next_address_on_connect_failure(self):
        # 127.0.0.2 refuses (the upstream listens on 127.0.0.1 only)
        status, ans = self.fd.batch(["http://multi.fanoutd.test:%d/json" % self.up.port])
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["results"][0]["body"]["name"], "Ada")

    def test_silent_nameserver_times_out_in_phase_dns(self):
        status, ans = self.fd.batch(["http://silent.fanoutd.test/"])
        e = ans["errors"][0]
        self.assertEqual((e["type"], e["phase"]), ("timeout", "dns"))
        self.assertEqual(e["message"], "no DNS answer within 400 ms")
        self.assertNotIn("protocol", e)

    def test_nxdomain(self):
        status, ans = self.fd.batch(["http://nope.fanoutd.test/"])
        e = ans["errors"][0]
        self.assertEqual(e["type"], "dns")
        self.assertEqual(e["message"], "cannot resolve nope.fanoutd.test: name does not exist")
        self.assertNotIn("protocol", e)


@unittest.skipUnless(harness.has_ipv6(), "no IPv6 on this kernel")
class IPv6(harness.TestCase):
    UPSTREAMS = 0
    FANOUTD = False

    def test_ipv6_upstream_and_listener(self):
        up = self.upstream(listen="[::1]:0")
        fd = self.fanoutd(listen="[::1]:0")
        self.assertEqual(up.url("/json"), "http://[::1]:%d/json" % up.port)
        c = harness.http.client.HTTPConnection("::1", fd.port, timeout=10)
        c.request("POST", "/v1/batch", json.dumps([up.url("/json")]))
        r = c.getresponse()
        ans = json.loads(r.read())
        c.close()
        self.assertEqual(r.status, 200, ans)
        self.assertEqual(ans["results"][0]["url"], up.url("/json"))
        self.assertEqual(ans["results"][0]["body"]["name"], "Ada")


if __name__ == "__main__":
    harness.main()
