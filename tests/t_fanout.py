"""The fanout command-line client (SPEC section 12, man/fanout.1) against the
real fanoutd and the test upstream, and against a small fake daemon here
that streams NDJSON (SPEC section 11) on a script, so the streamed path is
tested whatever the real daemon answers:

  - each input form: arguments, standard input lines (blank lines and #
    comments skipped), -f FILE lines, -f FILE JSON (short and long form);
  - each output form: ndjson in input order (and as soon as the order
    allows), json in the daemon's buffered shape (results, error group,
    settled), body (text, JSON compact, base64);
  - exit statuses 0, 1, 2 (usage, input, the daemon's 400 and 413) and 3
    (nothing listening, 401 without a token, a stream that breaks off);
  - -d unix:/path, $FANOUTD_URL, --token-file, --settled, -H, -X POST, -t,
    --retries against /flaky/KEY;
  - the progress bar under a pseudo-terminal: several frames, the counts,
    the line cleared at the end; nothing on standard error (no escape
    codes) when it is not a terminal; --progress and --no-progress."""

import base64
import http.server
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FANOUT = os.environ.get("FANOUT", os.path.join(HERE, "..", "src", "fanout"))
CANCELLED = {"type": "cancelled", "message": "cancelled"}


def run_fanout(args, daemon=None, stdin=b"", env_extra=None, stderr=subprocess.PIPE,
               timeout=30):
    """Run fanout -> (exit status, stdout bytes, stderr bytes or None)."""
    env = dict(os.environ)
    env.pop("FANOUTD_URL", None)
    env.update(env_extra or {})
    argv = [FANOUT] + (["-d", daemon] if daemon else []) + list(args)
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=stderr,
                       env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def ndjson(out):
    return [json.loads(line) for line in out.decode().splitlines()]


class Terminal:
    """fanout with its standard error on a pseudo-terminal (stdout a
    pipe): everything the terminal got, and stdout, once it exits."""

    def __init__(self, args, daemon, stdin=b""):
        master, slave = pty.openpty()
        self.proc = subprocess.Popen([FANOUT, "-d", daemon] + list(args),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=slave)
        os.close(slave)
        self.proc.stdin.write(stdin)
        self.proc.stdin.close()
        self.tty = b""
        out = []
        reader = threading.Thread(target=lambda: out.append(self.proc.stdout.read()))
        reader.start()
        deadline = time.time() + 30
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    data = os.read(master, 65536)
                except OSError:       # EIO: the slave side is closed
                    data = b""
                if not data and self.proc.poll() is not None:
                    break
                self.tty += data
            elif self.proc.poll() is not None:
                break
        os.close(master)
        self.rc = self.proc.wait(10)
        reader.join(10)
        self.proc.stdout.close()
        self.stdout = out[0] if out else b""

    def frames(self):
        """The frames drawn: the text after each \\r, erase codes dropped."""
        return [f.replace(b"\x1b[K", b"").decode() for f in self.tty.split(b"\r")[1:]
                if f.replace(b"\x1b[K", b"")]


class FakeDaemon:
    """A stand-in fanoutd on loopback that answers POST /v1/batch with
    Content-Type application/x-ndjson, chunked, by a script: a str is a
    line, a float a pause (seconds), a threading.Event a wait for it.
    Records the requests it got (headers, batch)."""

    def __init__(self, script):
        owner = self
        self.script = script
        self.got = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                owner.got.append((dict(self.headers), json.loads(self.rfile.read(n))))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.close_connection = True
                try:
                    self.play()
                except (BrokenPipeError, ConnectionResetError):
                    pass       # fanout hung up (a bad line): as a daemon sees it

            def play(self):
                for step in owner.script:
                    if isinstance(step, float):
                        time.sleep(step)
                    elif isinstance(step, threading.Event):
                        step.wait(20)
                    else:
                        data = (step + "\n").encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def ok_line(i, url, body="x"):
    return json.dumps({"index": i, "url": url, "status": 200, "elapsed_ms": 1.0,
                       "body": body, "encoding": "text"})


def err_line(i, url):
    return json.dumps({"index": i, "url": url, "type": "http_status", "status": 500,
                       "message": "upstream answered 500 Internal Server Error"})


def done_line(ok, completed, failed, cancelled, **extra):
    d = {"done": True, "ok": ok, "elapsed_ms": 5.0, "completed": completed,
         "failed": failed, "cancelled": cancelled}
    d.update(extra)
    return json.dumps(d)


