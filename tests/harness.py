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
import threading
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


def wait_until(predicate, timeout=5, interval=0.02):
    """Poll predicate until it is true or timeout seconds pass; returns
    its last value (the caller asserts on what it waited for)."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() >= deadline:
            return value
        time.sleep(interval)


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
    """The test upstream; port read from its stdout.  extra_args: more
    command-line options, e.g. ["--files", DIR] for /file/NAME."""

    def __init__(self, tls=None, listen="127.0.0.1:0", extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="fanoutd-up-")
        self.log_path = os.path.join(self.dir, "upstream.log")
        args = [UPSTREAM, "--listen", listen]
        if tls:
            args += ["--tls", tls[0], tls[1]]
        args += list(extra_args)
        # --h2-only speaks nothing else: /stats then goes over h2 (curl);
        # --h2 alone also answers HTTP/1.1, as the stats readers here use
        self.h2_only = "--h2-only" in extra_args
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
        if self.h2_only:
            argv = [CURL, "-sS", "--max-time", "10", self.url(path)]
            if self.scheme == "https":
                argv[1:1] = ["--http2", "-k"]
            else:
                argv[1:1] = ["--http2-prior-knowledge"]
            return json.loads(subprocess.run(argv, stdout=subprocess.PIPE, check=True,
                                             timeout=15).stdout)
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


NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
NGHTTPD = os.environ.get("NGHTTPD", "/usr/sbin/nghttpd")


def need(path, package):
    """A test that needs an external server fails (not skips) without it."""
    if not os.access(path, os.X_OK):
        raise AssertionError("this test needs %s (apt-get install %s; ./bootstrap installs it)"
                             % (path, package))


def _wait_port(proc, port, what, log_path, timeout=10):
    """Wait until something accepts on 127.0.0.1:port, or proc exits."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    log = ""
    if log_path and os.path.exists(log_path):
        with open(log_path, errors="replace") as f:
            log = f.read()
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc in _running:
        _running.remove(proc)
    raise RuntimeError("%s did not listen on port %d (exit %s):\n%s"
                       % (what, port, proc.returncode, log))


class Nginx:
    """nginx (nginx-light) in the foreground, one process (daemon off,
    master_process off), everything in its own temp dir (-p DIR): config,
    pid, error and access logs, temp paths, htdocs/.  One server on a free
    loopback port: listen = what follows the port ("http2", "ssl http2",
    "" for HTTP/1.1); tls = (cert, key); http_extra goes into http{} (e.g.
    "keepalive_requests 3;").  files: {name: bytes} under htdocs/.  Its
    locations:
      /json    {"name":"Ada","n":[1,2,3]} as application/json
      /echo    {"method":…,"uri":…,"length":…,"protocol":…} — what nginx
               saw ($server_protocol is "HTTP/2.0" or "HTTP/1.1")
      /        the files"""

    def __init__(self, listen="", tls=None, http_extra="", files=None):
        need(NGINX, "nginx-light")
        self.dir = tempfile.mkdtemp(prefix="fanoutd-nginx-")
        self.htdocs = os.path.join(self.dir, "htdocs")
        os.mkdir(self.htdocs)
        for name, data in (files or {}).items():
            with open(os.path.join(self.htdocs, name), "wb") as f:
                f.write(data)
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "error.log")
        self.scheme = "https" if tls else "http"
        ssl_lines = ""
        if tls:
            ssl_lines = "ssl_certificate %s;\n        ssl_certificate_key %s;\n" % tls
        d = self.dir
        conf = """daemon off;
master_process off;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log info;
events { worker_connections 1024; }
http {
    access_log %(d)s/access.log;
    client_body_temp_path %(d)s/client_body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    server_tokens off;
    %(http_extra)s
    server {
        listen 127.0.0.1:%(port)d %(listen)s;
        %(ssl)s
        root %(d)s/htdocs;
        location = /json {
            default_type application/json;
            return 200 '{"name":"Ada","n":[1,2,3]}';
        }
        location = /echo {
            default_type application/json;
            return 200 '{"method":"$request_method","uri":"$request_uri","length":"$content_length","protocol":"$server_protocol"}';
        }
    }
}
""" % {"d": d, "port": self.port, "listen": listen, "ssl": ssl_lines,
       "http_extra": http_extra}
        self.conf_path = os.path.join(d, "nginx.conf")
        with open(self.conf_path, "w") as f:
            f.write(conf)
        self.out = open(os.path.join(d, "stderr.log"), "w")
        self.proc = subprocess.Popen([NGINX, "-p", d + "/", "-e", self.log_path,
                                      "-c", self.conf_path],
                                     stdout=self.out, stderr=self.out)
        _running.append(self.proc)
        try:
            _wait_port(self.proc, self.port, "nginx", self.log_path)
        except BaseException:
            self.out.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def access_log(self):
        """The access log's lines (the default "combined" format)."""
        path = os.path.join(self.dir, "access.log")
        if not os.path.exists(path):
            return []
        with open(path, errors="replace") as f:
            return f.read().splitlines()

    def stop(self):
        # SIGQUIT: graceful, like `nginx -s quit`
        rc = _stop(self.proc, signal.SIGQUIT, 10)
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


