"""Limits shared by a fleet through Redis (SPEC section 13, issue 19): a
redis-server started by the test on a loopback port (harness.RedisServer),
two or three fanoutd with the same config, each on its own port, and the
test upstream:

  - concurrency: `concurrency = 5` with `shared = yes`, 100 URLs sent to
    each of two daemons at once: never more than 5 in flight at the
    upstream in total, all 200 succeed, the leases are released;
  - rate: `rate = 20/s`, `burst = 5` shared by three daemons sending 40
    each together: ≤ 20/s at the upstream over any 3 s (± one burst), not
    60/s (arrival times from /flaky/KEY and /count/KEY);
  - Redis stopped mid-run (SIGSTOP, then SIGKILL): no batch fails, each
    daemon falls back to its own limit of 5 (so the fleet may exceed 5),
    `fanoutd_redis_up 0`, one log line; Redis restarted on the same port →
    `fanoutd_redis_up 1` and the fleet is held to 5 again;
  - a daemon SIGKILLed while holding the 5 leases: another daemon gets the
    slots once they expire (`[redis] lease = 1s`): after ~1 s, not at once
    and not never;
  - an upstream without `shared = yes` sends Redis nothing (INFO
    commandstats and `fanoutd_redis_commands_total` unchanged, but for a
    PING), while a shared one sends EVALSHA; /v1/upstreams says which is
    shared.

The upstream and the test share one wall clock (same machine)."""

import http.client
import json
import os
import signal
import sys
import time
import uuid

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Background, count, in_threads, key_of  # noqa: E402


def metrics(fd):
    """GET /metrics: {sample name: the sum of its samples' values}."""
    status, _, body = fd.request("GET", "/metrics")
    assert status == 200, body
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[s.name] = out.get(s.name, 0) + s.value
    return out


def redis_up(fd):
    return metrics(fd).get("fanoutd_redis_up")


def commands(fd):
    return metrics(fd).get("fanoutd_redis_commands_total")


def upstream_entries(fd):
    status, _, data = fd.request("GET", "/v1/upstreams")
    assert status == 200, data
    return {u["upstream"]: u for u in json.loads(data)["upstreams"]}


def max_in_window(times_ms, window_ms):
    """The most arrivals in any [t, t + window_ms)."""
    times = sorted(times_ms)
    most = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - window_ms:
            j += 1
        most = max(most, i - j + 1)
    return most


class SharedCase(harness.TestCase):
    FANOUTD = False
    PER_TEST = True          # each test its own Redis and its own daemons

    def setUp(self):
        super().setUp()
        self.r = self.redis()
        # not the default "fanoutd:", so the keys show the prefix is used
        self.prefix = "fanoutd-test-%s:" % uuid.uuid4().hex[:8]

    def config(self, sections, lease="2s", timeout="100ms"):
        """[fanoutd] with long timeouts (a request waiting for a shared
        slot or token waits in `queued`) but a short shutdown (a test that
        fails with /hang in flight), [redis] for self.r, then the
        [upstream "..."] sections given as {upstream: body}."""
        text = ("[fanoutd]\nrequest_timeout = 30s\nbatch_timeout = 60s\n"
                "shutdown_timeout = 2s\n\n"
                "[redis]\nurl = %s\nkey_prefix = %s\ntimeout = %s\nlease = %s\n"
                % (self.r.url, self.prefix, timeout, lease))
        for up, body in sections.items():
            text += '\n[upstream "%s"]\n%s' % (key_of(up), body)
        return text

    def daemons(self, n, sections, **kw):
        """n fanoutd with the same config, each Redis-connected."""
        fds = self.fanoutds(n, config=self.config(sections, **kw))
        for fd in fds:
            self.wait_redis_up(fd, 1)
        return fds

    def wait_redis_up(self, fd, value, timeout=5):
        if not harness.wait_until(lambda: redis_up(fd) == value, timeout):
            raise AssertionError("fanoutd_redis_up is %r, not %r after %ss:\n%s"
                                 % (redis_up(fd), value, timeout, fd.read_log()))

    def all_ok(self, results, n):
        for status, ans in results:
            self.assertEqual(status, 200, ans)
            self.assertTrue(ans["ok"], ans)
            self.assertEqual(len(ans["results"]), n)
            self.assertEqual({r["status"] for r in ans["results"]}, {200}, ans)

    def send_each(self, fds, urls_of):
        """Every daemon its batch urls_of(i) at once; (results, seconds)."""
        t0 = time.time()
        res = in_threads([lambda fd=fd, i=i: fd.batch(urls_of(i), timeout=60)
                          for i, fd in enumerate(fds)])
        return res, time.time() - t0

    def lease_sets(self):
        """{key: members} of the sorted sets under our prefix (the leases:
        one per upstream)."""
        out = {}
        for k in self.r.keys(self.prefix + "*"):
            if self.r.command("TYPE", k) == "zset":
                out[k] = self.r.command("ZCARD", k)
        return out

    def leases_held(self):
        return sum(self.lease_sets().values())

    def assert_keys_under_prefix(self, nonempty=True):
        keys = self.r.keys("*")
        if nonempty:
            self.assertTrue(keys, "nothing in Redis")
        self.assertEqual([k for k in keys if not k.startswith(self.prefix)], [], keys)


