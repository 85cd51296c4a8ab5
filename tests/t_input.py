"""Bad input to fanoutd: a clear JSON error, nothing sent upstream, the
daemon unharmed."""

import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Input(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = harness.Upstream()
        cls.fd = harness.Fanoutd(config="[fanoutd]\nmax_batch_size = 5\n"
                                        "max_request_body = 64K\n")

    @classmethod
    def tearDownClass(cls):
        cls.fd.stop()
        cls.up.stop()

    def setUp(self):
        self.up.reset()

    def tearDown(self):
        self.assertEqual(self.up.stats()["requests"], 0, "something was sent upstream")

    def bad(self, payload, message, status=400, error="invalid_request"):
        got_status, ans = self.fd.batch(payload)
        self.assertEqual(got_status, status, ans)
        self.assertEqual(ans, {"ok": False, "error": error, "message": message})

    def test_invalid_json(self):
        self.bad(b'["http://x/",', "invalid JSON at line 1, column 13: "
                 "']' expected near end of file")

    def test_not_an_array(self):
        self.bad(b'"http://x/"', 'the batch must be a JSON array of URLs or an object '
                 'with "requests"')

    def test_non_string_element(self):
        self.bad([self.up.url("/json"), 42], "[1]: must be a URL string")

    def test_unparsable_url(self):
        self.bad([self.up.url("/json"), "http://[::1/x"],
                 '[1]: cannot parse URL "http://[::1/x"')

    def test_relative_url(self):
        self.bad(["/just/a/path"], '[0]: not an absolute URL "/just/a/path" '
                 '(want http:// or https://)')

    def test_unsupported_scheme_names_element(self):
        urls = [self.up.url("/json")] * 3 + ["ftp://example.com/f"]
        self.bad(urls, '[3]: unsupported scheme "ftp"')

    def test_no_host(self):
        self.bad(["http:///x"], '[0]: URL has no host "http:///x"')

    def test_too_many(self):
        self.bad([self.up.url("/json")] * 6, "batch: too many requests: 6 (max_batch_size is 5)")

    def test_valid_prefix_not_sent(self):
        # four good URLs then a bad one: nothing at all goes out
        self.bad([self.up.url("/json")] * 4 + [7], "[4]: must be a URL string")

    def test_body_over_limit_413(self):
        big = json.dumps([self.up.url("/json?" + "x" * 70000)])
        status, ans = self.fd.batch(big)
        self.assertEqual(status, 413)
        self.assertEqual(ans["error"], "request_too_large")

    def test_declared_length_alone_413(self):
        # only the headers are sent: the answer must not wait for the body
        s = socket.create_connection(("127.0.0.1", self.fd.port), timeout=5)
        s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        data = b""
        t0 = time.time()
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertLess(time.time() - t0, 2)
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data)
        body = json.loads(data.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(body["error"], "request_too_large")

    def test_garbage_on_the_listener(self):
        for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"POST /v1/batch HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", self.fd.port), timeout=5)
            s.sendall(junk)
            try:
                s.recv(4096)
            except OSError:
                pass
            s.close()
        status, _, data = self.fd.request("GET", "/healthz")
        self.assertEqual((status, json.loads(data)), (200, {"status": "ok"}))


if __name__ == "__main__":
    harness.main()
