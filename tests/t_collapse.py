"""Collapsing (SPEC section 15): collapse = yes in an [upstream] section
joins an identical GET or HEAD already in flight there, from any batch of
any client, instead of sending it again.

  - ten clients asking for the same /flaky/KEY?delay=300 at once: the
    upstream sees ONE request, all ten get its body with "shared": true;
    with collapse = no (another upstream) ten requests;
  - one of the ten batches fails fast on another URL: its entry is
    cancelled, the shared request goes on and the nine others succeed;
    when every batch has left (their deadlines), the request is aborted at
    the upstream (its "aborted" counter; over HTTP/2 a RST_STREAM);
  - a waiter whose own timeout_ms passes leaves with a timeout, the others
    get the answer;
  - what is not identical is not collapsed: another Authorization, another
    query; "collapse": false opts a request out; POST never collapses; a
    lone request carries no "shared";
  - a large body is shared by every waiter (the same bytes in each answer,
    buffered and NDJSON);
  - /metrics fanoutd_upstream_collapsed_total and /v1/upstreams
    "collapsed" count the joins (n - 1 for n identical requests)."""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import count, key_of, upstream_entry  # noqa: E402
from harness import upstream_metric as metric  # noqa: E402


def at_once(fns):
    """Run each fn on a thread of its own, all released together; their
    results (or the exception each raised), in order."""
    results = [None] * len(fns)
    barrier = threading.Barrier(len(fns))

    def run(i):
        barrier.wait()
        try:
            results[i] = fns[i]()
        except Exception as e:  # noqa: BLE001 - checked by the caller
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results