class FanoutCase(harness.TestCase):
    UPSTREAMS = 1

    def daemon(self):
        return "http://127.0.0.1:%d" % self.fd.port

    def fanout(self, *args, **kw):
        kw.setdefault("daemon", self.daemon())
        return run_fanout(args, **kw)

    def url(self, path):
        return self.up.url(path)

    def tmpfile(self, data):
        fd, path = tempfile.mkstemp(prefix="fanout-test-")
        with os.fdopen(fd, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        self.addCleanup(os.unlink, path)
        return path

    def streams(self):
        """Whether the real daemon answers NDJSON yet (SPEC section 11)."""
        if not hasattr(FanoutCase, "_streams"):
            _, hdrs, _ = self.fd.request("POST", "/v1/batch", json.dumps([self.url("/json")]),
                                         {"Accept": "application/x-ndjson"})
            FanoutCase._streams = hdrs.get("content-type", "").startswith(
                "application/x-ndjson")
        return FanoutCase._streams


class TestInput(FanoutCase):
    def test_arguments(self):
        urls = [self.url("/json"), self.url("/delay/50"), self.url("/binary")]
        rc, out, err = self.fanout(*urls)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, b"")
        lines = ndjson(out)
        self.assertEqual([r["index"] for r in lines], [0, 1, 2])
        self.assertEqual([r["url"] for r in lines], urls)
        self.assertEqual([r["status"] for r in lines], [200, 200, 200])
        self.assertEqual(lines[0]["body"], {"name": "Ada", "n": [1, 2, 3]})
        self.assertEqual(lines[2]["encoding"], "base64")

    def test_stdin_lines(self):
        text = "# the list\n\n  %s  \r\n\t\n#%s\n%s" % (self.url("/json"), self.url("/x"),
                                                      self.url("/bytes/3"))
        rc, out, err = self.fanout(stdin=text.encode())
        self.assertEqual(rc, 0, err)
        lines = ndjson(out)
        self.assertEqual([r["url"] for r in lines], [self.url("/json"), self.url("/bytes/3")])
        self.assertEqual(lines[1]["body"], "abc")

    def test_file_lines(self):
        path = self.tmpfile("%s\n# skip\n%s\n" % (self.url("/json"), self.url("/bytes/2")))
        rc, out, err = self.fanout("-f", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual([r["body"] for r in ndjson(out)], [{"name": "Ada", "n": [1, 2, 3]},
                                                            "ab"])

    def test_file_json_long_form(self):
        batch = {"requests": [
            self.url("/json"),
            {"url": self.url("/echo"), "method": "PUT", "body": "hi", "id": "tag-1"},
        ], "headers": {"X-From-File": "1"}}
        rc, out, err = self.fanout("-f", self.tmpfile(json.dumps(batch)))
        self.assertEqual(rc, 0, err)
        lines = ndjson(out)
        self.assertEqual(lines[1]["id"], "tag-1")
        echo = lines[1]["body"]
        self.assertEqual(echo["method"], "PUT")
        self.assertEqual(echo["body"], "hi")
        self.assertEqual(echo["headers"].get("x-from-file"), "1")

    def test_file_json_short_form(self):
        path = self.tmpfile(json.dumps([self.url("/bytes/1"), {"url": self.url("/bytes/2")}]))
        rc, out, err = self.fanout("-o", "body", "-f", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"a\nab\n")

    def test_file_from_stdin_dash(self):
        rc, out, err = self.fanout("-o", "body", "-f", "-",
                                   stdin=json.dumps([self.url("/bytes/4")]).encode())
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"abcd\n")

    def test_empty_input(self):
        rc, out, err = self.fanout(stdin=b"\n# nothing\n")
        self.assertEqual((rc, out), (0, b""), err)
        rc, out, err = self.fanout("-o", "json", stdin=b"")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["results"], [])