# --------------------------------------------------------------------------

class Concurrency(SharedCase):

    def test_two_daemons_hold_5_in_flight_in_total(self):
        fds = self.daemons(2, {self.up: "shared = yes\nconcurrency = 5\n"})
        self.up.reset()
        res, took = self.send_each(fds, lambda i: [self.up.url("/delay/50")] * 100)
        self.all_ok(res, 100)
        st = self.up.stats()
        self.assertEqual(st["requests"], 200)
        self.assertLessEqual(st["max_in_flight"], 5, st)
        # 200 x 50 ms through 5 slots: 2 s, not the 1 s of 5 per daemon
        self.assertGreater(took, 1.8)
        self.assertLess(took, 5.0)
        calls = self.r.calls()
        self.assertGreater(calls.get("evalsha", 0), 0, calls)
        # every lease handed back: the sorted set is gone with its last member
        self.assertEqual(self.leases_held(), 0)
        self.assert_keys_under_prefix(nonempty=False)
        for fd in fds:
            self.assertEqual(redis_up(fd), 1)
            self.assertGreater(commands(fd), 0)
            self.assertIs(upstream_entries(fd)[key_of(self.up)]["shared"], True)
        # every lease was handed back
        self.assertTrue(harness.wait_until(lambda: self.leases_held() == 0, 2),
                        self.lease_sets())


class Rate(SharedCase):

    def test_three_daemons_share_20_per_s(self):
        fds = self.daemons(3, {self.up: "shared = yes\nrate = 20/s\nburst = 5\n"
                                        "concurrency = 20\n"})
        self.up.reset()
        res, took = self.send_each(
            fds, lambda i: [self.up.url("/flaky/r%d?fail=0" % i)] * 40)
        self.all_ok(res, 40)
        times = []
        for i in range(3):
            c = count(self.up, "r%d" % i)
            self.assertEqual(c["count"], 40, c)
            times += c["times_ms"]
        self.assertEqual(len(times), 120)
        # GCRA over the fleet: at most 20 a second plus the burst of 5
        self.assertLessEqual(max_in_window(times, 3000), 20 * 3 + 5, sorted(times))
        self.assertLessEqual(max_in_window(times, 1000), 20 + 5 + 2, sorted(times))
        # 5 at once, then 115 at 50 ms: 5.75 s (60/s, a limit per daemon,
        # would take under 2 s)
        span = (max(times) - min(times)) / 1000.0
        self.assertGreater(span, 5.0)
        self.assertLess(span, 9.0)
        self.assertLess(took, 12.0)
        calls = self.r.calls()
        self.assertGreater(calls.get("evalsha", 0), 0, calls)
        self.assert_keys_under_prefix()


