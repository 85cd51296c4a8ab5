"""Streamed answers (SPEC section 11): POST /v1/batch with
Accept: application/x-ndjson against the test upstream, read line by line
as the chunks arrive:

  - one line per request in completion order while the batch runs (the
    fast ones arrive before the slow ones are done), every index exactly
    once across the lines and the last line;
  - each line is the entry of the buffered answer of the same batch
    (bodies, encodings, statuses, headers; timings aside), success, error
    group element or settled entry;
  - fail fast: the failure's line, then the last line with "cancelled",
    the upstream's requests aborted; mode settled: every line, no "error";
  - progress lines at the asked interval with consistent counts;
    "progress_ms" validated;
  - back-pressure: a client that stops reading holds the batch's starts
    once stream_buffer is unsent (the upstream sees no more requests), and
    the batch completes when it reads again;
  - a client gone mid-stream cancels the batch (in_flight back to 0);
  - a bad batch gets its 400 (JSON) before anything streams;
    max_stream_batch_size replaces max_batch_size;
  - the access log line and the batch counter as for a buffered batch."""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NDJSON = {"Accept": "application/x-ndjson"}
TIMING = ("elapsed_ms", "timing", "reused")


class Stream:
    """One streamed batch over a raw socket: the head, then the chunked
    body decoded and split into lines as they arrive, each with the time it
    arrived.  rcvbuf: a small receive buffer, so a client that stops
    reading stops the sender soon."""

    def __init__(self, port, payload, accept="application/x-ndjson", rcvbuf=None,
                 timeout=30):
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.t0 = time.time()
        head = ("POST /v1/batch HTTP/1.1\r\nHost: x\r\nAccept: %s\r\n"
                "Content-Length: %d\r\n\r\n" % (accept, len(payload))).encode()
        self.sock.sendall(head + payload)
        self.f = self.sock.makefile("rb")
        self.status = int(self.f.readline().split()[1])
        self.headers = {}
        while True:
            line = self.f.readline().rstrip(b"\r\n")
            if not line:
                break
            k, v = line.decode().split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        self.pending = b""
        self.ended = False

    def body(self):
        """A non-streamed answer: the rest, as JSON (Content-Length)."""
        return json.loads(self.f.read(int(self.headers["content-length"])))

    def _chunk(self):
        size = int(self.f.readline().strip(), 16)
        data = self.f.read(size)
        self.f.readline()
        if size == 0:
            self.ended = True
        return data

    def line(self):
        """The next line as (seconds since the request, JSON), or None at
        the end of the body."""
        while b"\n" not in self.pending:
            if self.ended:
                assert self.pending == b"", self.pending
                return None
            self.pending += self._chunk()
        text, self.pending = self.pending.split(b"\n", 1)
        return time.time() - self.t0, json.loads(text)

    def lines(self):
        out = []
        while True:
            got = self.line()
            if got is None:
                return out
            out.append(got)

    def close(self):
        self.f.close()
        self.sock.close()


def split(lines):
    """(result lines, progress lines, last line) of a whole stream; the
    last line comes last and only once."""
    objs = [o for _, o in lines]
    assert objs and objs[-1].get("done") is True, objs[-3:]
    assert sum(1 for o in objs if "done" in o) == 1, objs
    return ([o for o in objs[:-1] if "progress" not in o],
            [o for o in objs[:-1] if "progress" in o], objs[-1])


def untimed(entry):
    return {k: v for k, v in entry.items() if k not in TIMING}


def upstream_in_flight(fd):
    status, _, data = fd.request("GET", "/v1/upstreams")
    assert status == 200, data
    return sum(u["in_flight"] for u in json.loads(data)["upstreams"])


