"""Hostile input to the listener: a clear 4xx, never a crash, never a
partial batch sent upstream."""

import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


LIMIT = 8 << 20          # the default max_request_body


def fill(head, unit, last, tail):
    """head + unit * n + last + tail: the longest such body within LIMIT."""
    n = (LIMIT - len(head) - len(last) - len(tail)) // len(unit)
    return head + unit * n + last + tail, n


def peak_rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmHWM")


def sanitized(pid):
    """Under ASan or valgrind memory figures mean nothing."""
    if harness.WRAPPER:
        return True
    with open("/proc/%d/maps" % pid) as f:
        return "asan" in f.read()


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


class Hostile(harness.TestCase):
    RESET = True
    STILL_ALIVE = True
    NOTHING_SENT = True

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

    def test_header_lists_capped(self):
        # 100 own headers of 50 bytes in each of 1,200 requests: 7 MB of
        # body, 18 MB of header lists once copied; refused
        own = {"h%d" % j: "%050d" % j for j in range(100)}
        payload = {"requests": [{"url": self.up.url("/json"), "headers": own}] * 1200}
        status, ans = self.fd.batch(payload)
        self.assertEqual((status, ans["message"]),
                         (400, "requests: the headers of the requests add up to more "
                               "than 16 MiB in memory"))
        status, ans = self.fd.batch({"headers": {"X-A": "v" * 9000},
                                     "requests": [self.up.url("/json")]})
        self.assertEqual(ans["message"], "headers.X-A: header value longer than 8192 bytes")
        # merging compares each pair of headers: at most 100 an object
        status, ans = self.fd.batch({"headers": {"X-%d" % i: "" for i in range(101)},
                                     "requests": [self.up.url("/json")]})
        self.assertEqual((status, ans["message"]), (400, "headers: more than 100 headers"))

    def test_parse_amplification(self):
        # the worst bodies within 8M: refused before jansson builds their
        # tree (4M zeros cost 173 MiB, [[],[],...] 376 MiB before)
        fd = harness.Fanoutd(config="[fanoutd]\naccess_log = no\n")
        try:
            zeros, n = fill("[", "0,", "0", "]")
            nested, m = fill("[[", "[],", "[]", "]]")
            other, k = fill('{"requests": ["%s"], "x": [' % self.up.url("/json"), "{},", "{}", "]}")
            deep_json, d = fill('{"requests": [{"url": "%s", "json": [' % self.up.url("/json"),
                                "[],", "[]", "]}]}")
            cases = [
                (zeros, "batch: too many requests: %d (max_batch_size is 10000)" % (n + 1)),
                (nested, "JSON too complex: its %d values would take more than 32 MiB "
                         "of memory once parsed" % (m + 3)),
                (other, "JSON too complex: its %d values would take more than 32 MiB "
                        "of memory once parsed" % (k + 5)),
                (deep_json, "JSON too complex: its %d values would take more than 32 MiB "
                            "of memory once parsed" % (d + 6)),
            ]
            for body, message in cases:
                self.assertLessEqual(len(body), LIMIT)
                status, ans = fd.batch(body)
                self.assertEqual((status, ans), (400, {"ok": False, "error": "invalid_request",
                                                       "message": message}))
            if not sanitized(fd.proc.pid):
                self.assertLess(peak_rss_mib(fd.proc.pid), 64)
        finally:
            fd.stop()

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