class RedisDown(SharedCase):

    def redis_lines(self, fd, offset):
        return [line for line in fd.read_log()[offset:].splitlines()
                if "redis" in line.lower()]

    def run_both(self, fds, tag):
        """100 x 50 ms to each daemon at once, daemon i's under the key
        TAG-i: (results, seconds)."""
        return self.send_each(
            fds, lambda i: [self.up.url("/flaky/%s-%d?delay=50" % (tag, i))] * 100)

    def per_daemon_max(self, tag):
        return [count(self.up, "%s-%d" % (tag, i))["max_in_flight"] for i in range(2)]

    def test_stopped_then_killed_then_restarted(self):
        fds = self.daemons(2, {self.up: "shared = yes\nconcurrency = 5\n"})
        self.up.reset()
        offsets = [len(fd.read_log()) for fd in fds]
        run = Background(lambda: self.run_both(fds, "a"))
        # mid-run: a tenth of the 200 answered, the rest waiting for Redis
        self.assertTrue(harness.wait_until(lambda: self.up.stats()["requests"] >= 20, 10))
        self.assertLess(self.up.stats()["requests"], 150)
        self.assertLessEqual(self.up.stats()["max_in_flight"], 5)
        self.r.pause()
        for fd in fds:
            self.wait_redis_up(fd, 0, timeout=3)
        self.r.kill()
        res, took = run.join()
        self.all_ok(res, 100)
        self.assertEqual(self.up.stats()["requests"], 200)
        # local limits: 5 each
        for m in self.per_daemon_max("a"):
            self.assertLessEqual(m, 5)
        self.assertLessEqual(self.up.stats()["max_in_flight"], 10)
        self.assertLess(took, 10.0)

        # Redis dead: local limits at once, nobody waits for Redis
        self.up.reset()
        res, took = self.run_both(fds, "b")
        self.all_ok(res, 100)
        each = self.per_daemon_max("b")
        for m in each:
            self.assertLessEqual(m, 5)
        # both daemons ran their 5 at once: the fleet is not held to 5
        self.assertGreater(self.up.stats()["max_in_flight"], 5, each)
        self.assertLess(took, 3.0)
        for fd, off in zip(fds, offsets):
            self.assertEqual(redis_up(fd), 0)
            lines = self.redis_lines(fd, off)
            self.assertEqual(len(lines), 1, "not one log line about Redis:\n" + "\n".join(lines))

        # Redis back on the same port (empty: no scripts, no keys): shared again
        self.r.restart()
        for fd in fds:
            self.wait_redis_up(fd, 1, timeout=10)
        self.up.reset()
        res, took = self.run_both(fds, "c")
        self.all_ok(res, 100)
        st = self.up.stats()
        self.assertEqual(st["requests"], 200)
        self.assertLessEqual(st["max_in_flight"], 5, st)
        self.assertGreater(took, 1.8)
        calls = self.r.calls()
        self.assertGreater(calls.get("evalsha", 0), 0, calls)
        for fd in fds:
            self.assertEqual(redis_up(fd), 1)


class DeadDaemon(SharedCase):

    def test_its_leases_expire_and_go_to_the_others(self):
        a, b = self.daemons(2, {self.up: "shared = yes\nconcurrency = 5\n"}, lease="1s")
        self.up.reset()
        hang = Background(lambda: a.batch([self.up.url("/hang")] * 5, timeout=60))
        self.assertTrue(harness.wait_until(lambda: self.up.stats()["in_flight"] == 5, 5),
                        self.up.stats())
        held = self.lease_sets()
        self.assertEqual(list(held.values()), [5], held)   # one upstream, 5 leases
        a.proc.send_signal(signal.SIGKILL)
        t_kill = time.time()
        self.assertEqual(a.wait_exit(), -signal.SIGKILL)
        with self.assertRaises((OSError, http.client.HTTPException)):
            hang.join()   # its client saw the connection die
        self.assertTrue(harness.wait_until(lambda: self.up.stats()["in_flight"] == 0, 5))
        status, ans = b.batch([self.up.url("/json")] * 5, timeout=60)
        took = time.time() - t_kill
        self.assertEqual(status, 200, ans)
        self.assertEqual({r["status"] for r in ans["results"]}, {200}, ans)
        # the dead daemon's leases ran out ~1 s after it took them (1.5 s
        # if it renewed them at half-life): not at once, not never
        self.assertGreater(took, 0.5)
        self.assertLess(took, 3.0)
        self.assertGreater(min(r["timing"]["queued_ms"] for r in ans["results"]), 300, ans)
        self.assertEqual(self.up.stats()["requests"], 10)
        self.assertEqual(redis_up(b), 1)
        self.assertTrue(harness.wait_until(lambda: self.leases_held() == 0, 2),
                        self.lease_sets())


