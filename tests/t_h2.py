"""HTTP/2 to upstreams (SPEC section 9): ALPN against nginx (one port, h2 or
http/1.1 per client), h2c with prior knowledge, a server that speaks no
HTTP/2, SETTINGS_MAX_CONCURRENT_STREAMS (nghttpd -m 2, the test upstream's
--max-streams), GOAWAY after every few streams (nginx keepalive_requests,
the test upstream's --goaway-after) with every request, POSTs included,
processed exactly once, fail fast and timeouts that reset one stream of a
shared connection, the caps, and the faults of the test upstream's h2 mode
(RST_STREAM, REFUSED_STREAM retried 3 times, GOAWAY, a malformed header).

Needs nginx-light (/usr/sbin/nginx) and nghttp2-server (/usr/sbin/nghttpd):
a test whose server is missing fails, saying which package to install."""

import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from t_tls import make_pki  # noqa: E402

JSON_BODY = {"name": "Ada", "n": [1, 2, 3]}     # /json, nginx's and the test upstream's
PK = "[fanoutd]\nhttp2 = prior-knowledge\n"
TIMING_KEYS = ["connect_ms", "queued_ms", "total_ms", "ttfb_ms"]


def in_threads(fns):
    """Run callables at once (each on its own client connection); their
    results in order."""
    results = [None] * len(fns)
    errors = []

    def run(i, fn):
        try:
            results[i] = fn()
        except Exception as e:  # noqa: BLE001 - raised below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def upstreams(fd):
    """GET /v1/upstreams as {upstream key: entry}."""
    status, _, data = fd.request("GET", "/v1/upstreams")
    assert status == 200, data
    return {u["upstream"]: u for u in json.loads(data)["upstreams"]}


def upstream_of(fd, server):
    """The /v1/upstreams entry of SERVER (anything with url())."""
    return upstreams(fd)[server.url("")]


def metric(fd, name, **labels):
    """The value of the /metrics sample NAME{labels...}, or None."""
    _, _, data = fd.request("GET", "/metrics")
    for line in data.decode().splitlines():
        m = re.match(r"^%s\{(.*)\} (\S+)$" % re.escape(name), line)
        if not m:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(m.group(2))
    return None


class Watcher:
    """Samples GET /v1/upstreams every few ms while a batch runs."""

    def __init__(self, fd):
        self.fd = fd
        self.samples = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            try:
                self.samples.append(upstreams(self.fd))
            except OSError:
                pass
            time.sleep(0.003)

    def stop(self):
        self.done.set()
        self.thread.join(10)
        return self.samples


class H2TestCase(harness.TestCase):
    UPSTREAMS = 0
    FANOUTD = False
    STILL_ALIVE = False

    def untimed(self, r):
        """R without its timing fields, after checking their types."""
        r = dict(r)
        self.assertIsInstance(r.pop("elapsed_ms"), float, r)
        timing = r.pop("timing")
        self.assertEqual(sorted(timing), TIMING_KEYS, timing)
        for v in timing.values():
            self.assertIsInstance(v, float, timing)
        return r

    def untimed_answer(self, ans):
        """A whole answer with every timing field checked and removed."""
        ans = dict(ans)
        self.assertIsInstance(ans.pop("elapsed_ms"), float, ans)
        for key in ("results", "errors"):
            if key in ans:
                ans[key] = [self.untimed(r) for r in ans[key]]
        return ans

    def h2_upstream(self, *args):
        """A test upstream in h2 mode (h2c by prior knowledge, or HTTP/1.1)."""
        return self.upstream(extra_args=["--h2"] + list(args))

    def assert_all_ok(self, status, ans, n):
        self.assertEqual(status, 200, json.dumps(ans)[:2000])
        self.assertTrue(ans["ok"])
        self.assertEqual([r["index"] for r in ans["results"]], list(range(n)))
        for r in ans["results"]:
            self.assertEqual((r["status"], r["protocol"]), (200, "h2"), r)


# --------------------------------------------------------------------------
# nginx over TLS: ALPN picks h2 for fanoutd, http/1.1 for a client that only
# offers that, on the same port.

