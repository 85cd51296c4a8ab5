"""Operations: sd_notify states against a test-owned NOTIFY_SOCKET, socket
activation through systemd-socket-activate, the unix-socket listener
(socket_mode, stale and live socket files), and bearer-token auth."""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


def built_with_systemd():
    p = subprocess.run([harness.FANOUTD, "-v", "-V"], stdout=subprocess.PIPE, timeout=10)
    return b"(+systemd)" in p.stdout


WITH_SYSTEMD = built_with_systemd()


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def exact_result(r):
    """A success entry without the fields that vary from run to run."""
    r = dict(r)
    for k in ("elapsed_ms", "timing", "reused"):
        r.pop(k)
    r["headers"] = {k: v for k, v in r["headers"].items() if k != "date"}
    return r


def json_result(url):
    return {"index": 0, "url": url, "status": 200, "protocol": "http/1.1",
            "attempts": 1, "retry_wait_ms": 0.0,
            "headers": {"content-type": "application/json", "content-length": "26",
                        "connection": "keep-alive"},
            "body": {"name": "Ada", "n": [1, 2, 3]}, "encoding": "json"}


def assert_one_json_result(test, status, ans, url):
    test.assertEqual(status, 200, ans)
    test.assertEqual(sorted(ans), ["elapsed_ms", "ok", "results"])
    test.assertIs(ans["ok"], True)
    test.assertEqual([exact_result(r) for r in ans["results"]], [json_result(url)])


# --- sd_notify ---------------------------------------------------------------

@unittest.skipUnless(WITH_SYSTEMD, "fanoutd built without libsystemd")
class Notify(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fanoutd-notify-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(10)
        self.env = dict(os.environ, NOTIFY_SOCKET=self.path)

    def tearDown(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def recv(self):
        return self.sock.recv(4096).decode()

    def assert_silent(self):
        self.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            print("unexpected:", self.recv())
        self.sock.settimeout(10)

    def test_ready_reloading_stopping(self):
        fd = harness.Fanoutd(config="[fanoutd]\nupstream_concurrency = 3\n",
                             env=self.env, wait=False)
        try:
            self.assertEqual(self.recv(), "READY=1")
            # READY=1 comes after the listener is up
            self.assertRegex(fd.read_log(), r"listening on 127\.0\.0\.1:\d+\n")
            fd.port = fd.wait_listening()
            status, _, body = fd.request("GET", "/healthz")
            self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))
            self.assert_silent()

            fd.send_signal(signal.SIGHUP)
            lines = self.recv().split("\n")
            self.assertEqual(lines[0], "RELOADING=1")
            self.assertEqual(len(lines), 2)
            self.assertRegex(lines[1], r"^MONOTONIC_USEC=\d+$")
            self.assertEqual(self.recv(), "READY=1")
            fd.wait_log("reloaded %s" % fd.config_path)

            # a bad file: the reload fails, and systemd still hears READY=1
            with open(fd.config_path, "w") as f:
                f.write("[fanoutd]\nupstream_concurrency = many\n")
            fd.send_signal(signal.SIGHUP)
            self.assertEqual(self.recv().split("\n")[0], "RELOADING=1")
            self.assertEqual(self.recv(), "READY=1")
            fd.wait_log("reload failed; keeping the running config")
            self.assert_silent()

            fd.send_signal(signal.SIGTERM)
            self.assertEqual(self.recv(), "STOPPING=1")
        finally:
            fd.stop()
        self.assert_silent()

    def test_no_notify_socket_is_fine(self):
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        fd = harness.Fanoutd(env=env)
        try:
            status, _, body = fd.request("GET", "/healthz")
            self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))
            self.assertNotIn("sd_notify", fd.read_log())
        finally:
            fd.stop()


# --- socket activation -------------------------------------------------------

