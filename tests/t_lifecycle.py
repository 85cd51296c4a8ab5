"""Command line, config errors, bind errors, client disconnects, graceful
shutdown."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def run(*args, config=None, timeout=10):
    """Run fanoutd to completion: (exit code, stderr)."""
    argv = [harness.FANOUTD] + list(args)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class CommandLine(unittest.TestCase):
    def test_version_and_help(self):
        rc, out, _ = run("-V")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^fanoutd \d+\.\d+\.\d+\n$")
        rc, out, _ = run("--help")
        self.assertEqual(rc, 0)
        self.assertIn("-c, --config FILE", out)

    def test_bad_option_exits_1(self):
        rc, _, err = run("--bogus")
        self.assertEqual(rc, 1)
        self.assertIn("usage:", err)

    def test_bad_config_exits_1_with_file_line(self):
        fd = harness.Fanoutd(config="[fanoutd]\n\nrequest_timeout = 5x\n", wait=False)
        self.assertEqual(fd.wait_exit(), 1)
        self.assertIn("%s:3: " % fd.config_path, fd.read_log())
        self.assertIn("request_timeout", fd.read_log())

    def test_check_config(self):
        fd = harness.Fanoutd(config="[fanoutd]\nupstream_concurrency = 3\n", wait=False,
                             listen=None, args=["-t"])
        self.assertEqual(fd.wait_exit(), 0)
        self.assertIn("is ok", fd.read_log())

    def test_bind_failure_exits_2(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        try:
            rc, _, err = run("-l", "127.0.0.1:%d" % port)
        finally:
            s.close()
        self.assertEqual(rc, 2)
        self.assertIn("cannot listen on 127.0.0.1:%d: Address already in use" % port, err)

    def test_listen_unix_socket(self):
        path = "/tmp/fanoutd-test-%d.sock" % os.getpid()
        up = harness.Upstream()
        fd = harness.Fanoutd(listen="unix:" + path)
        try:
            rc, out = harness.curl("--unix-socket", path, "-d",
                                   json.dumps([up.url("/json")]), "http://x/v1/batch")
            self.assertEqual(rc, 0)
            self.assertIs(json.loads(out)["ok"], True)
        finally:
            fd.stop()
            up.stop()
        self.assertFalse(os.path.exists(path), "socket file left behind")


class Lifecycle(harness.TestCase):
    FANOUTD = False
    PER_TEST = True

    def test_client_disconnect_aborts_upstream_requests(self):
        fd = self.fanoutd()
        s = socket.create_connection(("127.0.0.1", fd.port))
        body = json.dumps([self.up.url("/delay/3000")] * 4 + [self.up.url("/hang")])
        s.sendall(("POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                   % (len(body), body)).encode())
        harness.wait_until(lambda: self.up.stats()["in_flight"] >= 5, 3)
        self.assertEqual(self.up.stats()["in_flight"], 5)
        s.close()
        harness.wait_until(lambda: self.up.stats()["in_flight"] == 0, 2)
        st = self.up.stats()
        self.assertEqual((st["in_flight"], st["aborted"]), (0, 5))
        # and fanoutd still serves
        status, ans = fd.batch([self.up.url("/json")])
        self.assertEqual(status, 200)

    def test_sigterm_lets_running_batch_finish(self):
        fd = harness.Fanoutd()
        result = []
        t = threading.Thread(target=lambda: result.append(
            fd.batch([self.up.url("/delay/700")] * 3)))
        t.start()
        time.sleep(0.3)
        fd.send_signal(signal.SIGTERM)
        t.join(10)
        status, ans = result[0]
        self.assertEqual(status, 200)
        self.assertIs(ans["ok"], True)
        self.assertEqual(fd.stop(), 0)

    def test_shutdown_timeout_cancels_with_error_group(self):
        fd = harness.Fanoutd(config="[fanoutd]\nshutdown_timeout = 300ms\n")
        result = []
        t = threading.Thread(target=lambda: result.append(
            fd.batch([self.up.url("/json"), self.up.url("/hang")])))
        t.start()
        time.sleep(0.3)
        t0 = time.time()
        fd.send_signal(signal.SIGTERM)
        t.join(10)
        self.assertLess(time.time() - t0, 2)
        status, ans = result[0]
        self.assertEqual(status, 503)
        self.assertEqual((ans["error"], ans["completed"], ans["cancelled"]),
                         ("draining", [0], [1]))
        self.assertEqual(fd.stop(), 0)

    def test_draining_refuses_new_batches(self):
        fd = harness.Fanoutd()
        c = fd.connection()
        c.request("GET", "/healthz")
        c.getresponse().read()
        t = threading.Thread(target=lambda: fd.batch([self.up.url("/delay/800")]))
        t.start()
        time.sleep(0.3)
        fd.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        # an open keep-alive connection still gets answers: draining
        c.request("GET", "/healthz")
        r = c.getresponse()
        self.assertEqual((r.status, json.loads(r.read())), (503, {"status": "draining"}))
        c.request("POST", "/v1/batch", json.dumps([self.up.url("/json")]))
        r = c.getresponse()
        self.assertEqual(r.status, 503)
        self.assertEqual(json.loads(r.read())["error"], "draining")
        c.close()
        t.join(10)
        self.assertEqual(fd.stop(), 0)

    def test_second_signal_forces_exit_3(self):
        """A second SIGTERM cuts the running batches off: the log says how
        many, never "all batches answered", and the exit status is 3."""
        fd = harness.Fanoutd(config="[fanoutd]\nupstream_concurrency = 2\n")
        result = []

        def client():
            try:
                result.append(fd.batch([self.up.url("/hang")] * 5, timeout=10))
            except (OSError, harness.http.client.HTTPException) as e:
                result.append(e)

        t = threading.Thread(target=client)
        t.start()
        harness.wait_until(lambda: self.up.stats()["in_flight"] >= 2, 5)
        self.assertEqual(self.up.stats()["in_flight"], 2)
        fd.send_signal(signal.SIGTERM)
        harness.wait_until(lambda: "shutting down" in fd.read_log(), 5)
        fd.send_signal(signal.SIGTERM)
        self.assertEqual(fd.wait_exit(), 3, fd.read_log())
        t.join(10)
        log = fd.read_log()
        self.assertIn("fanoutd: warning: second signal: exiting now; cutting off 1 running "
                      "batch (2 upstream requests in flight, 3 queued)\n", log)
        self.assertNotIn("all batches answered", log)
        self.assertNotIn("bye", log)
        for mark in harness.SANITIZER_MARKS:
            self.assertNotIn(mark, log)
        # the client got no answer: its connection was closed
        self.assertIsInstance(result[0], Exception)
        harness.shutil.rmtree(fd.dir, ignore_errors=True)

    def test_second_signal_counts_every_batch(self):
        fd = harness.Fanoutd()
        threads = [threading.Thread(target=self._hang_batch, args=(fd,)) for _ in range(3)]
        for t in threads:
            t.start()
        harness.wait_until(lambda: self.up.stats()["in_flight"] >= 3, 5)
        fd.send_signal(signal.SIGTERM)
        harness.wait_until(lambda: "shutting down" in fd.read_log(), 5)
        fd.send_signal(signal.SIGINT)
        self.assertEqual(fd.wait_exit(), 3, fd.read_log())
        for t in threads:
            t.join(10)
        self.assertIn("cutting off 3 running batches (3 upstream requests in flight, 0 queued)",
                      fd.read_log())
        harness.shutil.rmtree(fd.dir, ignore_errors=True)

    def _hang_batch(self, fd):
        try:
            fd.batch([self.up.url("/hang")], timeout=10)
        except (OSError, harness.http.client.HTTPException):
            pass


if __name__ == "__main__":
    harness.main()