class NginxALPN(H2TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="fanoutd-pki-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, ignore_errors=True)
        cls.pki = make_pki(cls.dir)
        cls.ca = os.path.join(cls.dir, "ca.pem")
        cls.ng = harness.Nginx(listen="ssl http2", tls=cls.pki["good"])
        cls.addClassCleanup(cls.ng.stop)
        super().setUpClass()

    def config(self, extra=""):
        return "[fanoutd]\nca_file = %s\n%s" % (self.ca, extra)

    def nginx_result(self, r, protocol, url, reused=False, index=0):
        """What a GET of nginx's /echo must answer (date checked by form)."""
        r = self.untimed(r)
        headers = dict(r.pop("headers"))
        self.assertRegex(headers.pop("date"), r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
        want_headers = {"server": "nginx", "content-type": "application/json"}
        if protocol == "http/1.1":
            want_headers["connection"] = "keep-alive"     # nginx's own, as sent
        headers.pop("content-length")
        self.assertEqual(headers, want_headers)
        seen = "HTTP/2.0" if protocol == "h2" else "HTTP/1.1"
        self.assertEqual(r, {"index": index, "url": url, "status": 200, "reused": reused,
                             "protocol": protocol, "attempts": 1, "retry_wait_ms": 0.0,
                             "body": {"method": "GET", "uri": url[len(self.ng.url("")):],
                                      "length": "", "protocol": seen},
                             "encoding": "json"})

    def test_alpn_picks_h2(self):
        fd = self.fanoutd(config=self.config())
        status, ans = fd.batch([self.ng.url("/echo")])
        self.assertEqual(status, 200, ans)
        self.nginx_result(ans["results"][0], "h2", self.ng.url("/echo"))
        u = upstream_of(fd, self.ng)
        self.assertEqual((u["protocol"], u["connections_opened"], u["tls_handshakes"]),
                         ("h2", 1, 1))

    def test_curl_gets_http11_or_h2_on_the_same_port(self):
        for flag, version, seen in (("--http1.1", "1.1", "HTTP/1.1"), ("--http2", "2", "HTTP/2.0")):
            with self.subTest(flag=flag):
                rc, out = harness.curl(flag, "--cacert", self.ca, "-w", "\n%{http_version}",
                                       self.ng.url("/echo"))
                self.assertEqual(rc, 0, out)
                body, got = out.decode().rsplit("\n", 1)
                self.assertEqual(got, version)
                self.assertEqual(json.loads(body)["protocol"], seen)

    def test_http2_no_for_this_upstream_speaks_http11(self):
        fd = self.fanoutd(config=self.config('[upstream "%s"]\nhttp2 = no\n' % self.ng.url("")))
        status, ans = fd.batch([self.ng.url("/echo")])
        self.assertEqual(status, 200, ans)
        self.nginx_result(ans["results"][0], "http/1.1", self.ng.url("/echo"))
        self.assertEqual(upstream_of(fd, self.ng)["protocol"], "http/1.1")
        key = self.ng.url("")
        self.assertEqual(metric(fd, "fanoutd_upstream_connections_by_protocol_total",
                                upstream=key, protocol="http/1.1"), 1)
        self.assertEqual(metric(fd, "fanoutd_upstream_connections_by_protocol_total",
                                upstream=key, protocol="h2"), 0)

    def test_100_urls_one_connection_input_order(self):
        fd = self.fanoutd(config=self.config("upstream_concurrency = 10\n"))
        urls = [self.ng.url("/echo?i=%d" % i) for i in range(100)]
        status, ans = fd.batch(urls)
        self.assert_all_ok(status, ans, 100)
        # in input order, each as an HTTP/1.1 one but for protocol; the
        # first opened the connection, the others shared it
        for i, r in enumerate(ans["results"]):
            self.nginx_result(r, "h2", urls[i], reused=i > 0, index=i)
        u = upstream_of(fd, self.ng)
        self.assertEqual({k: u[k] for k in ("protocol", "connections", "connections_opened",
                                            "tls_handshakes", "streams", "goaways",
                                            "in_flight", "queued")},
                         {"protocol": "h2", "connections": 1, "connections_opened": 1,
                          "tls_handshakes": 1, "streams": 0, "goaways": 0,
                          "in_flight": 0, "queued": 0})
        self.assertEqual(u["totals"]["ok"], 100)
        key = self.ng.url("")
        self.assertEqual(metric(fd, "fanoutd_upstream_connections_by_protocol_total",
                                upstream=key, protocol="h2"), 1)
        self.assertEqual(metric(fd, "fanoutd_upstream_connections_by_protocol_total",
                                upstream=key, protocol="http/1.1"), 0)
        self.assertEqual(metric(fd, "fanoutd_upstream_h2_streams", upstream=key), 0)

    def test_prior_knowledge_over_https_to_a_server_without_h2(self):
        # SPEC 9: over https, a server that does not pick h2 is error
        # "protocol".  nginx without http2 answers an h2-only ALPN offer
        # with the TLS alert no_application_protocol.
        ng = harness.Nginx(listen="ssl", tls=self.pki["good"])
        self.addCleanup(ng.stop)
        fd = self.fanoutd(config=self.config("http2 = prior-knowledge\n"))
        status, ans = fd.batch([ng.url("/json")])
        self.assertEqual(status, 502, ans)
        e = ans["errors"][0]
        self.assertEqual(e["type"], "protocol", e)
        self.assertTrue(e["message"].startswith(
            "upstream takes none of the protocols offered by ALPN "
            "(h2, http2 = prior-knowledge): "), e)
        self.assertIn("no application protocol", e["message"])
        self.assertNotIn("protocol", e)   # the key: no connection was ever ready

    def test_prior_knowledge_over_https_to_a_server_without_alpn(self):
        up = self.upstream(tls=self.pki["good"])           # HTTP/1.1 only, no ALPN
        fd = self.fanoutd(config=self.config("http2 = prior-knowledge\n"))
        status, ans = fd.batch([up.url("/json")])
        self.assertEqual(status, 502, ans)
        self.assertEqual(self.untimed(ans["errors"][0]),
                         {"index": 0, "url": up.url("/json"), "type": "protocol",
                          "message": "upstream picked no protocol by ALPN, not h2 "
                                     "(http2 = prior-knowledge)",
                          "reused": False, "attempts": 1, "retry_wait_ms": 0.0})
        self.assertEqual(up.stats()["requests"], 0)

    def test_nghttpd_alpn_h2(self):
        n = harness.Nghttpd(files={"hello.txt": b"hello, h2\n"}, tls=self.pki["good"])
        self.addCleanup(n.stop)
        fd = self.fanoutd(config=self.config())
        status, ans = fd.batch([n.url("/hello.txt")])
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual((r["protocol"], r["body"], r["encoding"]), ("h2", "hello, h2\n", "text"))


# --------------------------------------------------------------------------
# nginx h2c (listen ... http2 without ssl): prior knowledge only.

class NginxH2c(H2TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ng = harness.Nginx(listen="http2")
        cls.addClassCleanup(cls.ng.stop)
        super().setUpClass()

    def test_prior_knowledge_per_upstream(self):
        fd = self.fanoutd(config='[upstream "%s"]\nhttp2 = prior-knowledge\n' % self.ng.url(""))
        status, ans = fd.batch([self.ng.url("/json"), self.ng.url("/echo")])
        self.assertEqual(status, 200, ans)
        r = [self.untimed(x) for x in ans["results"]]
        for x in r:
            self.assertEqual(x["headers"]["server"], "nginx")
            del x["headers"]
        self.assertEqual(r, [
            {"index": 0, "url": self.ng.url("/json"), "status": 200, "reused": False,
             "protocol": "h2", "attempts": 1, "retry_wait_ms": 0.0, "body": JSON_BODY, "encoding": "json"},
            {"index": 1, "url": self.ng.url("/echo"), "status": 200, "reused": True,
             "protocol": "h2", "attempts": 1, "retry_wait_ms": 0.0, "body": {"method": "GET", "uri": "/echo", "length": "",
                                        "protocol": "HTTP/2.0"},
             "encoding": "json"}])
        self.assertEqual(upstream_of(fd, self.ng)["connections_opened"], 1)

    def test_auto_speaks_http11_which_an_h2c_port_does_not(self):
        fd = self.fanoutd(config="[fanoutd]\nhttp2 = auto\n")
        status, ans = fd.batch([self.ng.url("/json")])
        self.assertEqual(status, 502, ans)
        self.assertEqual(self.untimed_answer(ans),
                         {"ok": False, "error": "batch_failed",
                          "message": "1 of 1 requests failed, 0 cancelled",
                          "errors": [{"index": 0, "url": self.ng.url("/json"),
                                      "type": "protocol",
                                      "message": "malformed answer: not an HTTP/1.x answer",
                                      "reused": False, "protocol": "http/1.1",
                                      "attempts": 1, "retry_wait_ms": 0.0}],
                          "completed": [], "cancelled": []})


# --------------------------------------------------------------------------
# nginx keepalive_requests 3: a GOAWAY after every 3 streams.

class NginxGoaway(H2TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ng = harness.Nginx(listen="http2", http_extra="keepalive_requests 3;")
        cls.addClassCleanup(cls.ng.stop)
        super().setUpClass()

    def test_30_urls_across_goaways(self):
        fd = self.fanoutd(config=PK)
        urls = [self.ng.url("/echo?g=%d" % i) for i in range(30)]
        status, ans = fd.batch(urls)
        self.assert_all_ok(status, ans, 30)
        self.assertEqual([r["body"]["uri"] for r in ans["results"]],
                         ["/echo?g=%d" % i for i in range(30)])
        u = upstream_of(fd, self.ng)
        self.assertGreaterEqual(u["goaways"], 1, u)
        self.assertGreaterEqual(u["connections_opened"], 2, u)
        key = self.ng.url("")
        self.assertGreaterEqual(metric(fd, "fanoutd_upstream_h2_goaways_total", upstream=key), 1)
        # what went above a GOAWAY's last stream was sent again
        self.assertEqual(metric(fd, "fanoutd_upstream_h2_streams_refused_total", upstream=key),
                         metric(fd, "fanoutd_upstream_h2_streams_retried_total", upstream=key))

    def test_post_batch_across_goaways_each_processed_once(self):
        fd = self.fanoutd(config=PK)
        reqs = [{"url": self.ng.url("/echo?p=%d" % i), "method": "POST",
                 "body": "body %d" % i, "id": "p%d" % i} for i in range(20)]
        status, ans = fd.batch({"requests": reqs})
        self.assert_all_ok(status, ans, 20)
        for i, r in enumerate(ans["results"]):
            self.assertEqual((r["id"], r["body"]),
                             ("p%d" % i, {"method": "POST", "uri": "/echo?p=%d" % i,
                                          "length": str(len("body %d" % i)),
                                          "protocol": "HTTP/2.0"}))
        self.assertGreaterEqual(upstream_of(fd, self.ng)["goaways"], 1)

        def posts():
            return [ln for ln in self.ng.access_log() if '"POST /echo?p=' in ln]
        harness.wait_until(lambda: len(posts()) >= 20, 3)
        # nginx processed (and logged) every POST exactly once
        seen = sorted(re.search(r"/echo\?p=(\d+) ", ln).group(1) for ln in posts())
        self.assertEqual(seen, sorted(str(i) for i in range(20)))


# --------------------------------------------------------------------------
# A server that does not speak HTTP/2 at all.

class PriorKnowledgeToHTTP11(H2TestCase):

    def test_http11_server_is_protocol_error(self):
        up = self.upstream()                        # the test upstream, h1 only
        fd = self.fanoutd(config=PK)
        t0 = time.time()
        status, ans = fd.batch([up.url("/json")])
        self.assertLess(time.time() - t0, 2)        # nothing hangs
        self.assertEqual(status, 502, ans)
        self.assertEqual(self.untimed(ans["errors"][0]),
                         {"index": 0, "url": up.url("/json"), "type": "protocol",
                          "message": "malformed answer: HTTP/2 connection error: the upstream "
                                     "does not speak HTTP/2 (no SETTINGS frame first)",
                          "reused": False, "protocol": "h2", "attempts": 1, "retry_wait_ms": 0.0})
        st = up.stats()
        self.assertEqual((st["connections"], st["requests"]), (1, 0), st)
        # nothing kept: the next batch fails the same way, on a new connection
        status, ans = fd.batch([up.url("/json")])
        self.assertEqual(ans["errors"][0]["type"], "protocol")
        self.assertEqual(upstream_of(fd, up)["connections"], 0)


# --------------------------------------------------------------------------
# SETTINGS_MAX_CONCURRENT_STREAMS: nghttpd -m 2, the test upstream's
# --max-streams 2, fanoutd's own h2_max_streams.

class StreamCaps(H2TestCase):

    def test_nghttpd_m2_never_more_than_2_streams_a_connection(self):
        body = (b"abcdefghijklmnopqrstuvwxyz" * 8000)[:200000]
        n = harness.Nghttpd(files={"big.txt": body}, max_streams=2)
        self.addCleanup(n.stop)
        fd = self.fanoutd(config=PK + "upstream_concurrency = 10\n")
        w = Watcher(fd)
        status, ans = fd.batch([n.url("/big.txt?i=%d" % i) for i in range(40)])
        samples = w.stop()
        self.assert_all_ok(status, ans, 40)
        for r in ans["results"]:
            self.assertEqual((len(r["body"]), r["encoding"]), (200000, "text"))
        key = n.url("")
        for s in samples:
            u = s.get(key)
            if u:
                self.assertLessEqual(u["streams"], 2 * u["connections"], u)
                self.assertLessEqual(u["in_flight"], 10, u)
        # nghttpd refuses a stream over its cap (REFUSED_STREAM): none was
        self.assertEqual(metric(fd, "fanoutd_upstream_h2_streams_refused_total", upstream=key), 0)
        self.assertEqual(upstream_of(fd, n)["protocol"], "h2")

    def test_upstream_max_streams_2(self):
        up = self.h2_upstream("--max-streams", "2")
        fd = self.fanoutd(config=PK + "upstream_concurrency = 10\n")
        w = Watcher(fd)
        status, ans = fd.batch([up.url("/delay/50")] * 40)
        samples = w.stop()
        self.assert_all_ok(status, ans, 40)
        st = up.stats()
        self.assertLessEqual(st["streams_max_per_conn"], 2, st)
        self.assertLessEqual(st["max_in_flight"], 10, st)
        self.assertEqual(st["requests"], 40)
        busy = [s[up.url("")] for s in samples if up.url("") in s]
        self.assertTrue(any(u["streams"] > 2 for u in busy), "never more than one connection busy")
        for u in busy:
            self.assertLessEqual(u["streams"], 2 * u["connections"], u)
        self.assertEqual(upstream_of(fd, up)["connections_opened"], st["connections"])

    def test_h2_max_streams_3(self):
        up = self.h2_upstream()                      # the server allows 100
        fd = self.fanoutd(config=PK + "h2_max_streams = 3\nupstream_concurrency = 10\n")
        status, ans = fd.batch([up.url("/delay/50")] * 30)
        self.assert_all_ok(status, ans, 30)
        st = up.stats()
        self.assertEqual((st["streams_max_per_conn"], st["max_in_flight"]), (3, 10), st)
        # 10 in flight, 3 a connection: 4 connections
        self.assertEqual(upstream_of(fd, up)["connections_opened"], 4)
        self.assertEqual(st["connections"], 4)


# --------------------------------------------------------------------------
# The test upstream's h2 mode (h2c by prior knowledge).

class UpstreamH2(H2TestCase):

    def test_same_json_as_http11_but_protocol(self):
        up = self.h2_upstream()               # --h2 also answers HTTP/1.1
        f1 = self.fanoutd(config="[fanoutd]\n")
        f2 = self.fanoutd(config=PK)
        for path in ("/json", "/bytes/10", "/status/204", "/status/404", "/status/500"):
            with self.subTest(path=path):
                both = []
                for fd in (f1, f2):
                    _, ans = fd.batch({"requests": [up.url(path)], "mode": "settled"})
                    r = self.untimed(ans["results"][0])
                    r.pop("reused")
                    h = (r.get("error") or r)["headers"]
                    # the test upstream's h1 side says "Connection: keep-alive"
                    if r.pop("protocol") == "http/1.1":
                        self.assertEqual(h.pop("connection"), "keep-alive")
                    both.append(r)
                self.assertEqual(both[1], both[0])

    def test_100_urls_one_connection_limit_10(self):
        up = self.h2_upstream()
        fd = self.fanoutd(config=PK + "upstream_concurrency = 10\n")
        status, ans = fd.batch([up.url("/delay/50?i=%d" % i) for i in range(100)])
        self.assert_all_ok(status, ans, 100)
        self.assertEqual([r["url"] for r in ans["results"]],
                         [up.url("/delay/50?i=%d" % i) for i in range(100)])
        self.assertEqual({json.dumps(r["body"]) for r in ans["results"]}, {'{"delay": 50}'})
        st = up.stats()
        self.assertEqual((st["requests"], st["connections"], st["h2_connections"]),
                         (100, 1, 1), st)
        self.assertLessEqual(st["max_in_flight"], 10, st)
        u = upstream_of(fd, up)
        self.assertEqual((u["protocol"], u["connections_opened"], u["streams"]), ("h2", 1, 0))

    def test_second_stream_of_a_new_connection_is_not_delayed(self):
        # Nagle: a small write (the SETTINGS ACK) unacknowledged by a
        # server with nothing to say holds back the next HEADERS until the
        # server's delayed ACK, ~40 ms, unless TCP_NODELAY is set.
        if harness.WRAPPER:
            self.skipTest("timing under " + harness.WRAPPER[0])
        up = self.h2_upstream()
        fd = self.fanoutd(config=PK)
        status, ans = fd.batch([up.url("/json"), up.url("/json")])
        self.assertEqual(status, 200, ans)
        ttfb = [r["timing"]["ttfb_ms"] for r in ans["results"]]
        self.assertLess(ttfb[1], 20, ans)

    def test_fail_fast_resets_only_its_streams(self):
        up = self.h2_upstream()
        fd = self.fanoutd(config=PK + "upstream_concurrency = 10\n")
        a = [up.url("/status/500?delay=100")] + [up.url("/delay/1000")] * 4
        b = [up.url("/delay/300?b=%d" % i) for i in range(5)]

        # at the same moment: whichever opens the connection, the other's
        # requests wait for it (SPEC 9)
        (sa, ansa), (sb, ansb) = in_threads([lambda: fd.batch(a), lambda: fd.batch(b)])
        self.assertEqual(sa, 502, ansa)
        self.assertEqual((ansa["error"], ansa["message"], ansa["completed"], ansa["cancelled"]),
                         ("batch_failed", "1 of 5 requests failed, 4 cancelled", [],
                          [1, 2, 3, 4]))
        e = ansa["errors"][0]
        self.assertEqual((e["index"], e["type"], e["status"], e["protocol"]),
                         (0, "http_status", 500, "h2"))
        self.assertLess(ansa["elapsed_ms"], 900)
        self.assert_all_ok(sb, ansb, 5)
        self.assertEqual([r["body"] for r in ansb["results"]], [{"delay": 300}] * 5)
        self.assertEqual(upstream_of(fd, up)["connections_opened"], 1)
        harness.wait_until(lambda: up.stats()["rst_received"] >= 4, 2)
        st = up.stats()
        self.assertEqual((st["connections"], st["requests"], st["rst_received"], st["aborted"]),
                         (1, 10, 4, 4), st)

    def test_timeout_resets_one_stream_others_complete(self):
        up = self.h2_upstream()
        fd = self.fanoutd(config=PK)
        reqs = [{"url": up.url("/hang"), "timeout_ms": 300}] + [up.url("/delay/100")] * 3
        status, ans = fd.batch({"requests": reqs, "mode": "settled"})
        self.assertEqual(status, 200, ans)
        self.assertIsInstance(ans["elapsed_ms"], float)
        hang = self.untimed(ans["results"][0])
        self.assertEqual(hang, {"index": 0, "url": up.url("/hang"),
                                "error": {"type": "timeout", "phase": "response",
                                          "message": "no complete answer within 300 ms"},
                                "reused": False, "protocol": "h2", "attempts": 1, "retry_wait_ms": 0.0})
        for r in ans["results"][1:]:
            r = self.untimed(r)
            self.assertEqual((r["status"], r["body"], r["protocol"], r["reused"]),
                             (200, {"delay": 100}, "h2", True))
        self.assertFalse(ans["ok"])
        harness.wait_until(lambda: up.stats()["rst_received"] >= 1, 2)
        st = up.stats()
        self.assertEqual((st["rst_received"], st["aborted"], st["connections"]), (1, 1, 1), st)
        # the connection goes on
        status, ans = fd.batch([up.url("/json")])
        self.assertEqual((status, ans["results"][0]["reused"]), (200, True))
        self.assertEqual(upstream_of(fd, up)["connections_opened"], 1)

    def test_body_over_cap_resets_the_stream_keeps_the_connection(self):
        up = self.h2_upstream()
        fd = self.fanoutd(config=PK + "max_response_body = 1K\n")
        status, ans = fd.batch([up.url("/bytes/100000")])
        self.assertEqual(status, 502, ans)
        self.assertEqual(self.untimed(ans["errors"][0]),
                         {"index": 0, "url": up.url("/bytes/100000"), "type": "too_large",
                          "status": 200,
                          "message": "Content-Length over max_response_body (1024 bytes)",
                          "headers": {"content-type": "text/plain", "content-length": "100000"},
                          "body": "", "encoding": "text", "reused": False, "protocol": "h2",
                          "attempts": 1, "retry_wait_ms": 0.0})
        harness.wait_until(lambda: up.stats()["rst_received"] >= 1, 2)
        status, ans = fd.batch([up.url("/json")])
        self.assertEqual(status, 200, ans)
        self.assertEqual((ans["results"][0]["body"], ans["results"][0]["reused"]),
                         (JSON_BODY, True))
        st = up.stats()
        self.assertEqual((st["connections"], st["rst_received"], st["requests"]), (1, 1, 2), st)
        self.assertEqual(upstream_of(fd, up)["connections_opened"], 1)

    def assert_one_error(self, fd, up, path, message, **more):
        status, ans = fd.batch([up.url(path)])
        self.assertEqual(status, 502, ans)
        want = {"index": 0, "url": up.url(path), "type": "protocol", "message": message,
                "protocol": "h2", "attempts": 1, "retry_wait_ms": 0.0}
        want.update(more)
        e = self.untimed(ans["errors"][0])
        e.pop("reused")
        self.assertEqual(e, want)

    def test_rst_stream_internal_error_is_protocol_not_retried(self):
        up = self.h2_upstream()
        fd = self.fanoutd(config=PK)
        self.assert_one_error(fd, up, "/rst/2", "stream reset by upstream: INTERNAL_ERROR")
        self.assertEqual(up.stats()["requests"], 1)
        self.assertEqual(metric(fd, "fanoutd_upstream_h2_streams_retried_total",
                                upstream=up.url("")), 0)

    def test_refused_stream_retried_3_times_then_protocol(self):
        up = self.h2_upstream()
        fd = self.fanoutd(config=PK)
        # the upstream refuses every attempt: 1 + 3 retries, then the error;
        # sending again what was never processed is not a retry of SPEC 10:
        # "attempts" stays 1
        self.assert_one_error(fd, up, "/rst/7", "stream refused by upstream (REFUSED_STREAM)")
        key = up.url("")
        self.assertEqual(metric(fd, "fanoutd_upstream_h2_streams_retried_total", upstream=key), 3)
        self.assertEqual(metric(fd, "fanoutd_upstream_h2_streams_refused_total", upstream=key), 4)
        self.assertEqual(up.stats()["requests"], 4)

    def test_refused_after_part_of_the_answer_is_not_retried(self):
        up = self.h2_upstream()
        fd = self.fanoutd(config=PK)
        self.assert_one_error(fd, up, "/rst-after-head/7", "stream reset by upstream: "
                              "REFUSED_STREAM", status=200,
                              headers={"content-type": "text/plain"}, body="partial",
                              encoding="text")
        self.assertEqual(metric(fd, "fanoutd_upstream_h2_streams_retried_total",
                                upstream=up.url("")), 0)
        self.assertEqual(up.stats()["requests"], 1)

    def test_bad_header_is_protocol(self):
        up = self.h2_upstream()
        fd = self.fanoutd(config=PK)
        self.assert_one_error(fd, up, "/badheader",
                              "malformed answer: Invalid HTTP header field was received")
        # the stream was reset, the connection goes on
        harness.wait_until(lambda: up.stats()["rst_received"] >= 1, 2)
        status, ans = fd.batch([up.url("/json")])
        self.assertEqual((status, ans["results"][0]["reused"]), (200, True))

    def test_goaway_unprocessed_request_retried_on_new_connections(self):
        # /goaway sends GOAWAY with last_stream_id just below its own
        # stream: the earlier (slow) streams are processed, the /goaway one
        # never is, on every connection it is tried on
        up = self.h2_upstream()
        fd = self.fanoutd(config=PK)
        reqs = [up.url("/delay/200?s=%d" % i) for i in range(4)] + [up.url("/goaway")]
        status, ans = fd.batch({"requests": reqs, "mode": "settled"})
        self.assertEqual(status, 200, ans)
        for i, r in enumerate(ans["results"][:4]):
            r = self.untimed(r)
            self.assertEqual((r["index"], r["status"], r["body"], r["protocol"]),
                             (i, 200, {"delay": 200}, "h2"))
        g = self.untimed(ans["results"][4])
        self.assertEqual(g, {"index": 4, "url": up.url("/goaway"),
                             "error": {"type": "protocol",
                                       "message": "upstream went away (GOAWAY NO_ERROR, last "
                                                  "stream 0) before processing the request"},
                             "reused": False, "protocol": "h2", "attempts": 1, "retry_wait_ms": 0.0})
        key = up.url("")
        self.assertEqual(metric(fd, "fanoutd_upstream_h2_streams_retried_total", upstream=key), 3)
        self.assertEqual(metric(fd, "fanoutd_upstream_h2_goaways_total", upstream=key), 4)
        u = upstream_of(fd, up)
        self.assertEqual((u["goaways"], u["connections_opened"]), (4, 4))
        st = up.stats()
        self.assertEqual((st["goaways_sent"], st["h2_connections"], st["requests"]), (4, 4, 8), st)

    def test_goaway_after_3_posts_each_processed_once(self):
        up = self.h2_upstream("--goaway-after", "3")
        fd = self.fanoutd(config=PK)
        reqs = [{"url": up.url("/echo?i=%d" % i), "method": "POST", "body": "b%d" % i}
                for i in range(10)]
        status, ans = fd.batch({"requests": reqs})
        self.assert_all_ok(status, ans, 10)
        self.assertEqual([(r["body"]["method"], r["body"]["path"], r["body"]["body"])
                          for r in ans["results"]],
                         [("POST", "/echo?i=%d" % i, "b%d" % i) for i in range(10)])
        st = up.stats()
        # processed ones never sent twice, unprocessed ones sent again
        self.assertEqual(st["requests"], 10, st)
        self.assertGreaterEqual(st["goaways_sent"], 3, st)
        key = up.url("")
        self.assertGreaterEqual(metric(fd, "fanoutd_upstream_h2_streams_retried_total",
                                       upstream=key), 1)
        self.assertEqual(upstream_of(fd, up)["goaways"], st["goaways_sent"])

    def test_protocol_null_until_a_connection_picks_one(self):
        fd = self.fanoutd(config=PK)
        port = harness.free_port()
        status, ans = fd.batch(["http://127.0.0.1:%d/x" % port])
        self.assertEqual(ans["errors"][0]["type"], "connect")
        self.assertNotIn("protocol", ans["errors"][0])      # no connection, no protocol
        u = upstreams(fd)["http://127.0.0.1:%d" % port]
        self.assertEqual((u["protocol"], u["streams"], u["goaways"]), (None, 0, 0))


if __name__ == "__main__":
    harness.main()