class Collapse(harness.TestCase):
    UPSTREAMS = 2
    STILL_ALIVE = True

    @staticmethod
    def CONFIG(c):
        return ('[upstream "%s"]\ncollapse = yes\nconcurrency = 50\n'
                '[upstream "%s"]\ncollapse = no\nconcurrency = 50\n'
                % (key_of(c.up), key_of(c.up2)))

    def ten(self, url, n=10, extra=None):
        """n clients POST a batch of [url] (plus extra[i] for client i) at
        once; their (status, answer)."""
        def client(i):
            reqs = [url] + (extra[i] if extra and i in extra else [])
            return lambda: self.fd.batch(reqs)
        return at_once([client(i) for i in range(n)])

    def test_ten_clients_one_upstream_request(self):
        before = metric(self.fd, "fanoutd_upstream_collapsed_total", self.up)
        answers = self.ten(self.up.url("/flaky/ten?delay=300"))
        for status, ans in answers:
            self.assertEqual(status, 200, ans)
            r = ans["results"][0]
            self.assertEqual(r["body"], {"key": "ten", "attempt": 1}, r)
            self.assertIs(r["shared"], True, r)
            self.assertEqual(r["attempts"], 1, r)
        self.assertEqual(count(self.up, "ten")["count"], 1)
        self.assertEqual(metric(self.fd, "fanoutd_upstream_collapsed_total", self.up),
                         before + 9)
        self.assertGreaterEqual(upstream_entry(self.fd, self.up)["collapsed"], 9)

    def test_collapse_no_sends_ten(self):
        answers = self.ten(self.up2.url("/flaky/nocollapse?delay=200"))
        attempts = sorted(a["results"][0]["body"]["attempt"] for _, a in answers)
        self.assertEqual(attempts, list(range(1, 11)))
        for _, ans in answers:
            self.assertNotIn("shared", ans["results"][0])
        self.assertEqual(count(self.up2, "nocollapse")["count"], 10)
        self.assertEqual(metric(self.fd, "fanoutd_upstream_collapsed_total", self.up2), 0)

    def test_one_batch_failing_fast_does_not_hurt_the_others(self):
        aborted = self.up.stats()["aborted"]
        url = self.up.url("/flaky/ff?delay=400")
        # client 0 also asks for a 500 that answers after 150 ms (when all
        # ten have joined): it fails fast
        answers = self.ten(url, extra={0: [self.up2.url("/status/500?delay=150")]})
        status, ans = answers[0]
        self.assertEqual(status, 502, ans)
        self.assertEqual(ans["cancelled"], [0], ans)
        self.assertEqual([e["index"] for e in ans["errors"]], [1], ans)
        for status, ans in answers[1:]:
            self.assertEqual(status, 200, ans)
            r = ans["results"][0]
            self.assertEqual(r["body"], {"key": "ff", "attempt": 1}, r)
            self.assertIs(r["shared"], True, r)
        self.assertEqual(count(self.up, "ff")["count"], 1)
        self.assertEqual(self.up.stats()["aborted"], aborted)

    def test_when_all_leave_it_is_aborted_at_the_upstream(self):
        aborted = self.up.stats()["aborted"]
        url = self.up.url("/flaky/leave?delay=3000")
        t0 = time.time()
        answers = at_once([lambda: self.fd.batch({"timeout_ms": 200, "requests": [url]})
                           for _ in range(10)])
        took = time.time() - t0
        for status, ans in answers:
            self.assertEqual(status, 502, ans)
            self.assertEqual(ans["errors"][0]["type"], "timeout", ans)
        self.assertLess(took, 2.5)
        self.assertEqual(count(self.up, "leave")["count"], 1)
        self.assertTrue(harness.wait_until(
            lambda: self.up.stats()["aborted"] == aborted + 1, 3), self.up.stats())
        self.assertEqual(self.up.stats()["in_flight"], 0)

    def test_a_waiter_whose_timeout_passes_leaves_alone(self):
        url = self.up.url("/flaky/ownto?delay=500")
        quick = {"requests": [{"url": url, "timeout_ms": 150}], "mode": "settled"}
        patient = {"requests": [url], "mode": "settled"}
        (s1, a1), (s2, a2) = at_once([lambda: self.fd.batch(patient),
                                      lambda: self.fd.batch(quick)])
        e = a2["results"][0]["error"]
        self.assertEqual((e["type"], e["phase"]), ("timeout", "response"), a2)
        self.assertIn("an identical request in flight was joined", e["message"])
        r = a1["results"][0]
        self.assertEqual(r["status"], 200, a1)
        self.assertEqual(r["body"], {"key": "ownto", "attempt": 1}, r)
        self.assertEqual(count(self.up, "ownto")["count"], 1)

    def test_not_identical_not_collapsed(self):
        url = self.up.url("/flaky/ident?delay=300")
        other = self.up.url("/flaky/ident?delay=300&x=1")

        def with_auth(token, u=url):
            return lambda: self.fd.batch({"requests": [
                {"url": u, "headers": {"Authorization": "Bearer " + token}}]})

        answers = at_once([with_auth("a"), with_auth("a"), with_auth("b"),
                           with_auth("a", other)])
        attempts = [a["results"][0]["body"]["attempt"] for _, a in answers]
        self.assertEqual(attempts[0], attempts[1], answers)   # the same request
        self.assertEqual(sorted(attempts[1:]), [1, 2, 3], answers)
        self.assertEqual(count(self.up, "ident")["count"], 3)
        shared = [a["results"][0].get("shared", False) for _, a in answers]
        self.assertEqual(shared, [True, True, False, False], answers)

    def test_header_names_are_compared_without_case(self):
        url = self.up.url("/flaky/case?delay=300")
        answers = at_once([
            lambda: self.fd.batch({"requests": [{"url": url, "headers": {"X-A": "1"}}]}),
            lambda: self.fd.batch({"requests": [{"url": url, "headers": {"x-a": "1"}}]})])
        self.assertEqual(count(self.up, "case")["count"], 1, answers)

    def test_opt_out_post_and_a_lone_request(self):
        url = self.up.url("/flaky/optout?delay=300")
        answers = at_once([
            lambda: self.fd.batch([url]),
            lambda: self.fd.batch({"requests": [{"url": url, "collapse": False}]}),
            lambda: self.fd.batch({"requests": [{"url": url, "method": "POST"}]})])
        self.assertEqual(count(self.up, "optout")["count"], 3, answers)
        for _, ans in answers:
            self.assertNotIn("shared", ans["results"][0], ans)
        status, ans = self.fd.batch({"requests": [{"url": url, "collapse": "no"}]})
        self.assertEqual(status, 400, ans)
        self.assertIn("requests[0].collapse", ans["message"])

    def test_head_collapses(self):
        url = self.up.url("/flaky/head?delay=300")
        answers = at_once([lambda: self.fd.batch({"requests": [
            {"url": url, "method": "HEAD"}]}) for _ in range(3)])
        for status, ans in answers:
            self.assertEqual(ans["results"][0]["status"], 200, ans)
            self.assertIs(ans["results"][0]["shared"], True)
        self.assertEqual(count(self.up, "head")["count"], 1)

    def test_a_large_body_is_shared_buffered_and_streamed(self):
        n = 3 * 1024 * 1024
        url = self.up.url("/bytes/%d?delay=300" % n)
        requests = self.up.stats()["requests"]

        def buffered():
            status, ans = self.fd.batch([url])
            return ans["results"][0]

        def streamed():
            status, hdrs, data = self.fd.request(
                "POST", "/v1/batch", json.dumps([url]),
                {"Accept": "application/x-ndjson"})
            lines = [json.loads(x) for x in data.decode().splitlines()]
            return lines[0]

        results = at_once([buffered, buffered, streamed, streamed])
        for r in results:
            self.assertEqual(r["status"], 200)
            self.assertIs(r["shared"], True)
            self.assertEqual(len(r["body"]), n)
            self.assertEqual(r["body"][:26], "abcdefghijklmnopqrstuvwxyz")
        self.assertEqual(len({r["body"] for r in results}), 1)
        self.assertEqual(self.up.stats()["requests"], requests + 1)