class TestOutput(FanoutCase):
    def test_json_all_ok_is_the_buffered_shape(self):
        urls = [self.url("/json"), self.url("/delay/30"), self.url("/bytes/3")]
        rc, out, err = self.fanout("-o", "json", *urls)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.count(b"\n"), 1)
        mine = json.loads(out)
        status, theirs = self.fd.batch(urls)
        self.assertEqual(status, 200)
        self.assertEqual(list(mine), list(theirs))
        self.assertTrue(mine["ok"])
        self.assertEqual([r["index"] for r in mine["results"]], [0, 1, 2])
        for a, b in zip(mine["results"], theirs["results"]):
            self.assertEqual(set(a), set(b))
            self.assertEqual((a["url"], a["status"], a["body"], a["encoding"]),
                             (b["url"], b["status"], b["body"], b["encoding"]))

    def fail_fast_urls(self):
        return [self.url("/json"), self.url("/status/500?delay=200"),
                self.url("/delay/5000")]

    def test_json_error_group(self):
        urls = self.fail_fast_urls()
        rc, out, err = self.fanout("-o", "json", *urls)
        self.assertEqual(rc, 1, err)
        a = json.loads(out)
        self.assertEqual(list(a), ["ok", "error", "message", "elapsed_ms", "errors",
                                   "completed", "cancelled"])
        self.assertFalse(a["ok"])
        self.assertEqual(a["error"], "batch_failed")
        self.assertEqual(a["message"], "1 of 3 requests failed, 1 cancelled")
        self.assertEqual([e["index"] for e in a["errors"]], [1])
        self.assertEqual(a["errors"][0]["type"], "http_status")
        self.assertEqual(a["errors"][0]["status"], 500)
        self.assertEqual((a["completed"], a["cancelled"]), ([0], [2]))

    def test_ndjson_fail_fast_prints_the_cancelled(self):
        urls = self.fail_fast_urls()
        t0 = time.time()
        rc, out, err = self.fanout(*urls)
        self.assertLess(time.time() - t0, 4, "fail fast did not cancel")
        self.assertEqual(rc, 1, err)
        lines = ndjson(out)
        self.assertEqual([r["index"] for r in lines], [0, 1, 2])
        self.assertEqual(lines[0]["url"], urls[0])
        self.assertTrue(lines[0].get("status") == 200 or lines[0].get("completed") is True)
        self.assertEqual((lines[1]["type"], lines[1]["status"]), ("http_status", 500))
        self.assertEqual(lines[2], {"index": 2, "url": urls[2], "error": CANCELLED})

    def test_body(self):
        urls = [self.url("/json"), self.url("/binary"), self.url("/bytes/5"),
                self.url("/status/204")]
        rc, out, err = self.fanout("-o", "body", *urls)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.split(b"\n"), [
            b'{"name":"Ada","n":[1,2,3]}',
            base64.b64encode(bytes(range(256))),
            b"abcde", b"", b""])

    def test_body_in_input_order(self):
        urls = [self.url("/delay/300"), self.url("/bytes/1"), self.url("/delay/100")]
        rc, out, err = self.fanout("-o", "body", *urls)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b'{"delay":300}\na\n{"delay":100}\n')