class Reload(SharedCase):

    def test_sighup_moves_to_a_new_redis_without_dropping_work(self):
        up = self.upstream()
        fd = self.daemons(1, {up: "concurrency = 5\nshared = yes\n"})[0]
        slow = Background(lambda: fd.batch([up.url("/delay/600?i=%d" % i) for i in range(5)],
                                           timeout=30))
        self.assertTrue(harness.wait_until(lambda: up.stats()["in_flight"] == 5, 5))
        old, self.r = self.r, self.redis()
        fd.reload(self.config({up: "concurrency = 5\nshared = yes\n"}))
        self.wait_redis_up(fd, 1)
        status, ans = slow.join()                   # the work under way finished
        self.assertEqual(status, 200, ans)
        self.assertTrue(ans["ok"], ans)
        before = old.calls().get("evalsha", 0)
        status, ans = fd.batch([up.url("/json?i=%d" % i) for i in range(5)], timeout=30)
        self.assertEqual(status, 200, ans)
        self.assertTrue(ans["ok"], ans)
        self.assertGreater(self.r.calls().get("evalsha", 0), 0)   # on the new Redis
        self.assertEqual(old.calls().get("evalsha", 0), before)   # not the old one


class HostName(SharedCase):
    """A host name in [redis] url is looked up without blocking the loop."""

    def named(self, host):
        return self.config({self.up1: "concurrency = 5\nshared = yes\n"}).replace(
            self.r.url, "redis://%s:%d/0" % (host, self.r.port))

    def setUp(self):
        super().setUp()
        self.up1 = self.upstream()

    def test_localhost_by_name(self):
        fd = self.fanoutd(config=self.named("localhost"))
        self.wait_redis_up(fd, 1)
        status, ans = fd.batch([self.up1.url("/json?i=%d" % i) for i in range(10)])
        self.assertEqual(status, 200, ans)
        self.assertGreater(self.r.calls().get("evalsha", 0), 0)

    def test_a_name_that_does_not_resolve_means_local_limits(self):
        fd = self.fanoutd(config=self.named("no-such-redis.invalid"))
        self.wait_redis_up(fd, 0)
        t0 = time.time()
        status, ans = fd.batch([self.up1.url("/json?i=%d" % i) for i in range(10)])
        self.assertEqual(status, 200, ans)            # never a failure because of Redis
        self.assertTrue(ans["ok"], ans)
        self.assertLess(time.time() - t0, 2.0)
        self.assertIn("no-such-redis.invalid", fd.read_log())


class Unshared(SharedCase):
    UPSTREAMS = 2

    def test_an_unshared_upstream_sends_redis_nothing(self):
        shared, plain = self.up, self.up2
        fd, = self.daemons(1, {shared: "shared = yes\nconcurrency = 5\n",
                               plain: "concurrency = 5\nrate = 100/s\nburst = 5\n"})
        # whatever connecting took (SCRIPT LOAD, ...) is done
        time.sleep(0.3)
        before, m_before = self.r.calls(), commands(fd)
        status, ans = fd.batch([plain.url("/json?i=%d" % i) for i in range(20)])
        self.assertEqual(status, 200, ans)
        time.sleep(0.3)
        m_after, after = commands(fd), self.r.calls()
        # INFO is this test's own
        diff = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)
                if k not in ("info", "ping") and after.get(k, 0) != before.get(k, 0)}
        self.assertEqual(diff, {}, "an unshared upstream's batch sent Redis commands")
        pings = after.get("ping", 0) - before.get("ping", 0)
        self.assertLessEqual(m_after - m_before, pings, (m_before, m_after, pings))
        self.assertEqual(plain.stats()["requests"], 20)

        # the shared one does use Redis
        status, ans = fd.batch([shared.url("/json?i=%d" % i) for i in range(20)])
        self.assertEqual(status, 200, ans)
        calls = self.r.calls()
        self.assertGreater(calls.get("evalsha", 0), after.get("evalsha", 0), calls)
        self.assertGreater(commands(fd), m_after)
        entries = upstream_entries(fd)
        self.assertIs(entries[key_of(shared)]["shared"], True)
        self.assertIs(entries[key_of(plain)]["shared"], False)


if __name__ == "__main__":
    harness.main()