class StreamCase(harness.TestCase):
    RESET = True
    STILL_ALIVE = True

    def stream(self, payload, **kw):
        s = Stream(self.fd.port, payload, **kw)
        self.addCleanup(s.close)
        return s

    def test_lines_come_in_completion_order_while_the_batch_runs(self):
        slow, fast = "/delay/500", "/delay/50"
        paths = [slow, fast, fast, slow, fast, slow]
        s = self.stream([self.up.url(p) for p in paths])
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers["content-type"], "application/x-ndjson")
        self.assertEqual(s.headers["transfer-encoding"], "chunked")
        lines = s.lines()
        results, progress, last = split(lines)
        self.assertEqual(progress, [])
        order = [r["index"] for r in results]
        self.assertEqual(sorted(order[:3]), [1, 2, 4])
        self.assertEqual(sorted(order[3:]), [0, 3, 5])
        when = {o["index"]: t for t, o in lines if "index" in o}
        # the fast lines were read before the slow requests were done
        for i in (1, 2, 4):
            self.assertLess(when[i], 0.35, when)
        for i in (0, 3, 5):
            self.assertGreater(when[i], 0.45, when)
        self.assertEqual(last["ok"], True)
        self.assertEqual(sorted(last["completed"]), list(range(6)))
        self.assertEqual(last["failed"], [])
        self.assertEqual(last["cancelled"], [])
        self.assertNotIn("error", last)
        self.assertGreater(last["elapsed_ms"], 450)
        for r in results:
            self.assertEqual(r["status"], 200)
            self.assertEqual(r["url"], self.up.url(paths[r["index"]]))

    def test_lines_are_the_entries_of_the_buffered_answer(self):
        reqs = [self.up.url(p) for p in
                ("/json", "/bytes/3000", "/binary", "/headers", "/chunked", "/bytes/5000")]
        reqs.append({"url": self.up.url("/echo"), "method": "POST", "json": {"a": [1, 2.50]},
                     "id": 7.0})
        status, buffered = self.fd.batch({"requests": reqs})
        self.assertEqual(status, 200, buffered)
        s = self.stream({"requests": reqs})
        results, _, last = split(s.lines())
        self.assertEqual(last["ok"], True)
        by_index = {r["index"]: r for r in results}
        self.assertEqual(sorted(by_index), list(range(len(reqs))))
        for want in buffered["results"]:
            got = by_index[want["index"]]
            self.assertEqual(set(got), set(want))
            self.assertEqual(untimed(got), untimed(want))
            self.assertEqual(set(got["timing"]), set(want["timing"]))
        self.assertEqual(by_index[2]["encoding"], "base64")
        self.assertEqual(by_index[0]["encoding"], "json")
        self.assertEqual(by_index[1]["encoding"], "text")
        self.assertEqual(by_index[6]["id"], 7.0)

    def test_settled_lines_are_the_settled_entries(self):
        reqs = [self.up.url("/json"), self.up.url("/status/404"),
                self.up.url("/delay/100"), self.up.url("/status/429?retry_after=3")]
        body = {"requests": reqs, "mode": "settled"}
        status, buffered = self.fd.batch(body)
        self.assertEqual(status, 200, buffered)
        s = self.stream(body)
        results, _, last = split(s.lines())
        by_index = {r["index"]: r for r in results}
        self.assertEqual(sorted(by_index), [0, 1, 2, 3])
        for want in buffered["results"]:
            self.assertEqual(untimed(by_index[want["index"]]), untimed(want))
        self.assertEqual(by_index[1]["error"]["type"], "http_status")
        self.assertEqual(by_index[3]["error"]["type"], "rate_limited")
        self.assertEqual(last, {"done": True, "ok": False, "elapsed_ms": last["elapsed_ms"],
                                "completed": [0, 2], "failed": [1, 3], "cancelled": []})

    def test_fail_fast_the_failure_then_the_last_line(self):
        reqs = [self.up.url("/delay/3000")] * 5 + [self.up.url("/status/500?delay=100")]
        reqs += [self.up.url("/delay/3000")] * 10   # queued behind the limit of 10
        status, buffered = self.fd.batch(reqs)
        self.assertEqual(status, 502)
        self.reset_upstreams()
        s = self.stream(reqs)
        lines = s.lines()
        results, _, last = split(lines)
        self.assertEqual(len(results), 1, results)
        self.assertEqual(untimed(results[0]), untimed(buffered["errors"][0]))
        self.assertEqual(results[0]["index"], 5)
        self.assertEqual(results[0]["type"], "http_status")
        self.assertLess(lines[-1][0], 1.5)   # at once, not after the slow ones
        self.assertEqual(last["ok"], False)
        self.assertEqual(last["error"], "batch_failed")
        self.assertEqual(last["message"], buffered["message"])
        self.assertEqual(last["message"], "1 of 16 requests failed, 15 cancelled")
        self.assertEqual(last["completed"], [])
        self.assertEqual(last["failed"], [5])
        self.assertEqual(sorted(last["cancelled"]), [i for i in range(16) if i != 5])
        # the ones in flight were aborted upstream; nothing runs on
        self.assertTrue(harness.wait_until(lambda: self.up.stats()["aborted"] >= 9),
                        self.up.stats())
        self.assertTrue(harness.wait_until(lambda: upstream_in_flight(self.fd) == 0))
        self.assertLessEqual(self.up.stats()["requests"], 10)

    def test_progress_lines_at_the_interval(self):
        reqs = [self.up.url("/delay/150")] * 30   # 3 waves of 10
        s = self.stream({"requests": reqs, "progress_ms": 100})
        lines = s.lines()
        results, progress, last = split(lines)
        self.assertEqual(len(results), 30)
        self.assertTrue(3 <= len(progress) <= 6, progress)
        done = 0
        for p in progress:
            p = p["progress"]
            self.assertEqual(set(p), {"total", "done", "failed", "in_flight", "queued",
                                      "elapsed_ms"})
            self.assertEqual(p["total"], 30)
            self.assertEqual(p["done"] + p["in_flight"] + p["queued"], 30)
            self.assertLessEqual(p["in_flight"], 10)
            self.assertEqual(p["failed"], 0)
            self.assertGreaterEqual(p["done"], done)
            done = p["done"]
        ticks = [p["progress"]["elapsed_ms"] for p in progress]
        for k, t in enumerate(ticks):
            self.assertAlmostEqual(t, 100 * (k + 1), delta=60)
        # a line's "done" counts the lines before it
        seen = 0
        for _, o in lines:
            if "index" in o:
                seen += 1
            elif "progress" in o:
                self.assertEqual(o["progress"]["done"], seen)
        self.assertEqual(last["ok"], True)

    def test_progress_ms_is_checked(self):
        for bad, why in ((5, "out of range 10..3600000"), (3600001, "out of range"),
                         ("100", "must be an integer"), (1.5, "must be an integer")):
            s = self.stream({"requests": [self.up.url("/json")], "progress_ms": bad})
            self.assertEqual(s.status, 400)
            self.assertEqual(s.headers["content-type"], "application/json")
            ans = s.body()
            self.assertEqual(ans["error"], "invalid_request")
            self.assertIn("progress_ms", ans["message"])
            self.assertIn(why, ans["message"])
        # a buffered batch takes it and ignores it
        status, ans = self.fd.batch({"requests": [self.up.url("/json")], "progress_ms": 10})
        self.assertEqual(status, 200, ans)
        self.assertEqual(self.up.stats()["requests"], 1)

    def test_bad_batch_is_400_before_anything_streams(self):
        s = self.stream(["http://127.0.0.1:1/ok", "ftp://x/"])
        self.assertEqual(s.status, 400)
        self.assertEqual(s.headers["content-type"], "application/json")
        self.assertEqual(s.body(), {"ok": False, "error": "invalid_request",
                                    "message": "[1]: unsupported scheme \"ftp\""})
        s = self.stream(b"[not json")
        self.assertEqual(s.status, 400)
        self.assertEqual(s.body()["error"], "invalid_request")
        self.assertEqual(self.up.stats()["requests"], 0)

    def test_empty_batch_is_the_last_line_only(self):
        s = self.stream([])
        self.assertEqual(s.status, 200)
        lines = s.lines()
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0][1], {"done": True, "ok": True,
                                       "elapsed_ms": lines[0][1]["elapsed_ms"],
                                       "completed": [], "failed": [], "cancelled": []})

    def test_other_accept_values(self):
        # q=0 refuses it, wildcards take the default: JSON
        for accept in ("application/x-ndjson;q=0", "*/*", "application/*", "text/plain"):
            s = self.stream([self.up.url("/json")], accept=accept)
            self.assertEqual(s.status, 200)
            self.assertEqual(s.headers["content-type"], "application/json", accept)
            self.assertEqual(s.body()["ok"], True)
        for accept in ("application/json, application/x-ndjson", "Application/X-NDJSON",
                       "application/x-ndjson; charset=utf-8; q=0.5"):
            s = self.stream([self.up.url("/json")], accept=accept)
            self.assertEqual(s.headers["content-type"], "application/x-ndjson", accept)
            self.assertEqual(split(s.lines())[2]["ok"], True)

    def test_client_gone_mid_stream_cancels_the_batch(self):
        reqs = [self.up.url("/json")] + [self.up.url("/delay/5000")] * 30
        s = self.stream(reqs)
        t, first = s.line()
        self.assertEqual(first["index"], 0)
        self.assertTrue(harness.wait_until(lambda: self.up.stats()["in_flight"] == 10))
        s.close()
        self.assertTrue(harness.wait_until(lambda: upstream_in_flight(self.fd) == 0),
                        "in flight after the client left")
        self.assertTrue(harness.wait_until(lambda: self.up.stats()["aborted"] == 10),
                        self.up.stats())
        self.assertEqual(self.up.stats()["requests"], 11)
        self.fd.wait_log('"n":31,"outcome":"client_gone"')

    def test_access_log_and_counts_as_buffered(self):
        s = self.stream([self.up.url("/json"), self.up.url("/status/503")])
        _, _, last = split(s.lines())
        self.assertEqual(last["failed"], [1])
        log = self.fd.wait_log('"n":2,"outcome":"failed","status":200')
        self.assertIn('"failed_index":1,"failed_type":"http_status"', log)
        s = self.stream({"requests": [self.up.url("/status/404")], "mode": "settled"})
        split(s.lines())
        self.fd.wait_log('"n":1,"outcome":"settled","status":200')
        status, _, body = self.fd.request("GET", "/metrics")
        self.assertIn(b'fanoutd_batches_total{outcome="failed"}', body)