class TestOptions(FanoutCase):
    RESET = True

    def test_settled(self):
        urls = [self.url("/json"), self.url("/status/404"), self.url("/bytes/2")]
        rc, out, err = self.fanout("--settled", *urls)
        self.assertEqual(rc, 1, err)
        lines = ndjson(out)
        self.assertEqual([r["index"] for r in lines], [0, 1, 2])
        self.assertEqual(lines[1]["error"]["type"], "http_status")
        self.assertEqual(lines[1]["error"]["status"], 404)
        self.assertEqual(lines[2]["body"], "ab")
        rc, out, err = self.fanout("--settled", "-o", "json", *urls)
        self.assertEqual(rc, 1, err)
        a = json.loads(out)
        self.assertEqual(list(a), ["ok", "elapsed_ms", "results"])
        self.assertFalse(a["ok"])
        self.assertEqual(len(a["results"]), 3)
        rc, out, err = self.fanout("--settled", "-o", "json", urls[0])
        self.assertEqual(rc, 0, err)
        self.assertTrue(json.loads(out)["ok"])

    def test_header_and_method(self):
        rc, out, err = self.fanout("-X", "POST", "-H", "X-Test: yes please",
                                   "-H", "X-Other:2", self.url("/echo"))
        self.assertEqual(rc, 0, err)
        echo = ndjson(out)[0]["body"]
        self.assertEqual(echo["method"], "POST")
        self.assertEqual(echo["headers"]["x-test"], "yes please")
        self.assertEqual(echo["headers"]["x-other"], "2")

    def test_header_overrides_the_file(self):
        path = self.tmpfile(json.dumps({"requests": [self.url("/echo")],
                                        "headers": {"x-test": "file"}}))
        rc, out, err = self.fanout("-H", "X-Test: cli", "-f", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(ndjson(out)[0]["body"]["headers"]["x-test"], "cli")

    def test_timeout(self):
        rc, out, err = self.fanout("-t", "100", self.url("/delay/3000"))
        self.assertEqual(rc, 1, err)
        line = ndjson(out)[0]
        self.assertEqual(line["type"], "timeout")

    def test_retries(self):
        key = "fanout-%d" % os.getpid()
        url = self.url("/flaky/%s?fail=1" % key)
        rc, out, err = self.fanout("--retries", "1", url)
        self.assertEqual(rc, 0, err)
        line = ndjson(out)[0]
        self.assertEqual(line["attempts"], 2)
        self.assertEqual(line["body"]["attempt"], 2)
        url = self.url("/flaky/%s-none?fail=1" % key)
        rc, out, err = self.fanout(url)
        self.assertEqual(rc, 1, err)
        self.assertEqual(ndjson(out)[0]["attempts"], 1)

    def test_concurrency(self):
        key = "fanout-c-%d" % os.getpid()
        urls = [self.url("/flaky/%s?delay=100&i=%d" % (key, i)) for i in range(6)]
        rc, out, err = self.fanout("-c", "2", *urls)
        self.assertEqual(rc, 0, err)
        self.assertEqual(harness.Upstream._get(self.up, "/count/" + key)["max_in_flight"], 2)

    def test_environment_and_d(self):
        url = self.url("/bytes/1")
        rc, out, err = run_fanout(["-o", "body", url], env_extra={"FANOUTD_URL": self.daemon()})
        self.assertEqual((rc, out), (0, b"a\n"), err)
        # -d wins over $FANOUTD_URL
        rc, out, err = run_fanout(["-d", self.daemon(), "-o", "body", url],
                                  env_extra={"FANOUTD_URL": "http://127.0.0.1:1"})
        self.assertEqual((rc, out), (0, b"a\n"), err)
        rc, out, err = self.fanout("-o", "body", url, daemon=self.daemon() + "/")
        self.assertEqual((rc, out), (0, b"a\n"), err)


class TestExitStatus(FanoutCase):
    def test_usage(self):
        for args in (["--bogus"], ["-o", "xml", self.url("/json")], ["-c", "0", "x"],
                     ["-c", "two", "x"], ["-t", "-5", "x"], ["--retries", "x", "y"],
                     ["-H", "no colon", "x"], ["-d", "ftp://x", "x"],
                     ["-f", "/nonexistent/urls.txt"],
                     ["-f", "/dev/null", self.url("/json")]):
            rc, out, err = self.fanout(*args)
            self.assertEqual(rc, 2, (args, err))
            self.assertEqual(out, b"")
            self.assertTrue(err.startswith(b"fanout: ") or b"usage" in err, err)

    def test_help(self):
        rc, out, _ = self.fanout("-h")
        self.assertEqual(rc, 0)
        self.assertIn(b"usage: fanout", out)

    def test_bad_input(self):
        rc, _, err = self.fanout("-f", self.tmpfile('["http://a/1",'))
        self.assertEqual(rc, 2)
        self.assertIn(b"line 1", err)
        rc, _, err = self.fanout(stdin=b"http://a/\xff\n")
        self.assertEqual(rc, 2)
        self.assertIn(b"line 1: not UTF-8", err)

    def test_daemon_400_prints_its_message(self):
        rc, out, err = self.fanout(self.url("/json"), "ftp://example.com/x")
        self.assertEqual(rc, 2)
        self.assertEqual(out, b"")
        self.assertIn(b'fanoutd answered 400: requests[1]: unsupported scheme "ftp"', err)
        rc, out, err = self.fanout("-X", "BREW", self.url("/json"))
        self.assertEqual(rc, 2)
        self.assertIn(b"BREW", err)

    def test_daemon_413(self):
        fd = self.fanoutd(config="[fanoutd]\nmax_request_body = 1K\n")
        urls = [self.url("/json?pad=%d" % i) for i in range(100)]
        rc, out, err = run_fanout(urls, daemon="http://127.0.0.1:%d" % fd.port)
        self.assertEqual(rc, 2, err)
        self.assertIn(b"413", err)

    def test_nothing_listening(self):
        rc, out, err = self.fanout(self.url("/json"),
                                   daemon="http://127.0.0.1:%d" % harness.free_port())
        self.assertEqual(rc, 3)
        self.assertIn(b"cannot reach fanoutd", err)
        rc, out, err = self.fanout(self.url("/json"), daemon="unix:/nonexistent/fanoutd.sock")
        self.assertEqual(rc, 3)

    def test_failed_batch(self):
        rc, out, err = self.fanout(self.url("/status/503"))
        self.assertEqual(rc, 1, err)


class TestAuth(FanoutCase):
    FANOUTD = False

    def test_token(self):
        token = self.tmpfile("s3cret-token\n")
        fd = self.fanoutd(config="[fanoutd]\nauth_token_file = %s\n" % token)
        daemon = "http://127.0.0.1:%d" % fd.port
        rc, out, err = run_fanout([self.url("/bytes/2")], daemon=daemon)
        self.assertEqual(rc, 3)
        self.assertIn(b"401", err)
        self.assertEqual(out, b"")
        rc, out, err = run_fanout(["--token-file", token, "-o", "body", self.url("/bytes/2")],
                                  daemon=daemon)
        self.assertEqual((rc, out), (0, b"ab\n"), err)
        wrong = self.tmpfile("other-token")
        rc, out, err = run_fanout(["--token-file", wrong, self.url("/bytes/2")], daemon=daemon)
        self.assertEqual(rc, 3)
        rc, out, err = run_fanout(["--token-file", self.tmpfile(" \n"), self.url("/json")],
                                  daemon=daemon)
        self.assertEqual(rc, 2)
        self.assertIn(b"empty", err)


class TestUnixSocket(FanoutCase):
    FANOUTD = False

    def test_unix_socket(self):
        d = tempfile.mkdtemp(prefix="fanout-sock-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "fanoutd.sock")
        self.fanoutd(listen="unix:" + path)
        rc, out, err = run_fanout(["-o", "body", self.url("/bytes/3"), self.url("/json")],
                                  daemon="unix:" + path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b'abc\n{"name":"Ada","n":[1,2,3]}\n')
        rc, out, err = run_fanout([self.url("/bytes/1")], env_extra={"FANOUTD_URL": "unix:" + path})
        self.assertEqual(rc, 0, err)


class TestProgress(FanoutCase):
    def staggered(self, n=10, step=120):
        return [self.url("/delay/%d" % (step * (i + 1))) for i in range(n)]

    def test_bar_on_a_terminal(self):
        t = Terminal(self.staggered(), self.daemon())
        self.assertEqual(t.rc, 0, t.tty)
        self.assertEqual(len(ndjson(t.stdout)), 10)
        frames = t.frames()
        self.assertGreaterEqual(len(frames), 5, t.tty)
        counts = []
        for f in frames:
            m = re.search(r"(\d+)/10  ", f)
            self.assertIsNotNone(m, f)
            self.assertIn("req/s", f)
            self.assertIn("ETA ", f)
            counts.append(int(m.group(1)))
        self.assertEqual(counts, sorted(counts), "counts go down")
        self.assertEqual(counts[0], 0)
        if self.streams():
            self.assertTrue(any(0 < c < 10 for c in counts), counts)
        # at most 10 a second: 10 requests of up to 1.2 s
        self.assertLessEqual(len(frames), 1.2 * 10 + 5)
        self.assertTrue(t.tty.endswith(b"\r\x1b[K"), t.tty[-40:])
        self.assertTrue(all(len(f) < 80 for f in frames))

    def test_no_bar_without_a_terminal(self):
        rc, out, err = self.fanout(*self.staggered(3, 50))
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, b"")
        self.assertNotIn(b"\x1b", out)
        self.assertNotIn(b"\r", out)

    def test_no_progress_on_a_terminal(self):
        t = Terminal(["--no-progress"] + self.staggered(3, 50), self.daemon())
        self.assertEqual(t.rc, 0)
        self.assertEqual(t.tty, b"")

    def test_progress_forced(self):
        rc, out, err = self.fanout("--progress", *self.staggered(3, 150))
        self.assertEqual(rc, 0, err)
        self.assertIn(b"/3  ", err)
        self.assertTrue(err.startswith(b"\r"))
        self.assertTrue(err.endswith(b"\r\x1b[K"))

    def test_error_message_after_the_bar(self):
        t = Terminal([self.url("/json"), "ftp://x/"], self.daemon())
        self.assertEqual(t.rc, 2)
        self.assertIn(b"\r\x1b[Kfanout: fanoutd answered 400", t.tty)


class TestStreamed(harness.TestCase):
    """The streamed answer itself, from the fake daemon."""
    UPSTREAMS = 0
    FANOUTD = False

    def fake(self, script):
        f = FakeDaemon(script)
        self.addCleanup(f.stop)
        return f

    def test_lines_as_soon_as_the_order_allows(self):
        urls = ["http://u/%d" % i for i in range(3)]
        go = threading.Event()
        f = self.fake([ok_line(1, urls[1], "b"), 0.05, ok_line(0, urls[0], "a"), go,
                       ok_line(2, urls[2], "c"), done_line(True, [0, 1, 2], [], [])])
        p = subprocess.Popen([FANOUT, "-d", f.url, "-o", "body"] + urls,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            first = p.stdout.readline() + p.stdout.readline()
            self.assertEqual(first, b"a\nb\n")
            go.set()
            rest, err = p.communicate(timeout=10)
        finally:
            go.set()
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(rest, b"c\n")
        self.assertEqual(p.returncode, 0, err)
        headers, batch = f.got[0]
        self.assertEqual(headers.get("Accept"), "application/x-ndjson")
        self.assertEqual(batch, {"requests": urls})

    def test_fail_fast_stream(self):
        urls = ["http://u/%d" % i for i in range(4)]
        script = [ok_line(0, urls[0]), "", err_line(2, urls[2]),
                  done_line(False, [0], [2], [1, 3], error="batch_failed",
                            message="1 of 4 requests failed, 2 cancelled")]
        f = self.fake(script)
        rc, out, err = run_fanout(urls, daemon=f.url)
        self.assertEqual(rc, 1, err)
        lines = ndjson(out)
        self.assertEqual([r["index"] for r in lines], [0, 1, 2, 3])
        self.assertEqual(lines[1], {"index": 1, "url": urls[1], "error": CANCELLED})
        self.assertEqual(lines[2]["type"], "http_status")
        self.assertEqual(lines[3], {"index": 3, "url": urls[3], "error": CANCELLED})
        rc, out, err = run_fanout(["-o", "json"] + urls, daemon=f.url)
        self.assertEqual(rc, 1, err)
        a = json.loads(out)
        self.assertEqual(a["message"], "1 of 4 requests failed, 2 cancelled")
        self.assertEqual(a["errors"], [json.loads(script[2])])
        self.assertEqual((a["completed"], a["cancelled"]), ([0], [1, 3]))

    def test_progress_lines_and_bar_counts(self):
        urls = ["http://u/%d" % i for i in range(10)]
        script = []
        for i in range(10):
            script += [0.12, json.dumps({"progress": {"total": 10, "done": i, "failed": 0,
                                                      "in_flight": 10 - i, "queued": 0,
                                                      "elapsed_ms": 120.0 * i}}),
                       ok_line(9 - i, urls[9 - i])]
        script.append(done_line(True, list(range(10)), [], []))
        f = self.fake(script)
        t = Terminal(urls, f.url)
        self.assertEqual(t.rc, 0, t.tty)
        self.assertEqual([r["index"] for r in ndjson(t.stdout)], list(range(10)))
        counts = [int(re.search(r"(\d+)/10", fr).group(1)) for fr in t.frames()]
        self.assertIn(3, counts)
        self.assertTrue(any(0 < c < 10 for c in counts))
        self.assertTrue(t.tty.endswith(b"\r\x1b[K"))
        # the bar asks for progress lines, every 100 ms
        self.assertEqual(f.got[0][1].get("progress_ms"), 100)
        # and without the bar it does not
        rc, out, err = run_fanout(urls[:0] + ["--no-progress"] + urls, daemon=f.url)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("progress_ms", f.got[1][1])

    def test_failed_progress_count(self):
        urls = ["http://u/0", "http://u/1"]
        f = self.fake([err_line(0, urls[0]), 0.3, ok_line(1, urls[1]),
                       done_line(False, [1], [0], [], error="batch_failed", message="m")])
        t = Terminal(urls, f.url)
        self.assertEqual(t.rc, 1)
        self.assertTrue(any("1 failed" in fr for fr in t.frames()), t.frames())

    def test_stream_without_its_last_line(self):
        urls = ["http://u/0", "http://u/1"]
        f = self.fake([ok_line(0, urls[0])])
        rc, out, err = run_fanout(urls, daemon=f.url)
        self.assertEqual(rc, 3)
        self.assertIn(b"ended before its last line", err)

    def test_bad_line(self):
        f = self.fake(["this is not json"])
        rc, out, err = run_fanout(["http://u/0"], daemon=f.url)
        self.assertEqual(rc, 3)
        self.assertIn(b"not a JSON object", err)
        f = self.fake([ok_line(5, "http://u/5"), done_line(True, [], [], [])])
        rc, out, err = run_fanout(["http://u/0"], daemon=f.url)
        self.assertEqual(rc, 3)
        self.assertIn(b"bad or repeated index", err)


if __name__ == "__main__":
    harness.main()
