"""The upstream HTTP/1.1 client (SPEC sections 6 and 9): framing it must
refuse, answers it must not mix up, interim answers, a reset right after
accept, and content encodings (decoded as httpx does, counted decoded
against max_response_body, a bomb that stays small)."""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

JSON_BODY = {"name": "Ada", "n": [1, 2, 3]}     # what the upstream's /json says


def _text():
    """A few KiB of known UTF-8 text, words picked by a fixed LCG so that it
    does not compress to nothing (each coded form is over 1 KiB)."""
    words = ("the quick brown fox jumps over a lazy dog déjà vu naïve café "
             "smörgåsbord ✓ λ 0x1f fan out batch upstream").split()
    x, lines = 12345, []
    for i in range(100):
        line = []
        for _ in range(8):
            x = (x * 1103515245 + 12345) % 2 ** 31
            line.append(words[(x >> 16) % len(words)])
        lines.append("%03d %s\n" % (i, " ".join(line)))
    return "".join(lines)


# What every coded /file/ answer decodes to.
TEXT = _text()

# coding as sent in Content-Encoding -> the file holding TEXT coded so
CODED = {"gzip": "text.gz", "deflate": "text.deflate", "br": "text.br", "zstd": "text.zst"}

CAP = 64 * 1024             # max_response_body = 64K for the decoded-size tests


def compress(argv, data):
    """data through a command-line compressor (gzip, brotli, zstd)."""
    if shutil.which(argv[0]) is None:
        raise RuntimeError("t_transport needs the %s command (apt-get install %s)"
                           % (argv[0], argv[0]))
    return subprocess.run(argv, input=data, stdout=subprocess.PIPE, check=True).stdout


def gzip(data):
    return compress(["gzip", "-c", "-n", "-9"], data)


def raw_body(result):
    """The bytes of a result's body, whatever its encoding."""
    if result["encoding"] == "base64":
        return base64.b64decode(result["body"])
    return result["body"].encode()


def short(ans):
    """An answer for a failure message, each long body cut short."""
    def cut(v):
        if isinstance(v, dict):
            return {k: (x[:60] + "...(%d chars)" % len(x)
                        if k == "body" and isinstance(x, str) and len(x) > 100 else cut(x))
                    for k, x in v.items()}
        if isinstance(v, list):
            return [cut(x) for x in v]
        return v
    return json.dumps(cut(ans))


def vm_hwm(pid):
    """Peak resident memory of a process, in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/%d/status" % pid)


class ResetServer:
    """An upstream that resets every connection right after accepting it
    (SO_LINGER {1, 0}, then close), served by a thread until stop()."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            self.accepted += 1

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        self.done.set()
        self.thread.join(5)
        self.sock.close()


class Framing(harness.TestCase):
    """Answers whose framing is wrong, or more than was asked for.  A fresh
    upstream and fanoutd per test, so the upstream's connection counts are
    this test's alone; one connection at a time, so a kept connection would
    carry the next request."""

    PER_TEST = True
    STILL_ALIVE = True
    CONFIG = "[fanoutd]\nupstream_concurrency = 1\nrequest_timeout = 2s\n"

    def test_overlong_answer_closes_the_connection(self):
        status, ans = self.fd.batch([self.up.url("/overlong")])
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual((r["status"], r["body"], r["encoding"], r["reused"]),
                         (200, "hello", "text", False))
        self.assertNotIn("x-forged", r["headers"])
        # bytes after the answer: the connection is closed, not kept idle
        harness.wait_until(lambda: self.up.stats()["open_connections"] == 0, 2)
        st = self.up.stats()
        self.assertEqual((st["connections"], st["open_connections"]), (1, 0), st)

    def test_overlong_excess_never_answers_the_next_request(self):
        self.fd.batch([self.up.url("/overlong")])
        status, ans = self.fd.batch([self.up.url("/json")])
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual((r["status"], r["body"], r["encoding"], r["reused"]),
                         (200, JSON_BODY, "json", False))
        self.assertNotIn("x-forged", r["headers"])
        st = self.up.stats()
        self.assertEqual((st["requests"], st["connections"]), (2, 2), st)

    def test_two_content_lengths_are_protocol(self):
        status, ans = self.fd.batch([self.up.url("/twolengths")])
        self.assertEqual(status, 502, ans)
        e = ans["errors"][0]
        self.assertEqual(e["type"], "protocol", e)
        self.assertTrue(e["message"].startswith("malformed answer"), e["message"])

    def test_early_hints_are_dropped(self):
        status, ans = self.fd.batch([self.up.url("/earlyhints")])
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual((r["status"], r["body"], r["encoding"]), (200, "final answer", "text"))
        self.assertEqual(r["headers"]["x-final"], "1")
        self.assertNotIn("link", r["headers"])          # 1xx headers are not merged
        # the connection is good for the next request
        status, ans = self.fd.batch([self.up.url("/json")])
        self.assertEqual(status, 200, ans)
        self.assertEqual((ans["results"][0]["body"], ans["results"][0]["reused"]),
                         (JSON_BODY, True))

    def test_malformed_answers_are_protocol_and_discarded(self):
        for path in ("/badchunk", "/negativelength", "/status2000"):
            with self.subTest(path=path):
                status, ans = self.fd.batch([self.up.url(path)])
                self.assertEqual(status, 502, ans)
                e = ans["errors"][0]
                self.assertEqual(e["type"], "protocol", e)   # not too_large, not http_status
                self.assertTrue(e["message"].startswith("malformed answer"), e["message"])
        harness.wait_until(lambda: self.up.stats()["open_connections"] == 0, 2)
        self.assertEqual(self.up.stats()["open_connections"], 0)   # none kept

    def test_reset_right_after_accept_is_connect(self):
        srv = ResetServer()
        self.addCleanup(srv.stop)
        fd = self.fanoutd(config="[fanoutd]\nupstream_concurrency = 10\n")
        # the reset races fanoutd's connect and write: one at a time and ten
        # at once, every one must say "reset"
        errors = []
        for _ in range(10):
            status, ans = fd.batch([srv.url("/json")])
            self.assertEqual(status, 502, ans)
            errors.append(ans["errors"][0])
        for _ in range(3):
            status, ans = fd.batch({"requests": [srv.url("/json")] * 10, "mode": "settled"})
            self.assertEqual(status, 200, ans)
            errors += [r["error"] for r in ans["results"]]
        for e in errors:
            self.assertEqual(e["type"], "connect", e)
            self.assertIn("reset", e["message"])
            self.assertNotIn("refused", e["message"])
        self.assertGreaterEqual(srv.accepted, 40)


