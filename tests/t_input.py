"""Bad input to fanoutd: a clear JSON error, nothing sent upstream, the
daemon unharmed."""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Input(harness.TestCase):
    CONFIG = "[fanoutd]\nmax_batch_size = 5\nmax_request_body = 64K\n"
    RESET = True
    NOTHING_SENT = True

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

    def test_ambiguous_ipv4_literals(self):
        # curl and glibc read 0177 as octal (127), libevent as decimal (177):
        # refused rather than sent where the client did not mean
        for host in ("0177.0.0.1", "0010.0.0.1", "+127.0.0.1", "127.000.000.001",
                     "0x7f.1", "2130706433", "127.1", "1.2.3.4.", "0x7f000001"):
            self.bad([self.up.url("/json"), "http://%s:%d/json" % (host, self.up.port)],
                     '[1]: ambiguous IPv4 address "%s": write four decimal numbers '
                     '0-255 without leading zeros' % host)
        self.bad({"requests": [{"url": "https://0177.0.0.1/"}]},
                 'requests[0].url: ambiguous IPv4 address "0177.0.0.1": write four '
                 'decimal numbers 0-255 without leading zeros')

    def test_expect_header_refused(self):
        # the upstream would wait for the body, the body for its 100 Continue
        self.bad({"requests": [{"url": self.up.url("/echo"), "method": "POST", "body": "x",
                                "headers": {"Expect": "100-continue"}}]},
                 "requests[0].headers.Expect: header is not supported "
                 "(fanoutd sends the body at once)")
        self.bad({"headers": {"expect": "100-continue"}, "requests": [self.up.url("/echo")]},
                 "headers.expect: header is not supported (fanoutd sends the body at once)")

    def test_duplicate_keys_refused(self):
        # which "url" would count? jansson keeps the last, others the first
        self.bad(b'{"requests": [{"url": "http://a/", "url": "%s"}]}'
                 % self.up.url("/json").encode(),
                 "invalid JSON at line 1, column 40: duplicate object key near '\"url\"'")

    def test_too_many_counted_before_parsing(self):
        self.bad({"requests": [self.up.url("/json")] * 6},
                 "requests: too many requests: 6 (max_batch_size is 5)")

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


class Numbers(harness.TestCase):
    """Numbers keep the client's spelling: in the id echoed back and in a
    json body sent upstream (jansson alone would make 0.1 into
    0.10000000000000001 and 1e2 into 100.0)."""

    def test_id_and_json_numbers_as_written(self):
        url = self.up.url("/echo")
        body = ('{"requests": [{"url": "%s", "method": "POST", "id": 0.1,'
                ' "json": {"big": 1e2, "r": [0.1, 1E+3, -0.0, 1.10, 7, 2.5e-3]}},'
                ' {"url": "%s", "id": 1e3}, {"url": "%s", "id": "s"}],'
                ' "timeout_ms": 5000}' % (url, url, url))
        status, hdrs, data = self.fd.request("POST", "/v1/batch", body)
        self.assertEqual(status, 200, data)
        text = data.decode()
        self.assertIn('{"index":0,"id":0.1,"url":', text)
        self.assertIn('{"index":1,"id":1e3,"url":', text)
        self.assertIn('{"index":2,"id":"s","url":', text)
        ans = json.loads(data)
        sent = ans["results"][0]["body"]
        self.assertEqual(sent["body"], '{"big":1e2,"r":[0.1,1E+3,-0.0,1.10,7,2.5e-3]}')
        self.assertEqual(sent["headers"]["content-type"], "application/json")


if __name__ == "__main__":
    harness.main()
