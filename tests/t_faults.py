"""Faults: stale keep-alive connections, broken upstream answers, slow
clients, running out of file descriptors, signal storms under load."""

import os
import resource
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Upstreams(harness.TestCase):
    FANOUTD = False         # one per test, below
    RESET = True

    def setUp(self):
        super().setUp()
        self.fd = self.fanoutd(config="[fanoutd]\nupstream_concurrency = 1\n")

    def test_stale_keepalive_get_is_retried(self):
        for method in ("GET", "PUT", "DELETE", "HEAD"):
            self.fd.batch([self.up.url("/stale")])   # leaves a connection the upstream drops
            status, ans = self.fd.batch({"requests": [{"url": self.up.url("/json"),
                                                       "method": method}]})
            self.assertEqual(status, 200, (method, ans))
            r = ans["results"][0]
            self.assertEqual((r["status"], r["reused"], r["protocol"]),
                             (200, False, "http/1.1"))   # on a new connection

    def test_stale_keepalive_post_is_not_retried(self):
        self.fd.batch([self.up.url("/stale")])
        status, ans = self.fd.batch({"requests": [{"url": self.up.url("/echo"),
                                                   "method": "POST", "body": "x"}]})
        self.assertEqual(status, 502)
        e = ans["errors"][0]
        self.assertEqual((e["type"], e["message"]),
                         ("connect", "upstream closed the connection without answering"))

    def test_answer_ended_by_close_is_not_reused(self):
        status, ans = self.fd.batch([self.up.url("/eof")])
        self.assertEqual((status, ans["results"][0]["body"]), (200, "until the end"))
        # a POST right after must get a fresh connection, not the closed one
        status, ans = self.fd.batch({"requests": [{"url": self.up.url("/echo"),
                                                   "method": "POST", "body": "x"}]})
        self.assertEqual(status, 200, ans)
        self.assertIs(ans["results"][0]["reused"], False)

    def test_head_with_big_content_length(self):
        fd = self.fanoutd(config="[fanoutd]\nmax_response_body = 1K\n")
        status, ans = fd.batch({"requests": [{"url": self.up.url("/bytes/100000"),
                                               "method": "HEAD"}]})
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["results"][0]["headers"]["content-length"], "100000")

    def test_broken_answers_are_protocol_and_discarded(self):
        cases = {"/badlength": "upstream closed the connection before the end of the body",
                 "/manyheaders": "malformed answer: more than 1000 header lines",
                 "/bigheaders": "malformed answer: status line and headers over 65536 bytes",
                 "/garbage": "malformed answer: not an HTTP/1.x answer"}
        for path, message in cases.items():
            status, ans = self.fd.batch([self.up.url(path)])
            e = ans["errors"][0]
            self.assertEqual((e["type"], e["message"]), ("protocol", message), path)
        harness.wait_until(lambda: self.up.stats()["open_connections"] == 0, 2)
        self.assertEqual(self.up.stats()["open_connections"], 0)   # none kept


class Clients(harness.TestCase):
    FANOUTD = False
    PER_TEST = True

    def test_slowloris_is_cut_off(self):
        fd = self.fanoutd(config="[fanoutd]\nclient_timeout = 1s\n")
        slow = socket.create_connection(("127.0.0.1", fd.port))
        slow.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n")
        t0 = time.time()
        cut = None
        while time.time() - t0 < 5:
            try:
                slow.sendall(b"X-Slow: 1\r\n")    # a byte of header now and then
            except OSError:
                cut = time.time() - t0
                break
            # others are served normally meanwhile
            status, ans = fd.batch([self.up.url("/json")])
            self.assertEqual(status, 200)
            slow.settimeout(0.3)
            try:
                if slow.recv(100) == b"":
                    cut = time.time() - t0
                    break
            except socket.timeout:
                pass
            except OSError:
                cut = time.time() - t0
                break
        slow.close()
        self.assertIsNotNone(cut, "the slow client was never cut off")
        self.assertGreater(cut, 0.8)
        self.assertLess(cut, 3)

    def test_fd_exhaustion_no_busy_loop_and_recovery(self):
        limit = 48

        def small_ulimit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        fd = harness.Fanoutd(preexec=small_ulimit)
        socks = []
        try:
            for _ in range(limit + 20):          # more clients than fds
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", fd.port))
                except BlockingIOError:
                    pass
                socks.append(s)
            time.sleep(0.3)
            before = cpu_seconds(fd.proc.pid)
            time.sleep(1.0)
            spent = cpu_seconds(fd.proc.pid) - before
            self.assertLess(spent, 0.3, "fanoutd spins while out of descriptors")
            for s in socks:
                s.close()
            socks = []
            deadline = time.time() + 5
            status = None
            while time.time() < deadline:
                try:
                    status, ans = fd.batch([self.up.url("/json")], timeout=5)
                    if status == 200:
                        break
                except OSError:
                    time.sleep(0.2)
            self.assertEqual(status, 200)          # recovered once load dropped
        finally:
            for s in socks:
                s.close()
            fd.stop()

    def test_sighup_storm_and_sigterm_under_load(self):
        fd = harness.Fanoutd(config="[fanoutd]\nupstream_concurrency = 20\n"
                                    "shutdown_timeout = 5s\n")
        results = []
        lock = threading.Lock()

        def client(i):
            try:
                r = fd.batch([self.up.url("/delay/%d" % (100 + i * 7))] * 20, timeout=30)
            except Exception as e:  # noqa: BLE001 - recorded and asserted below
                r = ("exception", repr(e))
            with lock:
                results.append(r)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for _ in range(100):
            fd.proc.send_signal(signal.SIGHUP)
            time.sleep(0.005)
        time.sleep(0.2)
        fd.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(30)
        self.assertEqual(len(results), 50)
        for status, ans in results:
            self.assertIn(status, (200, 502, 503), ans)
            if status == 503:
                self.assertEqual(ans["error"], "draining")
        self.assertEqual(fd.stop(), 0)


if __name__ == "__main__":
    harness.main()
