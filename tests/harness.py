"""Integration test harness: starts the real fanoutd and the test upstream
(tests/upstream.c) on loopback, each in its own temp dir, talks to them over
real HTTP, and stops every process it started (by pid), even when a test
fails.  Uses only the Python standard library (Debian's /usr/bin/python3)."""

import atexit
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
FANOUTD = os.environ.get("FANOUTD", os.path.join(HERE, "..", "src", "fanoutd"))
UPSTREAM = os.environ.get("UPSTREAM", os.path.join(HERE, "upstream"))
CURL = os.environ.get("CURL", "curl")
# e.g. "valgrind --leak-check=full --error-exitcode=99" (make check-valgrind)
WRAPPER = os.environ.get("FANOUTD_WRAPPER", "").split()

_running = []          # every process started, for the atexit sweep

# (under valgrind, --error-exitcode makes any report a non-zero exit)
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "AddressSanitizer:", "UndefinedBehaviorSanitizer")


def _sweep():
    for p in _running:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_sweep)


def free_port():
    """A port nobody listens on (for 'connection refused')."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _stop(proc, sig, timeout):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("process %d did not exit within %ss" % (proc.pid, timeout))
    if proc in _running:
        _running.remove(proc)
    return proc.returncode


class Upstream:
    """The test upstream; port read from its stdout."""

    def __init__(self, tls=None, listen="127.0.0.1:0"):
        self.dir = tempfile.mkdtemp(prefix="fanoutd-up-")
        self.log_path = os.path.join(self.dir, "upstream.log")
        args = [UPSTREAM, "--listen", listen]
        if tls:
            args += ["--tls", tls[0], tls[1]]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log)
        _running.append(self.proc)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("upstream did not start: " + open(self.log_path).read())
        self.port = int(line)
        self.host = "[::1]" if listen.startswith("[") else "127.0.0.1"
        self.scheme = "https" if tls else "http"

    def url(self, path):
        return "%s://%s:%d%s" % (self.scheme, self.host, self.port, path)

    def _get(self, path):
        if self.scheme == "https":
            c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10,
                                            context=ssl._create_unverified_context())
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return json.loads(body)

    def stats(self):
        return self._get("/stats")

    def reset(self):
        self._get("/stats/reset")

    def stop(self):
        rc = _stop(self.proc, signal.SIGTERM, 10)
        self.proc.stdout.close()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


class Fanoutd:
    """A running fanoutd with its own temp dir, config and log file."""

    def __init__(self, config=None, args=(), listen="127.0.0.1:0", wait=True, env=None,
                 preexec=None):
        self.dir = tempfile.mkdtemp(prefix="fanoutd-")
        self.log_path = os.path.join(self.dir, "fanoutd.log")
        argv = WRAPPER + [FANOUTD]
        if config is not None:
            self.config_path = os.path.join(self.dir, "fanoutd.conf")
            with open(self.config_path, "w") as f:
                f.write(config)
            argv += ["-c", self.config_path]
        if listen:
            argv += ["-l", listen]
        argv += list(args)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log,
                                     env=env, preexec_fn=preexec)
        _running.append(self.proc)
        self.port = None
        if wait:
            self.port = self.wait_listening()

    def wait_listening(self, timeout=30 if WRAPPER else 10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            log = self.read_log()
            m = re.search(r"listening on (?:\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):(\d+)", log)
            if m:
                return int(m.group(1))
            if " ready\n" in log:
                return None   # unix socket only
            if self.proc.poll() is not None:
                raise RuntimeError("fanoutd exited %d: %s" % (self.proc.returncode,
                                                               self.read_log()))
            time.sleep(0.02)
        raise RuntimeError("fanoutd did not listen: " + self.read_log())

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def connection(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30):
        """(status, headers, raw body) over a fresh connection."""
        c = self.connection(timeout)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hdrs, data

    def batch(self, payload, timeout=30, headers=None):
        """POST a batch (a Python value, or raw bytes/str) -> (status, json)."""
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        status, hdrs, data = self.request("POST", "/v1/batch", payload, headers, timeout)
        assert hdrs.get("content-type") == "application/json", hdrs
        return status, json.loads(data)

    def wait_exit(self, timeout=10):
        """For a fanoutd expected to exit by itself: its exit code."""
        rc = self.proc.wait(timeout)
        _running.remove(self.proc)
        self.log.close()
        return rc

    def send_signal(self, sig):
        self.signalled = True
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stop it; assert exit 0 and a log free of sanitizer reports."""
        if getattr(self, "signalled", False) and sig == signal.SIGTERM:
            # it was told already: a second SIGTERM would force the exit
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        rc = _stop(self.proc, sig, timeout)
        self.log.close()
        log = self.read_log()
        for mark in SANITIZER_MARKS:
            if mark in log:
                raise AssertionError("sanitizer report in fanoutd log:\n" + log)
        shutil.rmtree(self.dir, ignore_errors=True)
        if rc != 0:
            raise AssertionError("fanoutd exited %d:\n%s" % (rc, log))
        return rc


def curl(*args, timeout=30):
    """Run curl; returns (exit code, stdout bytes)."""
    p = subprocess.run([CURL, "-sS"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout


def main():
    """Run the calling module's tests; exit 1 on any failure."""
    prog = unittest.main(exit=False, verbosity=2)
    r = prog.result
    failed = len(r.failures) + len(r.errors)
    passed = max(0, r.testsRun - failed - len(r.skipped))
    print("%d passed, %d failed, %d skipped" % (passed, failed, len(r.skipped)))
    sys.exit(0 if r.wasSuccessful() else 1)
