"""The local endpoint as an HTTP/1.1 server: exact routes, pipelined
requests, HEAD, request framing (tests/gate.c's canonical copy for evhtp),
form-typed bodies, and the lingering close that lets a client read a 413
sent before its upload ended."""

import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from t_metrics import scrape  # noqa: E402


def read_responses(sock, want, timeout=5, bodyless=()):
    """Read up to `want` HTTP/1.1 responses (Content-Length framed or
    chunked; those whose index is in bodyless answer a HEAD) or until the
    server closes; returns [(status, headers, body)] and whether the server
    closed the connection (True, "reset", or False if it stayed open)."""
    sock.settimeout(timeout)
    buf = b""
    out = []
    closed = False
    deadline = time.time() + timeout
    while len(out) < want and time.time() < deadline:
        parsed = parse_one(buf, len(out) in bodyless)
        if parsed is not None:
            resp, buf = parsed
            out.append(resp)
            continue
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = "reset"
            break
        if not chunk:
            closed = True
            break
        buf += chunk
    if len(out) == want and not closed:
        sock.settimeout(1)
        try:
            closed = sock.recv(65536) == b""
        except socket.timeout:
            closed = False
        except ConnectionResetError:
            closed = "reset"
    return out, closed


def parse_one(buf, bodyless=False):
    if b"\r\n\r\n" not in buf:
        return None
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, v = line.split(b":", 1)
        hdrs[k.strip().lower().decode()] = v.strip().decode()
    if bodyless:
        return (status, hdrs, b""), rest
    if hdrs.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            if b"\r\n" not in rest:
                return None
            size_line, tail = rest.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if len(tail) < size + 2:
                return None
            body += tail[:size]
            rest = tail[size + 2:]
            if size == 0:
                break
        return (status, hdrs, body), rest
    n = int(hdrs.get("content-length", "0"))
    if len(rest) < n:
        return None
    return (status, hdrs, rest[:n]), rest[n:]


