"""Hostile input to the listener: a clear 4xx, never a crash, never a
partial batch sent upstream."""

import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def raw(port, data, timeout=5):
    """Send bytes, read until the server closes or stops talking."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, body = out.split(b"\r\n\r\n", 1)
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(body) >= int(line.split(b":")[1]):
                            return out
    except OSError:
        pass
    finally:
        s.close()
    return out


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = harness.Upstream()
        cls.fd = harness.Fanoutd()

    @classmethod
    def tearDownClass(cls):
        cls.fd.stop()
        cls.up.stop()

    def setUp(self):
        self.up.reset()

    def tearDown(self):
        status, _, data = self.fd.request("GET", "/healthz")
        self.assertEqual(status, 200)               # still alive
        self.assertEqual(self.up.stats()["requests"], 0)   # nothing went upstream

    def status_of(self, reply):
        self.assertTrue(reply.startswith(b"HTTP/1.1 "), reply[:100])
        return int(reply[9:12])

    def test_oversized_header_block(self):
        reply = raw(self.fd.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                    + b"a" * (200 * 1024) + b"\r\n\r\n")
        # refused: a 4xx, or the connection closed without an answer
        self.assertTrue(reply == b"" or 400 <= self.status_of(reply) < 500, reply[:100])

    def test_deeply_nested_json(self):
        status, ans = self.fd.batch(b"[" * 100000 + b"]" * 100000)
        self.assertEqual(status, 400)
        self.assertEqual(ans["error"], "invalid_request")
        self.assertIn("maximum parsing depth", ans["message"])

    def test_10000_urls_of_8k(self):
        url = self.up.url("/json?" + "x" * 8192)
        body = json.dumps([url] * 10000).encode()       # about 82 MB
        # fanoutd answers from the headers and closes; a client still busy
        # sending 82 MB would see a reset, so send the start only, then read
        head = b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        reply = raw(self.fd.port, head + body[:1 << 20])
        self.assertEqual(self.status_of(reply), 413)
        self.assertIn(b'"request_too_large"', reply)

    def test_batch_headers_times_many_requests(self):
        # 8 KiB of batch headers, copied to 10,000 requests: 80 MB; refused
        big = {"X-Big-%d" % i: "v" * 8000 for i in range(1)}
        payload = {"headers": big, "requests": [self.up.url("/json")] * 5000}
        status, ans = self.fd.batch(payload)
        self.assertEqual(status, 400)
        self.assertEqual(ans["message"], "requests: the headers of the requests add up to "
                                         "more than 32 MiB (batch headers are sent with "
                                         "every request)")
        status, ans = self.fd.batch({"headers": {"X-A": "v" * 9000},
                                     "requests": [self.up.url("/json")]})
        self.assertEqual(ans["message"], "headers.X-A: header value longer than 8192 bytes")

    def test_ipv6_spellings(self):
        status, ans = self.fd.batch(["http://[v1.example.com]/"])
        self.assertEqual((status, ans["message"]),
                         (400, '[0]: bad IPv6 address in "http://[v1.example.com]/"'))

    def test_invalid_utf8(self):
        status, ans = self.fd.batch(b'["http://127.0.0.1/\xff\xfe"]')
        self.assertEqual(status, 400)
        self.assertIn("invalid JSON", ans["message"])

    def test_smuggling_cl_and_te(self):
        body = json.dumps([self.up.url("/json")]).encode()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        req = (b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
        reply = raw(self.fd.port, req)
        self.assertEqual(self.status_of(reply), 400, reply[:300])
        self.assertIn(b'"invalid_request"', reply)

    def test_two_content_lengths(self):
        body = json.dumps([self.up.url("/json")]).encode()
        req = (b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"Content-Length: 5\r\n\r\n" % len(body) + body)
        reply = raw(self.fd.port, req)
        self.assertTrue(reply == b"" or self.status_of(reply) == 400, reply[:300])


if __name__ == "__main__":
    harness.main()