class Nghttpd:
    """nghttpd (nghttp2-server) serving files from a temp htdocs dir (-d) on
    a free loopback port: h2c with prior knowledge (--no-tls), or with
    tls = (cert, key) h2 by ALPN; max_streams: -m (its SETTINGS_MAX_
    CONCURRENT_STREAMS).  files: {name: bytes}."""

    def __init__(self, files=None, max_streams=100, tls=None):
        need(NGHTTPD, "nghttp2-server")
        self.dir = tempfile.mkdtemp(prefix="fanoutd-nghttpd-")
        self.htdocs = os.path.join(self.dir, "htdocs")
        os.mkdir(self.htdocs)
        for name, data in (files or {}).items():
            with open(os.path.join(self.htdocs, name), "wb") as f:
                f.write(data)
        self.port = free_port()
        self.scheme = "https" if tls else "http"
        args = [NGHTTPD, "-a", "127.0.0.1", "-d", self.htdocs, "-m", str(max_streams)]
        if tls:
            args += [str(self.port), tls[1], tls[0]]   # PORT KEY CERT
        else:
            args += ["--no-tls", str(self.port)]
        self.log_path = os.path.join(self.dir, "nghttpd.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        _running.append(self.proc)
        try:
            _wait_port(self.proc, self.port, "nghttpd", self.log_path)
        except BaseException:
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def stop(self):
        rc = _stop(self.proc, signal.SIGTERM, 10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


REDIS_SERVER = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")


class RedisError(Exception):
    """An error reply (-ERR ...) from Redis."""


def resp_command(port, *args, timeout=5, host="127.0.0.1"):
    """Send one command to Redis over a fresh connection (RESP2) and return
    its reply: a simple string or bulk string as str, an integer as int,
    nil as None, an array as a list; an error reply raises RedisError, a
    Redis that does not answer within timeout raises socket.timeout."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        f = s.makefile("rb")
        try:
            return _resp_read(f)
        finally:
            f.close()
    finally:
        s.close()


def _resp_read(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("Redis closed the connection mid-reply: %r" % line)
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("Redis closed the connection mid-reply")
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise ConnectionError("not a RESP reply: %r" % line)


class RedisServer:
    """A redis-server of the test's own on a free loopback port (no RDB, no
    AOF, its files in a temp dir), stopped by pid.  A test that needs it
    fails (not skips) when redis-server is missing.  unix=True also
    listens on DIR/redis.sock (socket_path).  pause()/resume() SIGSTOP and
    SIGCONT it (a paused Redis accepts connections, through the kernel's
    backlog, but never answers), kill() SIGKILLs it, restart() starts a
    new, empty one on the same port; command() and the helpers after it
    talk RESP over a fresh connection each time."""

    def __init__(self, port=None, unix=False, extra_args=()):
        need(REDIS_SERVER, "redis-server")
        self.dir = tempfile.mkdtemp(prefix="fanoutd-redis-")
        self.log_path = os.path.join(self.dir, "redis.log")
        self.socket_path = os.path.join(self.dir, "redis.sock") if unix else None
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        self.proc = None
        self.paused = False
        self.starts = 0
        try:
            self._start()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    @property
    def unix_url(self):
        return "unix:" + self.socket_path

    def _start(self):
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--logfile", ""]
        if self.socket_path:
            argv += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        argv += self.extra_args
        self.starts += 1
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        _running.append(self.proc)
        self.paused = False
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self.command("PING", timeout=1) == "PONG":
                    return
            except (OSError, RedisError):
                pass
            time.sleep(0.02)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc in _running:
            _running.remove(self.proc)
        self.log.close()
        raise RuntimeError("redis-server did not answer PING on port %d (exit %s):\n%s"
                           % (self.port, self.proc.returncode, self.read_log()))

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def command(self, *args, timeout=5):
        """One command, its reply (resp_command)."""
        return resp_command(self.port, *args, timeout=timeout)

    def ping(self, timeout=1):
        """Does it answer PING within timeout?"""
        try:
            return self.command("PING", timeout=timeout) == "PONG"
        except (OSError, RedisError):
            return False

    def pause(self):
        """SIGSTOP: alive, holding its connections, answering nothing."""
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def kill(self):
        """SIGKILL (paused or not) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.paused = False
        if self.proc in _running:
            _running.remove(self.proc)
        self.log.close()

    def restart(self):
        """Stop it if it runs (kill it if paused), then start an empty one
        on the same port; returns once it answers PING."""
        if self.running():
            if self.paused:
                self.kill()
            else:
                self._terminate()
        elif not self.log.closed:
            self.kill()
        self._start()

    def _terminate(self):
        if self.paused:
            self.resume()
        rc = _stop(self.proc, signal.SIGTERM, 10)
        self.log.close()
        return rc

    def stop(self):
        """For the cleanup: stop it by pid (resumed first if paused, so
        SIGTERM is handled), whatever state the test left it in."""
        try:
            if self.running():
                self._terminate()
            elif not self.log.closed:
                self.kill()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def info(self, section=None):
        """INFO [section] as {field: value} (numbers converted)."""
        text = self.command("INFO", section) if section else self.command("INFO")
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#") or ":" not in line:
                continue
            k, v = line.split(":", 1)
            out[k] = _number(v)
        return out

    def commandstats(self):
        """INFO commandstats as {command: {"calls": N, "usec": ..., ...}},
        command lower-case as Redis names it ("evalsha", "script|load")."""
        out = {}
        for k, v in self.info("commandstats").items():
            if not k.startswith("cmdstat_"):
                continue
            fields = {}
            for part in str(v).split(","):
                name, _, val = part.partition("=")
                fields[name] = _number(val)
            out[k[len("cmdstat_"):]] = fields
        return out

    def calls(self):
        """{command: calls} from commandstats()."""
        return {k: v.get("calls", 0) for k, v in self.commandstats().items()}

    def keys(self, pattern="*"):
        """KEYS pattern, sorted."""
        return sorted(self.command("KEYS", pattern))

    def reset_stats(self):
        """CONFIG RESETSTAT (zeroes commandstats)."""
        self.command("CONFIG", "RESETSTAT")


def _number(text):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


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
            try:
                self.port = self.wait_listening()
            except BaseException:
                # a start that failed leaves nothing running
                if self.proc.poll() is None:
                    self.proc.kill()
                self.proc.wait()
                _running.remove(self.proc)
                self.log.close()
                raise

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

    def wait_log(self, text, timeout=10):
        """Wait until the log holds text; returns the log."""
        if not wait_until(lambda: text in self.read_log(), timeout):
            raise AssertionError("%r not in the log:\n%s" % (text, self.read_log()))
        return self.read_log()

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)

    def hup(self, text=None):
        """Write text as the config (if given) and send SIGHUP (a reload,
        which stop() need not wait for)."""
        if text is not None:
            self.write_config(text)
        self.proc.send_signal(signal.SIGHUP)

    def reload(self, text=None, timeout=10):
        """hup(text), then wait for one more "reloaded " line in the log."""
        before = self.read_log().count("reloaded ")
        self.hup(text)
        if not wait_until(lambda: self.read_log().count("reloaded ") > before, timeout):
            raise AssertionError("no reload in the log:\n" + self.read_log())

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
        self.exited = True
        return rc

    def send_signal(self, sig):
        self.signalled = True
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stop it; assert exit 0 and a log free of sanitizer reports."""
        self.stopped = True
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

    def stop_if_running(self):
        """stop(), unless the test stopped it or saw it exit already."""
        if getattr(self, "exited", False):
            shutil.rmtree(self.dir, ignore_errors=True)
        elif not getattr(self, "stopped", False):
            self.stop()


class TestCase(unittest.TestCase):
    """The shared fixture: a class's test upstream(s) and fanoutd, started
    before its first test and stopped after its last (or around each test
    with PER_TEST), by pid, even when a start or a test fails.  Class
    attributes say what a suite wants:

      UPSTREAMS      how many test upstreams: cls.up, then cls.up2, ...
      FANOUTD        start a fanoutd as cls.fd (after the upstreams)
      CONFIG         its config text (None: no -c), or staticmethod(f) with
                     f(class or test) -> text, to name what setUpClass or
                     the upstreams made (an upstream's port, a temp file)
      FANOUTD_ARGS   more keyword arguments for Fanoutd()
      PER_TEST       start them in setUp, stop them after each test
      RESET          reset the upstreams' stats before each test
      STILL_ALIVE    after each test, /healthz answers 200
      NOTHING_SENT   after each test, no request reached cls.up

    A suite that overrides setUp/setUpClass/tearDown calls super() (after
    making what CONFIG names).  A test may start more with self.upstream()
    and self.fanoutd(): they are stopped when it ends, after tearDown."""

    UPSTREAMS = 1
    FANOUTD = True
    CONFIG = None
    FANOUTD_ARGS = {}
    PER_TEST = False
    RESET = False
    STILL_ALIVE = False
    NOTHING_SENT = False

    @staticmethod
    def _start(owner, add_cleanup):
        """Start the fixture's processes as attributes of owner; each one's
        stop is registered as soon as it runs, so a failed start stops the
        ones before it."""
        for i in range(owner.UPSTREAMS):
            up = Upstream()
            add_cleanup(up.stop)
            setattr(owner, "up" if i == 0 else "up%d" % (i + 1), up)
        if owner.FANOUTD:
            config = owner.CONFIG(owner) if callable(owner.CONFIG) else owner.CONFIG
            owner.fd = Fanoutd(config=config, **owner.FANOUTD_ARGS)
            add_cleanup(owner.fd.stop_if_running)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not cls.PER_TEST:
            TestCase._start(cls, cls.addClassCleanup)

    def setUp(self):
        super().setUp()
        if self.PER_TEST:
            TestCase._start(self, self.addCleanup)
        if self.RESET:
            self.reset_upstreams()

    def tearDown(self):
        if self.STILL_ALIVE:
            status, _, _ = self.fd.request("GET", "/healthz")
            self.assertEqual(status, 200, "fanoutd is not alive")
        if self.NOTHING_SENT:
            self.assertEqual(self.up.stats()["requests"], 0, "something was sent upstream")
        super().tearDown()

    def upstreams(self):
        return [getattr(self, "up" if i == 0 else "up%d" % (i + 1))
                for i in range(self.UPSTREAMS)]

    def reset_upstreams(self):
        for up in self.upstreams():
            up.reset()

    def upstream(self, **kw):
        """Another test upstream, stopped when this test ends."""
        up = Upstream(**kw)
        self.addCleanup(up.stop)
        return up

    def fanoutd(self, **kw):
        """Another fanoutd (Fanoutd's arguments), stopped when this test
        ends unless the test stopped it already."""
        fd = Fanoutd(**kw)
        self.addCleanup(fd.stop_if_running)
        return fd

    def fanoutds(self, n, **kw):
        """n more fanoutd started with the same arguments (the same config),
        each on its own port and in its own temp dir; stopped when this
        test ends."""
        return [self.fanoutd(**kw) for _ in range(n)]

    def redis(self, **kw):
        """A redis-server (RedisServer's arguments), stopped when this test
        ends (after the fanoutd it started later)."""
        r = RedisServer(**kw)
        self.addCleanup(r.stop)
        return r

    def connect(self, timeout=5):
        """A raw TCP connection to cls.fd."""
        return socket.create_connection(("127.0.0.1", self.fd.port), timeout=timeout)


def has_ipv6():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def curl(*args, timeout=30):
    """Run curl; returns (exit code, stdout bytes)."""
    p = subprocess.run([CURL, "-sS"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout



# --- for suites that run several things at once -------------------------------

def in_threads(fns):
    """Run callables at once; return their results in order (the first
    exception raised, if any)."""
    results = [None] * len(fns)
    errors = []

    def run(i, fn):
        try:
            results[i] = fn()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, fn), daemon=True)
               for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results


class Background:
    """fn() on a thread of its own; join() gives its result."""

    def __init__(self, fn):
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self.run, args=(fn,), daemon=True)
        self.thread.start()

    def run(self, fn):
        try:
            self.result = fn()
        except Exception as e:  # noqa: BLE001 - raised in join()
            self.error = e

    def join(self, timeout=60):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("still running after %ss" % timeout)
        if self.error is not None:
            raise self.error
        return self.result


def key_of(up):
    return "http://127.0.0.1:%d" % up.port


def count(up, key):
    """/count/KEY: {"count", "times_ms", "max_in_flight"}."""
    return up._get("/count/" + key)


def upstream_metric(fd, name, up):
    """The counter name{upstream=up} on fd's /metrics; 0 before the
    upstream's series exists (it comes at its first use), but the family
    must be there."""
    status, _, body = fd.request("GET", "/metrics")
    assert status == 200, body
    want = '%s{upstream="%s"} ' % (name, key_of(up))
    for line in body.decode().splitlines():
        if line.startswith(want):
            return float(line[len(want):])
    assert ("# TYPE %s counter" % name) in body.decode(), name
    return 0.0


def upstream_entry(fd, up):
    """up's entry in fd's GET /v1/upstreams."""
    status, _, data = fd.request("GET", "/v1/upstreams")
    assert status == 200, data
    return {u["upstream"]: u for u in json.loads(data)["upstreams"]}[key_of(up)]


def main():
    """Run the calling module's tests; exit 1 on any failure."""
    prog = unittest.main(exit=False, verbosity=2)
    r = prog.result
    failed = len(r.failures) + len(r.errors)
    passed = max(0, r.testsRun - failed - len(r.skipped))
    print("%d passed, %d failed, %d skipped" % (passed, failed, len(r.skipped)))
    sys.exit(0 if r.wasSuccessful() else 1)