@unittest.skipUnless(WITH_SYSTEMD, "fanoutd built without libsystemd")
@unittest.skipUnless(SOCKET_ACTIVATE, "no systemd-socket-activate (Debian package systemd)")
class SocketActivation(unittest.TestCase):
    def test_batch_through_a_passed_socket(self):
        up = harness.Upstream()
        tmp = tempfile.mkdtemp(prefix="fanoutd-sa-")
        log_path = os.path.join(tmp, "log")
        port = harness.free_port()
        unused = harness.free_port()
        argv = [SOCKET_ACTIVATE, "-l", "127.0.0.1:%d" % port]
        # the activator passes only the variables it is told to
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if var in os.environ:
                argv += ["-E", var]
        # -l is ignored: the passed socket wins
        argv += [harness.FANOUTD, "-l", "127.0.0.1:%d" % unused]
        log = open(log_path, "w")
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        harness._running.append(proc)
        try:
            deadline = time.time() + 10
            while "Listening on 127.0.0.1:%d" % port not in read(log_path):
                self.assertLess(time.time(), deadline, read(log_path))
                self.assertIsNone(proc.poll(), read(log_path))
                time.sleep(0.02)
            # the first connection starts fanoutd, which takes it over
            c = harness.http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("POST", "/v1/batch", body=json.dumps([up.url("/json")]))
            r = c.getresponse()
            ans = json.loads(r.read())
            c.close()
            assert_one_json_result(self, r.status, ans, up.url("/json"))
            text = read(log_path)
            self.assertIn("fanoutd: info: socket activation: 1 socket from systemd; "
                          "`listen` not used\n", text)
            self.assertIn("fanoutd: info: listening on 127.0.0.1:%d (socket activation)\n"
                          % port, text)
            self.assertNotIn("listening on 127.0.0.1:%d" % unused, text)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", unused), timeout=5).close()
            # it is the same process (exec), so SIGTERM reaches fanoutd
            rc = harness._stop(proc, signal.SIGTERM, 15)
            log.close()
            text = read(log_path)
            for mark in harness.SANITIZER_MARKS:
                self.assertNotIn(mark, text)
            self.assertEqual(rc, 0, text)
            self.assertIn("fanoutd: info: bye\n", text)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
            up.stop()
            shutil.rmtree(tmp, ignore_errors=True)


# --- unix socket -------------------------------------------------------------

class UnixSocket(harness.TestCase):
    """The basic unix-socket batch is in t_lifecycle.py; these add the mode
    and the socket files found at start."""

    FANOUTD = False

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="fanoutd-unix-")
        self.path = os.path.join(self.dir, "fanoutd.sock")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        super().tearDown()

    def curl_batch(self):
        rc, out = harness.curl("--unix-socket", self.path, "-d",
                               json.dumps([self.up.url("/json")]), "http://x/v1/batch")
        self.assertEqual(rc, 0)
        ans = json.loads(out)
        assert_one_json_result(self, 200, ans, self.up.url("/json"))

    def start(self, mode):
        return harness.Fanoutd(config="[fanoutd]\nsocket_mode = %s\n" % mode,
                               listen="unix:" + self.path)

    def test_socket_mode(self):
        for mode in (0o600, 0o640, 0o666):
            with self.subTest(mode=oct(mode)):
                fd = self.start("0%o" % mode)
                try:
                    st = os.stat(self.path)
                    self.assertTrue(stat.S_ISSOCK(st.st_mode))
                    # exactly socket_mode, whatever the umask (022 here) says
                    self.assertEqual(stat.S_IMODE(st.st_mode), mode)
                    self.curl_batch()
                finally:
                    fd.stop()
                self.assertFalse(os.path.exists(self.path), "socket file left behind")

    def test_default_mode_is_0660(self):
        self.fanoutd(listen="unix:" + self.path)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o660)

    def test_stale_socket_file_is_replaced(self):
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(self.path)
        dead.close()          # the file stays, nobody listens: a crashed fanoutd
        fd = self.start("0600")
        try:
            self.assertIn("removing the stale socket file %s\n" % self.path, fd.read_log())
            self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
            self.curl_batch()
        finally:
            fd.stop()
        self.assertFalse(os.path.exists(self.path), "socket file left behind")

    def test_live_socket_is_not_stolen(self):
        live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        live.bind(self.path)
        live.listen()
        try:
            fd = harness.Fanoutd(listen="unix:" + self.path, wait=False)
            self.assertEqual(fd.wait_exit(), 2)
            self.assertIn("fanoutd: error: cannot listen on unix:%s: Address already in use\n"
                          % self.path, fd.read_log())
            # still the other server's socket
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(self.path)
            c.close()
        finally:
            live.close()

    def test_other_file_is_not_removed(self):
        with open(self.path, "w") as f:
            f.write("not a socket\n")
        fd = harness.Fanoutd(listen="unix:" + self.path, wait=False)
        self.assertEqual(fd.wait_exit(), 2)
        self.assertIn("fanoutd: error: cannot listen on unix:%s: Address already in use\n"
                      % self.path, fd.read_log())
        with open(self.path) as f:
            self.assertEqual(f.read(), "not a socket\n")


