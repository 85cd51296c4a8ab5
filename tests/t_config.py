"""The config file at work: -t, per-upstream sections, rate limits,
SIGHUP reload (good and bad)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def check(config):
    """fanoutd -t on this config: (exit code, log)."""
    fd = harness.Fanoutd(config=config, listen=None, args=["-t"], wait=False)
    rc = fd.wait_exit()
    return rc, fd.read_log()


class CheckConfig(unittest.TestCase):
    def test_good_file(self):
        rc, log = check("[fanoutd]\nupstream_concurrency = 3\n\n"
                        '[upstream "http://127.0.0.1:8080"]\nconcurrency = 2\nrate = 5/s\n')
        self.assertEqual(rc, 0)
        self.assertRegex(log, r"configuration /\S+/fanoutd.conf is ok")

    def test_errors_name_file_and_line(self):
        cases = [
            ("[fanoutd]\nfoo = 1\n", ':2: unknown key "foo" in [fanoutd]'),
            ("[fanoutd]\n\n[nonsense]\n", ":3: unknown section"),
            ("[fanoutd]\nrequest_timeout = 5x\n", ':2: request_timeout: bad duration "5x"'),
            ('[upstream "ftp://x"]\n', ":1: "),
            ('[fanoutd]\n[upstream "http://a"]\nrate = fast\n', ':3: rate: bad rate "fast"'),
        ]
        for config, fragment in cases:
            rc, log = check(config)
            self.assertEqual(rc, 1, config)
            self.assertIn("fanoutd.conf" + fragment, log)


class CheckVerbose(unittest.TestCase):
    """-t -v prints the effective configuration on stdout after "is ok"."""

    CONFIG = ("[fanoutd]\nupstream_concurrency = 3\nrequest_timeout = 1.5s\n"
              "max_request_body = 1024K\ndeny_networks =\n\n"
              '[upstream "HTTP://127.0.0.1:8080/"]\nconcurrency = 2\nrate = 300/m\n')

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fanoutd-dump-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_t(self, config, *args):
        """fanoutd -t ARGS on CONFIG: (exit code, stdout, stderr)."""
        path = os.path.join(self.dir, "fanoutd.conf")
        with open(path, "w") as f:
            f.write(config)
        p = subprocess.run(harness.WRAPPER + [harness.FANOUTD, "-t", "-c", path] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_dump_after_ok(self):
        rc, out, err = self.run_t(self.CONFIG, "-v", "-l", "127.0.0.1:9999")
        self.assertEqual(rc, 0, err)
        self.assertIn("fanoutd.conf is ok\n", err)
        self.assertTrue(out.startswith("; fanoutd effective configuration\n[fanoutd]\n"
                                       "listen = 127.0.0.1:9999\n"), out)
        lines = out.splitlines()
        for line in ("max_batch_size = 10000", "max_request_body = 1M",
                     "request_timeout = 1500ms", "connect_timeout = 5s",
                     "upstream_concurrency = 3", "tls_verify = yes", "ca_file =",
                     "allow_hosts = *", "deny_networks =", "socket_mode = 0660"):
            self.assertIn(line, lines)
        # an upstream section lists only what it sets, in normal form
        self.assertTrue(out.endswith('\n\n[upstream "http://127.0.0.1:8080"]\n'
                                     "concurrency = 2\nrate = 5/s\n"), out)

    def test_dump_is_a_config_that_dumps_the_same(self):
        rc, out, err = self.run_t(self.CONFIG, "-v")
        self.assertEqual(rc, 0, err)
        rc, again, err = self.run_t(out, "-v")
        self.assertEqual(rc, 0, err)
        self.assertEqual(again, out)

    def test_no_dump_without_v_or_on_error(self):
        rc, out, err = self.run_t(self.CONFIG)
        self.assertEqual((rc, out), (0, ""))
        rc, out, err = self.run_t("[fanoutd]\nfoo = 1\n", "-v")
        self.assertEqual((rc, out), (1, ""))


def openssl_ca(path):
    """A self-signed CA certificate (PEM) at path."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", path + ".key",
                    "-out", path, "-days", "2", "-subj", "/CN=fanoutd test CA"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class CheckFiles(unittest.TestCase):
    """ca_file is loaded at -t, start-up and reload, not first at the
    first https request; max_queued below max_batch_size is warned about."""

    def setUp(self):
        self.dir = os.path.realpath(tempfile.mkdtemp(prefix="fanoutd-ca-"))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def assert_rejected(self, config, message):
        """-t and a plain start both exit 1 with exactly this message."""
        for args in (["-t"], []):
            fd = harness.Fanoutd(config=config, listen=None if args else "127.0.0.1:0",
                                 args=args, wait=False)
            rc, log = fd.wait_exit(), fd.read_log()
            self.assertEqual(rc, 1, log)
            self.assertIn("%s: %s\n" % (fd.config_path, message), log)
            self.assertNotIn("is ok", log)
            self.assertNotIn(" ready", log)
            self.assertNotIn("(null)", log)
            shutil.rmtree(fd.dir, ignore_errors=True)

    def test_missing_ca_file(self):
        self.assert_rejected("[fanoutd]\nca_file = %s\n" % self.path("nope.pem"),
                             "ca_file: cannot open %s: No such file or directory"
                             % self.path("nope.pem"))

    def test_ca_file_relative_to_the_config_is_checked_there(self):
        fd = harness.Fanoutd(config="[fanoutd]\nca_file = nope.pem\n", listen=None,
                             args=["-t"], wait=False)
        self.assertEqual(fd.wait_exit(), 1)
        where = os.path.join(os.path.realpath(fd.dir), "nope.pem")
        self.assertIn("fanoutd.conf: ca_file: cannot open %s: No such file or directory\n"
                      % where, fd.read_log())
        shutil.rmtree(fd.dir, ignore_errors=True)

    def test_ca_file_without_certificates(self):
        with open(self.path("junk.pem"), "w") as f:
            f.write("not a certificate\n")
        self.assert_rejected("[fanoutd]\nca_file = %s\n" % self.path("junk.pem"),
                             "ca_file: cannot load CA certificates from %s: "
                             "no certificate or crl found" % self.path("junk.pem"))

    def test_ca_file_that_is_a_directory(self):
        self.assert_rejected("[fanoutd]\nca_file = %s\n" % self.dir,
                             "ca_file: %s is not a regular file" % self.dir)

    def test_upstream_ca_file_names_its_section(self):
        self.assert_rejected('[upstream "https://127.0.0.1:8443"]\nca_file = %s\n'
                             % self.path("nope.pem"),
                             '[upstream "https://127.0.0.1:8443"] ca_file: cannot open %s: '
                             "No such file or directory" % self.path("nope.pem"))

    def test_good_ca_file_is_ok(self):
        openssl_ca(self.path("ca.pem"))
        rc, log = check('[fanoutd]\nca_file = %s\n[upstream "https://a.example"]\n'
                        "ca_file = %s\n" % (self.path("ca.pem"), self.path("ca.pem")))
        self.assertEqual(rc, 0, log)
        self.assertIn("is ok", log)

    def test_reload_rejects_a_missing_ca_file(self):
        up = harness.Upstream()
        fd = harness.Fanoutd(config="[fanoutd]\nupstream_concurrency = 4\n")
        try:
            fd.hup("[fanoutd]\nupstream_concurrency = 1\nca_file = %s\n" % self.path("nope.pem"))
            fd.wait_log("reload failed; keeping the running config", timeout=5)
            self.assertIn("%s: ca_file: cannot open %s: No such file or directory\n"
                          % (fd.config_path, self.path("nope.pem")), fd.read_log())
            status, ans = fd.batch([up.url("/delay/100")] * 8)
            self.assertEqual(status, 200)
            self.assertEqual(up.stats()["max_in_flight"], 4)
        finally:
            fd.stop()
            up.stop()

    WARN = ("max_queued (5) is below max_batch_size (10): every batch of more than "
            "5 requests will be refused with 503 overloaded")

    def test_max_queued_below_max_batch_size_warns(self):
        config = "[fanoutd]\nmax_queued = 5\nmax_batch_size = 10\n"
        fd = harness.Fanoutd(config=config, listen=None, args=["-t"], wait=False)
        self.assertEqual(fd.wait_exit(), 0, fd.read_log())
        self.assertIn("fanoutd: warning: %s: %s\n" % (fd.config_path, self.WARN), fd.read_log())
        self.assertIn("is ok", fd.read_log())
        shutil.rmtree(fd.dir, ignore_errors=True)
        fd = harness.Fanoutd(config=config)
        try:
            self.assertIn("fanoutd: warning: %s: %s\n" % (fd.config_path, self.WARN),
                          fd.read_log())
        finally:
            fd.stop()

    def test_max_queued_at_max_batch_size_is_quiet(self):
        for config in ("[fanoutd]\nmax_queued = 10\nmax_batch_size = 10\n", "[fanoutd]\n"):
            rc, log = check(config)
            self.assertEqual(rc, 0, log)
            self.assertNotIn("max_queued", log)