class StreamLimits(harness.TestCase):
    """Back-pressure at a small stream_buffer, and max_stream_batch_size."""

    CONFIG = ("[fanoutd]\nstream_buffer = 64K\nupstream_concurrency = 4\n"
              "max_batch_size = 10000\nglobal_concurrency = 64\n")
    RESET = True
    STILL_ALIVE = True

    def test_a_client_that_stops_reading_holds_the_starts(self):
        n = 3000
        s = Stream(self.fd.port, [self.up.url("/bytes/10000")] * n, rcvbuf=16384)
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        s.line()
        # the client reads no more: the kernel's buffers, then stream_buffer
        # fill, and the requests stop
        time.sleep(1.5)
        before = self.up.stats()["requests"]
        time.sleep(1.0)
        after = self.up.stats()["requests"]
        self.assertEqual(before, after, "requests went on while the client did not read")
        self.assertLess(after, n / 2)
        self.assertEqual(self.up.stats()["in_flight"], 0)
        # reading again lets it finish
        results, _, last = split([(0, {"index": 0})] + s.lines())
        self.assertEqual(last["ok"], True, {k: last[k] for k in ("ok", "elapsed_ms")})
        self.assertEqual(len(last["completed"]), n)
        self.assertEqual(len(results), n)
        self.assertEqual(self.up.stats()["requests"], n)
        for r in results[1:50]:
            self.assertEqual(r["body"], ("abcdefghijklmnopqrstuvwxyz" * 400)[:10000])

    def test_max_stream_batch_size_replaces_max_batch_size(self):
        reqs = [self.up.url("/json")] * 20000
        status, ans = self.fd.batch(reqs)
        self.assertEqual(status, 400)
        self.assertEqual(ans["message"],
                         "batch: too many requests: 20000 (max_batch_size is 10000)")
        self.assertEqual(self.up.stats()["requests"], 0)
        s = Stream(self.fd.port, reqs)
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        results, _, last = split(s.lines())
        self.assertEqual(last["ok"], True)
        self.assertEqual(len(results), 20000)
        self.assertEqual(sorted(r["index"] for r in results), list(range(20000)))
        self.assertEqual(self.up.stats()["requests"], 20000)

    def test_max_stream_batch_size_refuses_beyond(self):
        fd = self.fanoutd(config="[fanoutd]\nmax_stream_batch_size = 5\n")
        s = Stream(fd.port, [self.up.url("/json")] * 6)
        self.addCleanup(s.close)
        self.assertEqual(s.status, 400)
        self.assertEqual(s.body()["message"],
                         "batch: too many requests: 6 (max_stream_batch_size is 5)")
        self.assertEqual(self.up.stats()["requests"], 0)


if __name__ == "__main__":
    harness.main()