# --- auth ----------------------------------------------------------------------

TOKEN = "fo-Zq8xV3mT7pL2nR6wK9sD4hB1cJ5"
NEED = {"ok": False, "error": "unauthorized",
        "message": 'send "Authorization: Bearer <token>"'}
WRONG = {"ok": False, "error": "unauthorized", "message": "wrong bearer token"}


class Auth(harness.TestCase):
    CONFIG = staticmethod(lambda cls: "[fanoutd]\nauth_token_file = %s\n"
                                      "max_request_body = 1K\n" % cls.token_path)
    FANOUTD_ARGS = {"args": ["-v"]}   # the most logging there is, and still no token in it

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="fanoutd-auth-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, ignore_errors=True)
        cls.token_path = os.path.join(cls.dir, "token")
        with open(cls.token_path, "w") as f:
            f.write(TOKEN + "\n")
        super().setUpClass()

    def assert_401(self, method, path, headers, want, challenge, body=None):
        status, hdrs, data = self.fd.request(method, path, body, headers)
        self.assertEqual(status, 401, data)
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertEqual(hdrs["www-authenticate"], challenge)
        self.assertEqual(json.loads(data), want)

    def assert_need(self, method, path, headers=None, body=None):
        self.assert_401(method, path, headers or {}, NEED, "Bearer", body)

    def assert_wrong(self, method, path, headers, body=None):
        self.assert_401(method, path, headers, WRONG, 'Bearer error="invalid_token"', body)

    def test_batch_without_token_sends_nothing(self):
        self.up.reset()
        batch = json.dumps([self.up.url("/json")])
        self.assert_need("POST", "/v1/batch", body=batch)
        self.assert_need("POST", "/v1/batch", {"Authorization": "Basic dXNlcjpwdw=="}, batch)
        self.assert_need("POST", "/v1/batch", {"Authorization": "Token " + TOKEN}, batch)
        self.assert_need("POST", "/v1/batch", {"Authorization": TOKEN}, batch)
        self.assert_wrong("POST", "/v1/batch", {"Authorization": "Bearer "}, batch)
        self.assert_wrong("POST", "/v1/batch", {"Authorization": "Bearer nope"}, batch)
        # same length, one character off; and the token with a suffix
        self.assert_wrong("POST", "/v1/batch", {"Authorization": "Bearer " + TOKEN[:-1] + "X"},
                          batch)
        self.assert_wrong("POST", "/v1/batch", {"Authorization": "Bearer " + TOKEN + "X"}, batch)
        self.assertEqual(self.up.stats()["requests"], 0)

    def test_batch_with_token(self):
        # header names and the scheme are case-insensitive (RFC 9110)
        for name, scheme in (("Authorization", "Bearer"), ("authorization", "bearer"),
                             ("AUTHORIZATION", "BEARER")):
            status, ans = self.fd.batch([self.up.url("/json")],
                                        headers={name: scheme + " " + TOKEN})
            assert_one_json_result(self, status, ans, self.up.url("/json"))

    def test_curl_oauth2_bearer(self):
        rc, out = harness.curl("--oauth2-bearer", TOKEN, "-d",
                               json.dumps([self.up.url("/json")]),
                               "http://127.0.0.1:%d/v1/batch" % self.fd.port)
        self.assertEqual(rc, 0)
        assert_one_json_result(self, 200, json.loads(out), self.up.url("/json"))

    def test_big_body_without_token_is_401_not_413(self):
        self.assert_need("POST", "/v1/batch", body="[" + " " * 4000 + "]")
        status, _, data = self.fd.request("POST", "/v1/batch", "[" + " " * 4000 + "]",
                                          {"Authorization": "Bearer " + TOKEN})
        self.assertEqual((status, json.loads(data)),
                         (413, {"ok": False, "error": "request_too_large",
                                "message": "request body over max_request_body"}))

    def test_healthz_is_open(self):
        status, _, body = self.fd.request("GET", "/healthz")
        self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))
        status, _, body = self.fd.request("GET", "/healthz", headers={"Authorization": "Bearer x"})
        self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))

    def test_other_endpoints_need_the_token(self):
        self.assert_need("GET", "/v1/upstreams")
        self.assert_wrong("GET", "/v1/upstreams", {"Authorization": "Bearer x"})
        status, _, body = self.fd.request("GET", "/v1/upstreams",
                                          headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(status, 200)
        self.assertIn("upstreams", json.loads(body))
        # an unknown path says nothing to a client without the token
        self.assert_need("GET", "/nope")
        status, _, body = self.fd.request("GET", "/nope",
                                          headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual((status, json.loads(body)),
                         (404, {"ok": False, "error": "not_found",
                                "message": "no such endpoint: /nope"}))
        # and the method comes after the token
        self.assert_need("GET", "/v1/batch")

    def test_token_never_logged(self):
        self.fd.batch([self.up.url("/json")], headers={"Authorization": "Bearer " + TOKEN})
        self.fd.batch([self.up.url("/json")], headers={"Authorization": "Bearer " + TOKEN + "X"})
        self.assertIn("listening on", self.fd.read_log())
        self.assertNotIn(TOKEN, self.fd.read_log())
        self.assertNotIn(TOKEN[5:15], self.fd.read_log())


class AuthReload(harness.TestCase):
    FANOUTD = False
    PER_TEST = True

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="fanoutd-auth-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.token_path = os.path.join(self.dir, "token")

    def write_token(self, text):
        with open(self.token_path, "w") as f:
            f.write(text)

    def status_with(self, fd, token):
        status, _ = fd.batch([self.up.url("/json")], headers={"Authorization": "Bearer " + token})
        return status

    def test_reload_swaps_the_token_and_a_bad_file_keeps_the_old(self):
        self.write_token("first-token\r\n\t \n")
        fd = self.fanoutd(config="[fanoutd]\nauth_token_file = %s\n" % self.token_path)
        self.assertEqual(self.status_with(fd, "first-token"), 200)
        self.write_token("second-token")
        fd.proc.send_signal(signal.SIGHUP)
        fd.wait_log("reloaded %s" % fd.config_path)
        self.assertEqual(self.status_with(fd, "first-token"), 401)
        self.assertEqual(self.status_with(fd, "second-token"), 200)

        self.write_token(" \n")
        fd.proc.send_signal(signal.SIGHUP)
        log = fd.wait_log("reload failed; keeping the running config")
        self.assertIn("fanoutd: error: auth_token_file %s: empty\n" % self.token_path, log)
        self.assertEqual(self.status_with(fd, "second-token"), 200)

        # auth switched off by a reload
        fd.reload("[fanoutd]\n")
        status, ans = fd.batch([self.up.url("/json")])
        assert_one_json_result(self, status, ans, self.up.url("/json"))
        self.assertNotIn("second-token", fd.read_log())

    def start_fails(self, config, args=()):
        fd = harness.Fanoutd(config=config, wait=False, args=list(args))
        self.assertEqual(fd.wait_exit(), 1)
        return fd.read_log()

    def test_bad_token_file_at_start_exits_1(self):
        missing = os.path.join(self.dir, "missing")
        log = self.start_fails("[fanoutd]\nauth_token_file = %s\n" % missing)
        self.assertIn("fanoutd: error: auth_token_file %s: No such file or directory\n" % missing,
                      log)
        self.assertNotIn("listening", log)

        self.write_token("\n\n")
        log = self.start_fails("[fanoutd]\nauth_token_file = %s\n" % self.token_path)
        self.assertIn("fanoutd: error: auth_token_file %s: empty\n" % self.token_path, log)

        self.write_token("two words\n")
        log = self.start_fails("[fanoutd]\nauth_token_file = %s\n" % self.token_path)
        self.assertIn("fanoutd: error: auth_token_file %s: the token holds a space or a "
                      "control character\n" % self.token_path, log)
        self.assertNotIn("two", log.replace("holds a space", ""))

        log = self.start_fails("[fanoutd]\nauth_token_file = %s\n" % self.dir)
        self.assertIn("fanoutd: error: auth_token_file %s: Is a directory\n" % self.dir, log)

        # -t checks the token file too
        log = self.start_fails("[fanoutd]\nauth_token_file = %s\n" % missing, args=["-t"])
        self.assertIn("auth_token_file %s: No such file or directory" % missing, log)


if __name__ == "__main__":
    harness.main()