class Endpoint(harness.TestCase):
    CONFIG = "[fanoutd]\nmax_request_body = 64K\n"
    RESET = True
    STILL_ALIVE = True

    def exchange(self, data, want, timeout=5, bodyless=()):
        s = self.connect()
        try:
            s.sendall(data)
            return read_responses(s, want, timeout, bodyless)
        finally:
            s.close()

    def batch_body(self):
        return json.dumps([self.up.url("/json")]).encode()

    # --- routes -------------------------------------------------------------

    def test_paths_match_exactly(self):
        for path in ("/v1/batchx", "/v1/batch;x", "/v1/batch/", "/healthzz", "/metricsfoo",
                     "/v1/upstreamsXYZ", "/", "/v1"):
            method = "POST" if path.startswith("/v1/batch") else "GET"
            status, _, data = self.fd.request(method, path, self.batch_body()
                                              if method == "POST" else None)
            self.assertEqual((path, status, json.loads(data)),
                             (path, 404, {"ok": False, "error": "not_found",
                                          "message": "no such endpoint: " + path}))
        self.assertEqual(self.up.stats()["requests"], 0)
        # a query string is not part of the path
        status, _, data = self.fd.request("GET", "/healthz?verbose=1")
        self.assertEqual((status, json.loads(data)), (200, {"status": "ok"}))

    def test_client_close_after_a_batch_is_seen_at_once(self):
        # the answer's upstream reads leave errno EAGAIN behind; the close
        # of the client must still be seen then, not at client_timeout
        pid = self.fd.proc.pid
        base = len(os.listdir("/proc/%d/fd" % pid))
        for path in ("/bytes/100", "/json", "/binary"):
            body = json.dumps([self.up.url(path)] * 3).encode()
            s = self.connect()
            s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body)
            out, _ = read_responses(s, 1, 5)
            self.assertEqual(out[0][0], 200, path)
            s.close()
            # back to the descriptors it had: the client's socket closed
            # (the upstream connections were open already, kept alive)
            harness.wait_until(lambda: len(os.listdir("/proc/%d/fd" % pid)) <= base + 3, 2)
            self.assertLessEqual(len(os.listdir("/proc/%d/fd" % pid)), base + 3, path)

    def test_head_has_no_body(self):
        for path in ("/healthz", "/metrics", "/v1/upstreams"):
            get, _ = self.exchange(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode(), 1)
            head, closed = self.exchange(b"HEAD %s HTTP/1.1\r\nHost: x\r\n"
                                         b"Connection: close\r\n\r\n" % path.encode(), 1,
                                         bodyless=(0,))
            self.assertEqual(head[0][0], 200, path)
            self.assertEqual(head[0][1]["content-type"], get[0][1]["content-type"])
            self.assertGreater(int(head[0][1]["content-length"]), 0)
            self.assertIs(closed, True, path)   # no body bytes came before the close
        # the 405 of HEAD /v1/batch: headers only, then the next answer
        out, _ = self.exchange(b"HEAD /v1/batch HTTP/1.1\r\nHost: x\r\n\r\n"
                               b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 2, bodyless=(0,))
        self.assertEqual([(r[0], r[2]) for r in out],
                         [(405, b""), (200, b'{"status":"ok"}')])
        self.assertEqual(out[0][1]["allow"], "POST")
        self.assertGreater(int(out[0][1]["content-length"]), 0)

    # --- pipelining ---------------------------------------------------------

    def test_pipelined_requests_each_answered_in_order(self):
        body = self.batch_body()
        reqs = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n[1]"
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                % (len(body), body))
        start = time.time()
        out, closed = self.exchange(reqs, 6)
        self.assertEqual([r[0] for r in out], [200, 404, 400, 200, 200, 200])
        self.assertEqual(out[0][2], b'{"status":"ok"}')
        self.assertEqual(json.loads(out[4][2])["results"][0]["status"], 200)
        self.assertEqual(out[5][1].get("connection"), "close")
        self.assertTrue(closed)
        self.assertLess(time.time() - start, 3)   # not client_timeout

    def test_pipelined_two_healthz_in_one_write(self):
        out, closed = self.exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                    b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                    b"Connection: close\r\n\r\n", 2)
        self.assertEqual([r[0] for r in out], [200, 200])
        self.assertTrue(closed)

    # --- form bodies (libevhtp parsed them onto its stack) -------------------

    def test_big_form_typed_bodies_to_every_route(self):
        fd = self.fanoutd(config="[fanoutd]\nmax_request_body = 16M\n")
        big = b"a=" + b"x" * (8 << 20)
        for path in ("/v1/batch", "/healthz", "/metrics", "/v1/upstreams", "/nope"):
            status, _, data = fd.request(
                "POST", path, big,
                {"Content-Type": "application/x-www-form-urlencoded"})
            self.assertIn(status, (400, 404, 405), path)
            self.assertEqual(json.loads(data)["ok"], False)
        # the case: curl --data-binary @big-batch.json (curl's
        # form content type) with a 4.5 MB batch of 1,000 URLs
        path = os.path.join(fd.dir, "big-batch.json")
        with open(path, "w") as f:
            json.dump([self.up.url("/json?pad=%04d&" % i + "x" * 4500)
                       for i in range(1000)], f)
        self.assertGreater(os.path.getsize(path), 4500000)
        rc, out = harness.curl("--data-binary", "@" + path,
                               "http://127.0.0.1:%d/v1/batch" % fd.port, timeout=60)
        self.assertEqual(rc, 0)
        ans = json.loads(out)
        self.assertIs(ans["ok"], True)
        self.assertEqual([r["status"] for r in ans["results"]], [200] * 1000)
        status, _, data = fd.request("GET", "/healthz")
        self.assertEqual(status, 200)

    def test_big_form_typed_bodies_with_auth(self):
        token_dir = self.fd.dir
        path = os.path.join(token_dir, "token")
        with open(path, "w") as f:
            f.write("s3cret-token-0123456789\n")
        fd = self.fanoutd(config="[fanoutd]\nmax_request_body = 16M\n"
                                 "auth_token_file = %s\n" % path)
        big = b"a=" + b"x" * (8 << 20)
        for auth in ({}, {"Authorization": "Bearer s3cret-token-0123456789"}):
            for route in ("/v1/batch", "/healthz", "/metrics", "/nope"):
                hdrs = dict(auth, **{"Content-Type": "application/x-www-form-urlencoded"})
                status, _, data = fd.request("POST", route, big, hdrs)
                self.assertIn(status, (400, 401, 404, 405), (route, auth))
        status, _, _ = fd.request("GET", "/healthz")
        self.assertEqual(status, 200)

    # --- framing ------------------------------------------------------------

    def post(self, head, body=b"", want=1):
        return self.exchange(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n" + body,
                             want)

    def assert_refused(self, out, status, message):
        self.assertEqual(len(out), 1, out)
        self.assertEqual(out[0][0], status, out[0])
        self.assertEqual(json.loads(out[0][2]),
                         {"ok": False, "error": "request_too_large" if status in (413, 414, 431)
                          else "invalid_request", "message": message})

    def test_chunk_extensions_and_tab_before_value(self):
        body = self.batch_body()
        chunked = b"%x;foo=bar\r\n%s\r\n0;last\r\n\r\n" % (len(body), body)
        out, _ = self.post(b"Transfer-Encoding: chunked\r\n", chunked)
        self.assertEqual(out[0][0], 200, out)
        self.assertEqual(json.loads(out[0][2])["results"][0]["status"], 200)
        out, _ = self.post(b"Transfer-Encoding:\tchunked\r\n", chunked)
        self.assertEqual(out[0][0], 200, out)
        # trailers are read and dropped
        out, _ = self.post(b"Transfer-Encoding: chunked\r\n",
                           b"%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(body), body))
        self.assertEqual(out[0][0], 200, out)

    def test_obs_fold_is_one_value(self):
        out, _ = self.exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n b\r\n\r\n", 1)
        self.assertEqual(out[0][0], 200)

    def test_bad_framing_gets_400(self):
        body = self.batch_body()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        cases = [
            (b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", chunked,
             "malformed request: Transfer-Encoding other than chunked"),
            (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked,
             "malformed request: Invalid `Transfer-Encoding` header value"),
            (b"Transfer-Encoding: gzip, chunked\r\n", chunked,
             "malformed request: Transfer-Encoding other than chunked"),
            (b"Content-Length: +29\r\n", body,
             "malformed request: Invalid character in Content-Length"),
            (b"Content-Length: 29, 29\r\n", body,
             "malformed request: Invalid character in Content-Length"),
            (b"Content-Length: 4\r\nContent-Length: 5\r\n", body,
             "malformed request: Duplicate Content-Length"),
            (b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", chunked,
             "malformed request: Content-Length can't be present with Transfer-Encoding"),
            (b"X-Bad : 1\r\nContent-Length: %d\r\n" % len(body), body,
             "malformed request: a header name that is not a token "
             "(white space before the colon?)"),
            (b"Transfer-Encoding: chunked\r\n", b"zz\r\n" + body,
             "malformed request: Invalid character in chunk size"),
        ]
        for head, data, message in cases:
            out, closed = self.post(head, data)
            self.assert_refused(out, 400, message)
            self.assertTrue(closed, head)
        self.assertEqual(self.up.stats()["requests"], 0)

    def test_lower_case_method_501(self):
        out, closed = self.exchange(b"get /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1)
        self.assert_refused(out, 501, "not a method fanoutd implements (methods are upper "
                                      "case: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)")
        out, _ = self.exchange(b"TRACE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1)
        self.assert_refused(out, 501, "method TRACE is not implemented")
        out, _ = self.exchange(b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 1)
        self.assertEqual(out[0][0], 505)

    def test_connection_header_read_once(self):
        # evhtp alone read "close, foo" as keep-alive and dropped the rest
        for value in (b"close, foo", b"keep-alive, close"):
            out, closed = self.exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: "
                                        + value + b"\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n", 2)
            self.assertEqual([r[0] for r in out], [200], value)
            self.assertEqual(out[0][1]["connection"], "close")
            self.assertIs(closed, True)

    def test_what_evhtp_cannot_parse_is_answered(self):
        out, _ = self.exchange(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"v" * 9000 +
                               b"\r\n\r\n", 1)
        self.assert_refused(out, 431, "a header value over 8000 bytes")
        out, _ = self.exchange(b"GET /" + b"p" * 9000 + b" HTTP/1.1\r\n\r\n", 1)
        self.assert_refused(out, 414, "request target over 8000 bytes")
        out, _ = self.exchange(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 1)
        self.assert_refused(out, 400, 'malformed request: the target must be a path ("/...")')
        out, _ = self.exchange(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 1)
        self.assertEqual(out[0][0], 505)

    def test_refused_chunked_upload_closes_after_404(self):
        # 413 by the gate mid-body, but the path is unknown: 404, then close
        out, closed = self.exchange(b"POST /nope HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    b"12000\r\n" + b"x" * 0x12000 + b"\r\n0\r\n\r\n"
                                    b"GET /healthz HTTP/1.1\r\n\r\n", 2)
        self.assertEqual([r[0] for r in out], [404])
        self.assertIs(closed, True)

    def test_half_closed_client_gets_its_whole_answer(self):
        n = 200
        body = json.dumps([self.up.url("/bytes/20000")] * n).encode()
        s = self.connect()
        try:
            s.sendall(b"POST /v1/batch HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % len(body)
                      + body)
            time.sleep(1)
            s.shutdown(socket.SHUT_WR)
            data = b""
            s.settimeout(10)
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        ans = json.loads(data.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(len(ans["results"]), n)

    def test_answer_paced_by_the_client(self):
        # 20 MB of answer to a client that does not read: fanoutd writes
        # what the socket takes, not the whole answer into memory
        n = 1000
        body = json.dumps([self.up.url("/bytes/20000")] * n).encode()
        before = self.answer_bytes()
        s = self.connect()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body)
            time.sleep(2)
            stalled = self.answer_bytes() - before
            self.assertLess(stalled, 8 << 20)
            data = b""
            s.settimeout(10)
            while b"\r\n0\r\n\r\n" not in data[-16:]:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        self.assertGreater(len(data), n * 20000)
        self.assertGreater(self.answer_bytes() - before, n * 20000)

    def answer_bytes(self):
        return scrape(self.fd).get("fanoutd_client_answer_bytes_total")

    def test_refusal_keeps_its_place_in_the_pipeline(self):
        out, closed = self.exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                    b"POST /v1/batch HTTP/1.1\r\nContent-Length: +1\r\n\r\n1"
                                    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 3)
        self.assertEqual([r[0] for r in out], [200, 400])
        self.assertTrue(closed)

    def test_413_for_chunked_upload_is_read(self):
        # 11 MB chunked against max_request_body = 64K: a 413, not a reset
        s = self.connect()
        try:
            s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            piece = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
            sent = 0
            try:
                for _ in range(170):
                    s.sendall(piece)
                    sent += 1
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass
            out, closed = read_responses(s, 1)
        finally:
            s.close()
        self.assert_refused(out, 413, "request body over max_request_body")

    def test_413_for_declared_length_is_read(self):
        for _ in range(5):
            s = self.connect()
            try:
                s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 11000000\r\n\r\n")
                try:
                    for _ in range(160):
                        s.sendall(b" " * 65536)
                except OSError:
                    pass
                out, closed = read_responses(s, 1)
            finally:
                s.close()
            self.assert_refused(out, 413, "request body over max_request_body")
            self.assertNotEqual(closed, "reset")

    def test_expect_100_continue_not_stalled(self):
        body = self.batch_body()
        start = time.time()
        rc, out = harness.curl("-H", "Expect: 100-continue", "--data-binary", body,
                               "http://127.0.0.1:%d/v1/batch" % self.fd.port)
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out)["ok"], True)
        self.assertLess(time.time() - start, 0.9)   # curl would wait 1 s for a 100


class Relisten(unittest.TestCase):
    def test_listeners_dropped_by_reloads_are_freed(self):
        # every reload moves the listener to another port; a dropped one
        # with no connection left is freed (the fixed array of retired
        # listeners leaked once 64 reloads had dropped one)
        ports = [harness.free_port() for _ in range(2)]
        fd = harness.Fanoutd(config="[fanoutd]\nlisten = 127.0.0.1:%d\n" % ports[0], listen=None)
        try:
            fds_before = len(os.listdir("/proc/%d/fd" % fd.proc.pid))
            for i in range(1, 81):
                fd.hup("[fanoutd]\nlisten = 127.0.0.1:%d\n" % ports[i % 2])
                deadline = time.time() + 5
                while fd.read_log().count("reloaded") < i and time.time() < deadline:
                    time.sleep(0.01)
            c = socket.create_connection(("127.0.0.1", ports[0]), timeout=5)
            c.close()
            fds_after = len(os.listdir("/proc/%d/fd" % fd.proc.pid))
            self.assertLessEqual(fds_after, fds_before + 2)
        finally:
            fd.stop()


if __name__ == "__main__":
    harness.main()
