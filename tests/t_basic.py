"""A batch end to end: results in input order, bodies intact, the local
endpoint's routes, curl usage, client keep-alive."""

import base64
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Basic(harness.TestCase):
    def test_twenty_urls_in_input_order(self):
        paths = ["/delay/%d" % (50 - 2 * i) for i in range(20)]  # later ones finish first
        status, ans = self.fd.batch([self.up.url(p) for p in paths])
        self.assertEqual(status, 200, ans)
        self.assertIs(ans["ok"], True)
        self.assertEqual(len(ans["results"]), 20)
        for i, r in enumerate(ans["results"]):
            self.assertEqual(r["index"], i)
            self.assertEqual(r["url"], self.up.url(paths[i]))
            self.assertEqual(r["status"], 200)
            self.assertEqual(r["encoding"], "json")
            self.assertEqual(r["body"], {"delay": 50 - 2 * i})
            self.assertEqual(r["headers"]["content-type"], "application/json")
            self.assertEqual(set(r["timing"]), {"queued_ms", "connect_ms", "ttfb_ms", "total_ms"})
            self.assertIn(r["reused"], (True, False))
            # upstream timers may fire a little early (libevent cached time)
            self.assertGreaterEqual(r["elapsed_ms"], 50 - 2 * i - 5)

    def test_exact_json_of_one_result(self):
        status, ans = self.fd.batch([self.up.url("/json")])
        self.assertEqual(status, 200)
        r = ans["results"][0]
        for k in ("elapsed_ms", "timing", "reused"):
            r.pop(k)
        r["headers"].pop("date", None)
        self.assertEqual(r, {
            "index": 0, "url": self.up.url("/json"), "status": 200, "protocol": "http/1.1",
            "attempts": 1, "retry_wait_ms": 0.0,
            "headers": {"content-type": "application/json", "content-length": "26",
                        "connection": "keep-alive"},
            "body": {"name": "Ada", "n": [1, 2, 3]}, "encoding": "json"})
        self.assertEqual(sorted(ans), ["elapsed_ms", "ok", "results"])

    def test_bodies_text_binary_chunked_large(self):
        urls = [self.up.url(p) for p in ("/bytes/100000", "/binary", "/chunked", "/headers",
                                         "/bytes/0")]
        status, ans = self.fd.batch(urls)
        self.assertEqual(status, 200, ans)
        big, binary, chunked, headers, empty = ans["results"]
        alphabet = b"abcdefghijklmnopqrstuvwxyz"
        self.assertEqual(big["encoding"], "text")
        self.assertEqual(big["body"].encode(), (alphabet * 4000)[:100000])
        self.assertEqual(binary["encoding"], "base64")
        self.assertEqual(base64.b64decode(binary["body"]), bytes(range(256)))
        self.assertEqual(chunked["body"], "hello, chunked world")
        self.assertEqual(chunked["encoding"], "text")
        self.assertEqual(headers["headers"]["x-dup"], "a, b")
        self.assertEqual(headers["headers"]["x-mixed-case"], "Value")
        self.assertEqual((empty["body"], empty["encoding"]), ("", "text"))

    def test_empty_list(self):
        status, ans = self.fd.batch([])
        self.assertEqual((status, ans["ok"], ans["results"]), (200, True, []))

    def test_healthz(self):
        status, hdrs, data = self.fd.request("GET", "/healthz")
        self.assertEqual((status, json.loads(data)), (200, {"status": "ok"}))
        self.assertEqual(hdrs["content-type"], "application/json")

    def test_unknown_path_404(self):
        status, hdrs, data = self.fd.request("GET", "/nope")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(data), {"ok": False, "error": "not_found",
                                            "message": "no such endpoint: /nope"})

    def test_wrong_method_405_with_allow(self):
        status, hdrs, data = self.fd.request("GET", "/v1/batch")
        self.assertEqual(status, 405)
        self.assertEqual(hdrs["allow"], "POST")
        self.assertEqual(json.loads(data)["error"], "method_not_allowed")
        status, hdrs, data = self.fd.request("DELETE", "/healthz")
        self.assertEqual(status, 405)
        self.assertEqual(hdrs["allow"], "GET, HEAD")

    def test_curl_form_content_type(self):
        # curl -d sends application/x-www-form-urlencoded: must just work
        rc, out = harness.curl("-d", json.dumps([self.up.url("/json")]),
                               "http://127.0.0.1:%d/v1/batch" % self.fd.port)
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out)["results"][0]["body"]["name"], "Ada")

    def test_curl_100k_body_and_expect_continue(self):
        # ~100 KiB of batch: 1000 URLs with long query strings
        urls = [self.up.url("/json?pad=" + "x" * 70 + str(i)) for i in range(1000)]
        payload = json.dumps(urls)
        self.assertGreater(len(payload), 100 * 1024)
        for extra in ([], ["-H", "Expect: 100-continue"]):
            rc, out = harness.curl("--data-binary", payload, "-m", "10", *extra,
                                   "http://127.0.0.1:%d/v1/batch" % self.fd.port)
            self.assertEqual(rc, 0)
            ans = json.loads(out)
            self.assertIs(ans["ok"], True)
            self.assertEqual(len(ans["results"]), 1000)

    def test_client_keepalive_several_batches(self):
        c = self.fd.connection()
        socks = set()
        for i in range(3):
            c.request("POST", "/v1/batch", json.dumps([self.up.url("/delay/%d" % i)]))
            r = c.getresponse()
            ans = json.loads(r.read())
            self.assertEqual(r.status, 200)
            self.assertEqual(ans["results"][0]["body"], {"delay": i})
            socks.add(id(c.sock))
        self.assertEqual(len(socks), 1)   # one client connection carried all three
        c.close()

    def test_big_answer_streams_to_a_slow_reader(self):
        urls = [self.up.url("/bytes/10000?i=%d" % i) for i in range(300)]
        c = self.fd.connection()
        c.request("POST", "/v1/batch", json.dumps(urls))
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        # streamed in pieces as the client reads, not built whole first
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        data = b""
        while True:
            piece = r.read(65536)
            if not piece:
                break
            data += piece
            time.sleep(0.01)
        ans = json.loads(data)
        self.assertEqual(len(ans["results"]), 300)
        self.assertEqual([x["index"] for x in ans["results"]], list(range(300)))
        self.assertTrue(all(len(x["body"]) == 10000 for x in ans["results"]))
        # the connection is still good for the next batch
        c.request("POST", "/v1/batch", json.dumps([self.up.url("/json")]))
        r = c.getresponse()
        self.assertEqual((r.status, r.getheader("Content-Length") is not None), (200, True))
        self.assertIs(json.loads(r.read())["ok"], True)
        c.close()

    def test_client_gone_mid_answer(self):
        urls = [self.up.url("/bytes/50000?i=%d" % i) for i in range(200)]
        body = json.dumps(urls).encode()
        s = socket.create_connection(("127.0.0.1", self.fd.port))
        s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % len(body) + body)
        first = s.recv(1000)
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
        s.close()   # 10 MB of answer left unread
        status, _, data = self.fd.request("GET", "/healthz")
        self.assertEqual(status, 200)
        status, ans = self.fd.batch([self.up.url("/json")])
        self.assertEqual(status, 200)

    def test_http10_client_gets_content_length(self):
        urls = [self.up.url("/bytes/10000?i=%d" % i) for i in range(100)]
        rc, out = harness.curl("--http1.0", "-D", "-", "--data-binary", json.dumps(urls),
                               "http://127.0.0.1:%d/v1/batch" % self.fd.port)
        self.assertEqual(rc, 0)
        head, body = out.split(b"\r\n\r\n", 1)
        self.assertIn(b"Content-Length: %d" % len(body), head)
        self.assertEqual(len(json.loads(body)["results"]), 100)

    def test_upstreams_endpoint(self):
        self.fd.batch([self.up.url("/json")])
        status, _, data = self.fd.request("GET", "/v1/upstreams")
        self.assertEqual(status, 200)
        ups = {u["upstream"]: u for u in json.loads(data)["upstreams"]}
        u = ups["http://127.0.0.1:%d" % self.up.port]
        self.assertEqual(u["limit"], 10)
        self.assertEqual(u["in_flight"], 0)
        self.assertGreaterEqual(u["totals"]["ok"], 1)


if __name__ == "__main__":
    harness.main()