class Reentry(harness.TestCase):
    """A slot handed back may run a request that fails at once (a .invalid
    name) and fails its batch: the flight or the waiter being ended then
    is ended again from inside (under ASan, any use after free shows)."""
    UPSTREAMS = 1
    STILL_ALIVE = True

    @staticmethod
    def CONFIG(c):
        return ('[fanoutd]\nglobal_concurrency = 1\n'
                '[upstream "%s"]\ncollapse = yes\nhedge_after = 50ms\n'
                'retry_budget = 100%%\n' % key_of(c.up))

    def test_the_flight_ends_and_its_slot_fails_the_batch(self):
        status, ans = self.fd.batch([self.up.url("/delay/200"), "http://x.invalid/"])
        self.assertEqual(status, 502, ans)
        self.assertEqual((ans["errors"][0]["index"], ans["errors"][0]["type"]), (1, "dns"))
        self.assertEqual(ans["completed"], [0], ans)

    def test_a_waiter_times_out_and_its_slot_fails_its_batch(self):
        status, ans = self.fd.batch({"requests": [
            {"url": self.up.url("/delay/1000"), "timeout_ms": 100}, "http://x.invalid/"]})
        self.assertEqual(status, 502, ans)
        e = ans["errors"][0]
        self.assertEqual((e["index"], e["type"], e["phase"]), (0, "timeout", "response"), ans)
        self.assertEqual(ans["cancelled"], [1], ans)

    def test_hedged_flight_and_a_second_batch(self):
        url = self.up.url("/flaky/reentry?fail=1&reset=1&delay=300")
        first = Background(lambda: self.fd.batch({"requests": [
            {"url": url, "timeout_ms": 100}]}))
        time.sleep(0.05)
        status, ans = self.fd.batch([url, "http://x.invalid/"])
        self.assertEqual(status, 502, ans)
        status1, ans1 = first.join()
        self.assertEqual(status1, 502, ans1)
        self.assertEqual(ans1["errors"][0]["type"], "timeout", ans1)


class CollapseCap(harness.TestCase):
    """A request that joins takes no slot of its batch's max_concurrency:
    the same URL twice under max_concurrency 1 is one upstream request."""
    STILL_ALIVE = True

    @staticmethod
    def CONFIG(c):
        return '[upstream "%s"]\ncollapse = yes\n' % key_of(c.up)

    def test_max_concurrency_1(self):
        url = self.up.url("/flaky/cap?delay=300")
        t0 = time.time()
        status, ans = self.fd.batch({"max_concurrency": 1, "requests": [url, url]})
        self.assertEqual(status, 200, ans)
        self.assertLess(time.time() - t0, 0.55)
        self.assertEqual([r["shared"] for r in ans["results"]], [True, True], ans)
        self.assertEqual(count(self.up, "cap")["count"], 1)

    def test_the_sent_one_holds_the_cap(self):
        # distinct URLs: each is sent, one at a time under the cap
        urls = [self.up.url("/flaky/capd%d?delay=150" % i) for i in range(3)]
        t0 = time.time()
        status, ans = self.fd.batch({"max_concurrency": 1, "requests": urls})
        self.assertEqual(status, 200, ans)
        self.assertGreaterEqual(time.time() - t0, 0.45)


class Background:
    """fn() on a thread of its own; join() gives its result."""

    def __init__(self, fn):
        self.result = self.error = None
        self.thread = threading.Thread(target=self.run, args=(fn,), daemon=True)
        self.thread.start()

    def run(self, fn):
        try:
            self.result = fn()
        except Exception as e:  # noqa: BLE001 - raised in join()
            self.error = e

    def join(self):
        self.thread.join(60)
        if self.error is not None:
            raise self.error
        return self.result


class CollapseH2(harness.TestCase):
    """Over HTTP/2 the last waiter leaving resets the stream: the
    connection stays for the rest."""
    UPSTREAMS = 0
    FANOUTD = False

    def setUp(self):
        super().setUp()
        self.h2 = self.upstream(extra_args=["--h2"])
        self.fd = self.fanoutd(config='[upstream "%s"]\ncollapse = yes\n'
                               'http2 = prior-knowledge\n' % key_of(self.h2))

    def test_abort_resets_the_stream_and_others_go_on(self):
        leave = self.h2.url("/flaky/h2leave?delay=3000")
        ok = self.h2.url("/flaky/h2ok?delay=300")
        answers = at_once(
            [lambda: self.fd.batch({"timeout_ms": 200, "requests": [leave]})
             for _ in range(5)] +
            [lambda: self.fd.batch([ok]) for _ in range(5)])
        for status, ans in answers[:5]:
            self.assertEqual(status, 502, ans)
        for status, ans in answers[5:]:
            self.assertEqual(status, 200, ans)
            self.assertEqual(ans["results"][0]["protocol"], "h2")
            self.assertIs(ans["results"][0]["shared"], True)
        self.assertEqual(count(self.h2, "h2leave")["count"], 1)
        self.assertEqual(count(self.h2, "h2ok")["count"], 1)
        self.assertTrue(harness.wait_until(
            lambda: self.h2.stats()["rst_received"] >= 1, 3), self.h2.stats())
        self.assertEqual(self.h2.stats()["h2_connections"], 1)


if __name__ == "__main__":
    harness.main()