class PerUpstream(harness.TestCase):
    FANOUTD = False
    PER_TEST = True

    def test_section_concurrency(self):
        fd = self.fanoutd(config='[fanoutd]\nupstream_concurrency = 10\n\n'
                                 '[upstream "http://127.0.0.1:%d"]\nconcurrency = 3\n'
                                 % self.up.port)
        status, ans = fd.batch([self.up.url("/delay/100")] * 12)
        self.assertEqual(status, 200)
        self.assertEqual(self.up.stats()["max_in_flight"], 3)

    def test_rate_20_per_s_burst_1(self):
        fd = self.fanoutd(config='[upstream "http://127.0.0.1:%d"]\nrate = 20/s\nburst = 1\n'
                                 % self.up.port)
        t0 = time.time()
        status, ans = fd.batch([self.up.url("/json?i=%d" % i) for i in range(40)])
        took = time.time() - t0
        self.assertEqual(status, 200, ans)
        # 40 requests at 20/s with no burst: about 1.95 s
        self.assertGreater(took, 1.8)
        self.assertLess(took, 3.0)
        starts = sorted(r["timing"]["queued_ms"] for r in ans["results"])
        gaps = sorted(b - a for a, b in zip(starts, starts[1:]))
        # evenly spaced, 50 ms apart; a timer that fires late on a busy
        # machine hands out the tokens that came due together, so allow
        # a few short gaps, but not bursts
        self.assertAlmostEqual(gaps[len(gaps) // 2], 50, delta=10)
        self.assertAlmostEqual(sum(gaps) / len(gaps), 50, delta=5)
        self.assertLessEqual(sum(1 for g in gaps if g < 25), 4)

    def test_rate_wait_counts_against_the_timeout(self):
        fd = self.fanoutd(config='[fanoutd]\nrequest_timeout = 300ms\n\n'
                                 '[upstream "http://127.0.0.1:%d"]\nrate = 2/s\nburst = 1\n'
                                 % self.up.port)
        status, ans = fd.batch({"mode": "settled",
                                "requests": [self.up.url("/json")] * 3})
        r = ans["results"]
        self.assertEqual(r[0]["status"], 200)
        self.assertEqual((r[1]["error"]["type"], r[1]["error"]["phase"]),
                         ("timeout", "queued"))
        self.assertEqual((r[0]["protocol"], "protocol" in r[1]), ("http/1.1", False))
        self.assertEqual(self.up.stats()["requests"], 1)


class Reload(harness.TestCase):
    FANOUTD = False
    PER_TEST = True

    def test_sighup_5_to_2_running_batch_completes(self):
        fd = self.fanoutd(config="[fanoutd]\nupstream_concurrency = 5\n")
        result = []
        t = threading.Thread(target=lambda: result.append(
            fd.batch([self.up.url("/delay/200")] * 20)))
        t.start()
        time.sleep(0.1)
        self.assertEqual(self.up.stats()["in_flight"], 5)
        fd.hup("[fanoutd]\nupstream_concurrency = 2\n")
        fd.wait_log("reloaded", timeout=5)
        t.join(30)
        self.assertEqual(result[0][0], 200)          # nothing dropped
        self.up.reset()
        status, ans = fd.batch([self.up.url("/delay/100")] * 8)
        self.assertEqual(status, 200)
        self.assertEqual(self.up.stats()["max_in_flight"], 2)

    def test_listeners_follow_the_file(self):
        p1, p2 = harness.free_port(), harness.free_port()
        fd = self.fanoutd(config="[fanoutd]\nlisten = 127.0.0.1:%d\n" % p1, listen=None)
        self.assertEqual(fd.port, p1)
        c = harness.http.client.HTTPConnection("127.0.0.1", p1, timeout=5)
        c.request("GET", "/healthz")
        self.assertEqual(c.getresponse().read(), b'{"status":"ok"}')
        fd.hup("[fanoutd]\nlisten = 127.0.0.1:%d\nlisten = 127.0.0.1:%d\n" % (p1, p2))
        fd.wait_log("listening on 127.0.0.1:%d" % p2, timeout=5)
        fd.port = p2
        status, ans = fd.batch([self.up.url("/json")])
        self.assertEqual(status, 200)
        # the unchanged listener kept its socket: the old connection still works
        c.request("GET", "/healthz")
        self.assertEqual(c.getresponse().read(), b'{"status":"ok"}')
        # p1 dropped (and p2 named twice): p1's open connection still works
        fd.hup("[fanoutd]\nlisten = 127.0.0.1:%d\nlisten = 127.0.0.1:%d\n" % (p2, p2))
        fd.wait_log("no longer listening on 127.0.0.1:%d" % p1, timeout=5)
        c.request("POST", "/v1/batch", json.dumps([self.up.url("/json")]))
        r = c.getresponse()
        self.assertEqual((r.status, json.loads(r.read())["ok"]), (200, True))
        c.close()
        with self.assertRaises(ConnectionRefusedError):
            harness.socket.create_connection(("127.0.0.1", p1), timeout=2)
        status, ans = fd.batch([self.up.url("/json")])
        self.assertEqual(status, 200)

    def test_bad_file_keeps_the_old_config(self):
        fd = self.fanoutd(config="[fanoutd]\nupstream_concurrency = 4\n")
        fd.hup("[fanoutd]\nupstream_concurrency = lots\n")
        fd.wait_log("reload failed; keeping the running config", timeout=5)
        self.assertIn("upstream_concurrency", fd.read_log())
        status, ans = fd.batch([self.up.url("/delay/100")] * 12)
        self.assertEqual(status, 200)
        self.assertEqual(self.up.stats()["max_in_flight"], 4)


if __name__ == "__main__":
    harness.main()