class Encodings(harness.TestCase):
    """Content encodings, from an upstream serving files made at set-up:
    TEXT coded each way, a gzip bomb, bodies around the decoded cap."""

    UPSTREAMS = 0           # started below, with --files
    STILL_ALIVE = True

    @classmethod
    def setUpClass(cls):
        cls.files = tempfile.mkdtemp(prefix="fanoutd-files-")
        cls.addClassCleanup(shutil.rmtree, cls.files, True)
        text = TEXT.encode()
        cls.coded = {"gzip": gzip(text), "deflate": zlib.compress(text, 9),
                     "br": compress(["brotli", "-c", "-q", "11"], text),
                     "zstd": compress(["zstd", "-q", "-c"], text)}   # 2 MiB window
        cap_at = (b"0123456789abcdef" * (CAP // 16 + 1))[:CAP]
        files = {"text.txt": text,
                 "bomb.gz": gzip(bytes(64 * 1024 * 1024)),       # 64 MiB of zeros
                 "cap-at.gz": gzip(cap_at),                      # decodes to CAP bytes
                 "cap-over.gz": gzip(cap_at + b"!"),             # CAP + 1
                 "cut.gz": gzip(text)[:-20],                     # cut short
                 "padded.gz": gzip(text) + b"junk"}              # data after it
        files.update({CODED[c]: data for c, data in cls.coded.items()})
        for name, data in files.items():
            with open(os.path.join(cls.files, name), "wb") as f:
                f.write(data)
        cls.sizes = {name: len(data) for name, data in files.items()}
        cls.up = harness.Upstream(extra_args=["--files", cls.files])
        cls.addClassCleanup(cls.up.stop)
        super().setUpClass()

    def file_url(self, name, query=""):
        return self.up.url("/file/" + name + query)

    def coded_url(self, coding, chunked=False):
        return self.file_url(CODED[coding], "?ce=" + coding + ("&chunked=1" if chunked else ""))

    def assert_decoded(self, r, coding):
        self.assertEqual(r["status"], 200)
        self.assertEqual((r["encoding"], r["body"]), ("text", TEXT), coding)
        self.assertEqual(r["headers"]["content-encoding"], coding)
        self.assertEqual(r.get("decoded"), coding)

    def assert_as_sent(self, r, coding):
        self.assertEqual(r["status"], 200)
        self.assertEqual(r["encoding"], "base64", coding)
        self.assertEqual(raw_body(r), self.coded[coding], coding)
        self.assertEqual(r["headers"]["content-encoding"], coding)
        self.assertNotIn("decoded", r)

    def test_identity_is_not_decoded(self):
        status, ans = self.fd.batch([self.file_url("text.txt")])
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual((r["status"], r["encoding"], r["body"]), (200, "text", TEXT))
        self.assertNotIn("content-encoding", r["headers"])
        self.assertNotIn("decoded", r)

    def test_bad_coded_bodies_are_protocol(self):
        status, ans = self.fd.batch({"mode": "settled", "requests": [
            self.file_url("text.txt", "?ce=gzip"), self.file_url("cut.gz", "?ce=gzip"),
            self.file_url("padded.gz", "?ce=gzip"), self.file_url("text.txt", "?ce=br"),
            self.file_url("text.txt", "?ce=compress")]})
        self.assertEqual(status, 200, ans)
        errors = [r.get("error") for r in ans["results"]]
        self.assertEqual([e["type"] if e else None for e in errors],
                         ["protocol"] * 4 + [None], errors)
        self.assertEqual(errors[0]["message"],
                         "malformed answer: gzip: invalid data (incorrect header check)")
        self.assertEqual(errors[1]["message"], "malformed answer: gzip: truncated stream")
        self.assertEqual(errors[2]["message"],
                         "malformed answer: gzip: data after the end of the stream")
        self.assertTrue(errors[3]["message"].startswith("malformed answer: br: "), errors[3])
        # a coding fanoutd does not know: the body as sent, nothing undone
        r = ans["results"][4]
        self.assertEqual((r["body"], r["headers"]["content-encoding"]), (TEXT, "compress"))
        self.assertNotIn("decoded", r)

    def test_each_coding_is_decoded(self):
        codings = list(CODED)
        status, ans = self.fd.batch([self.coded_url(c) for c in codings])
        self.assertEqual(status, 200, ans)
        for coding, r in zip(codings, ans["results"]):
            with self.subTest(coding=coding):
                self.assert_decoded(r, coding)

    def test_chunked_coded_body_is_decoded(self):
        status, ans = self.fd.batch([self.coded_url("br", chunked=True)])
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual(r["headers"]["transfer-encoding"], "chunked")
        self.assert_decoded(r, "br")

    def test_decompress_false_on_a_request(self):
        status, ans = self.fd.batch({"requests": [
            {"url": self.coded_url("gzip"), "decompress": False},
            self.coded_url("zstd")]})
        self.assertEqual(status, 200, ans)
        self.assert_as_sent(ans["results"][0], "gzip")
        self.assert_decoded(ans["results"][1], "zstd")     # only that request

    def test_decompress_false_on_the_batch(self):
        status, ans = self.fd.batch({"requests": [self.coded_url("deflate"),
                                                  self.coded_url("br")],
                                     "decompress": False})
        self.assertEqual(status, 200, ans)
        self.assert_as_sent(ans["results"][0], "deflate")
        self.assert_as_sent(ans["results"][1], "br")

    def test_accept_encoding_is_sent(self):
        status, ans = self.fd.batch([self.up.url("/echo")])
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["results"][0]["body"]["headers"].get("accept-encoding"),
                         "gzip, deflate, br, zstd")

    def test_own_accept_encoding_is_sent_alone(self):
        status, ans = self.fd.batch({"requests": [
            {"url": self.up.url("/echo"), "headers": {"Accept-Encoding": "identity"}}]})
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["results"][0]["body"]["headers"].get("accept-encoding"),
                         "identity")
        # the batch's headers count as the request's own (any case)
        status, ans = self.fd.batch({"requests": [self.up.url("/echo")],
                                     "headers": {"accept-encoding": "br"}})
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["results"][0]["body"]["headers"].get("accept-encoding"), "br")

    def test_gzip_bomb_is_too_large_in_little_memory(self):
        self.assertLess(self.sizes["bomb.gz"], 1024 * 1024)   # the cap counts decoded bytes
        fd = self.fanoutd(config="[fanoutd]\nmax_response_body = 1M\n"
                                 "upstream_concurrency = 4\n")
        bomb = self.file_url("bomb.gz", "?ce=gzip")
        status, ans = fd.batch([bomb])
        self.assertEqual(status, 502, short(ans))
        self.assertEqual(ans["errors"][0]["type"], "too_large", ans["errors"][0])
        # four at once, each stopped at the cap
        status, ans = fd.batch({"requests": [bomb] * 4, "mode": "settled"})
        self.assertEqual(status, 200, short(ans))
        self.assertEqual([r.get("error", {}).get("type") for r in ans["results"]],
                         ["too_large"] * 4, short(ans))
        if not harness.WRAPPER:     # under valgrind the pid is valgrind's
            self.assertLess(vm_hwm(fd.proc.pid), 100 * 1024 * 1024)
        self.assertIsNone(fd.proc.poll(), "fanoutd died")
        status, _, _ = fd.request("GET", "/healthz")
        self.assertEqual(status, 200)
        status, ans = fd.batch([self.coded_url("gzip")])
        self.assertEqual(status, 200, ans)
        self.assert_decoded(ans["results"][0], "gzip")

    def test_max_response_body_counts_decoded_bytes(self):
        self.assertLess(self.sizes["cap-over.gz"], CAP)
        fd = self.fanoutd(config="[fanoutd]\nmax_response_body = 64K\n")
        status, ans = fd.batch([self.file_url("cap-at.gz", "?ce=gzip")])
        self.assertEqual(status, 200, ans)
        r = ans["results"][0]
        self.assertEqual((len(r["body"]), r.get("decoded")), (CAP, "gzip"))
        status, ans = fd.batch([self.file_url("cap-over.gz", "?ce=gzip")])
        self.assertEqual(status, 502, short(ans))
        self.assertEqual(ans["errors"][0]["type"], "too_large", ans["errors"][0])
        # not decoded, the same answer is well under the cap
        status, ans = fd.batch({"requests": [self.file_url("cap-over.gz", "?ce=gzip")],
                                "decompress": False})
        self.assertEqual(status, 200, ans)
        self.assertEqual(len(raw_body(ans["results"][0])), self.sizes["cap-over.gz"])


if __name__ == "__main__":
    harness.main()
