"""Soak: many upstream requests through one fanoutd against the test
upstream, HTTP/1.1 and HTTP/2 (h2c) mixed in every batch, retries and the
circuit breaker on, identical requests of concurrent clients collapsed and
slow ones hedged (a fixed delay over HTTP/1.1, the p95 over h2), with a mix of
successes, failures, hangs, resets (of connections and of streams),
garbage, large and chunked bodies, from concurrent clients, some of which
hang up mid-batch.  Asserts that every client got a whole, well-formed answer,
that RSS and open descriptors come back to what they were after warm-up,
and that the per-upstream limit was never exceeded.  Not part of
`make check` (see `make soak`); prints its figures.

    tests/soak.py [--requests N] [--clients C]"""

import argparse
import json
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

LIMIT = 20
BATCH = 500
MIX = [("/json", 60), ("/status/500", 8), ("/hang", 2), ("/reset", 4), ("/garbage", 3),
       ("/bytes/100000", 4), ("/chunked", 5), ("/delay/5", 10), ("/binary", 4)]
# what the test upstream's h2 mode serves, and its stream resets
MIX_H2 = [("/json", 60), ("/status/500", 8), ("/hang", 2), ("/rst/2", 4),
          ("/rst-after-head/2", 3), ("/bytes/100000", 4), ("/delay/5", 10)]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def make_batch(ups, rng):
    paths = [[p for p, w in MIX for _ in range(w)], [p for p, w in MIX_H2 for _ in range(w)]]
    reqs = []
    for i in range(BATCH):
        k = rng.randrange(2)
        p = rng.choice(paths[k])
        url = ups[k].url(p + ("&" if "?" in p else "?") + "i=%d" % i)
        reqs.append({"url": url, "timeout_ms": 200} if p == "/hang" else url)
    return {"mode": "settled" if rng.random() < 0.8 else "all", "requests": reqs}


def check_answer(status, ans, n):
    assert status in (200, 502), (status, ans)
    if "results" in ans:
        assert [r["index"] for r in ans["results"]] == list(range(n)), "results out of order"
    else:
        idx = [e["index"] for e in ans["errors"]] + ans["completed"] + ans["cancelled"]
        assert sorted(idx) == list(range(n)), "indices not covered exactly once"


def hang_up(fd, payload, rng):
    """Send a batch and go away before the answer."""
    s = socket.create_connection(("127.0.0.1", fd.port))
    body = json.dumps(payload).encode()
    s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    time.sleep(rng.uniform(0.0, 0.05))
    s.close()


def run(fd, ups, total, clients, seed):
    """Send batches until about total requests went out; returns counts."""
    lock = threading.Lock()
    state = {"sent": 0, "answers": 0, "hangups": 0, "errors": []}

    def client(k):
        rng = random.Random(seed * 1000 + k)
        while True:
            with lock:
                if state["sent"] >= total or state["errors"]:
                    return
                state["sent"] += BATCH
            payload = make_batch(ups, rng)
            try:
                if rng.random() < 0.05:
                    hang_up(fd, payload, rng)
                    with lock:
                        state["hangups"] += 1
                    continue
                status, ans = fd.batch(payload, timeout=60)
                check_answer(status, ans, BATCH)
                with lock:
                    state["answers"] += 1
            except Exception as e:  # noqa: BLE001 - reported by the caller
                with lock:
                    state["errors"].append(repr(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return state


def settle(fd):
    """Wait until fanoutd has nothing in flight."""
    deadline = time.time() + 10
    while time.time() < deadline:
        status, _, data = fd.request("GET", "/v1/upstreams")
        ups = json.loads(data)["upstreams"]
        if all(u["in_flight"] == 0 and u["queued"] == 0 for u in ups):
            return ups
        time.sleep(0.1)
    raise AssertionError("fanoutd did not settle")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-rss-check", action="store_true",
                    help="under ASan: its quarantine keeps freed memory on purpose "
                         "(LeakSanitizer checks leaks at exit instead)")
    args = ap.parse_args()

    up = harness.Upstream()
    up2 = harness.Upstream(extra_args=["--h2"])
    ups_ = [up, up2]
    fd = harness.Fanoutd(config="[fanoutd]\nupstream_concurrency = %d\nrequest_timeout = 2s\n"
                                "access_log = no\nkeepalive_timeout = 30s\n"
                                # retries, their budget and the breaker under load
                                "retries = 1\nretry_backoff = 5ms\n"
                                "retry_on = connect, timeout, 500, 503\n"
                                "breaker_failures = 4\nbreaker_cooldown = 50ms\n"
                                "[upstream \"http://127.0.0.1:%d\"]\n"
                                "collapse = yes\nhedge_after = 3ms\n"
                                "[upstream \"http://127.0.0.1:%d\"]\nhttp2 = prior-knowledge\n"
                                "collapse = yes\nhedge_after = p95\n"
                                % (LIMIT, up.port, up2.port))
    ok = False
    try:
        t0 = time.time()
        warm = run(fd, ups_, max(args.requests // 10, BATCH), args.clients, args.seed)
        assert not warm["errors"], warm["errors"][:3]
        idle0 = sum(u["idle_connections"] for u in settle(fd))
        rss0, fds0 = rss_kib(fd.proc.pid), nfds(fd.proc.pid)
        state = run(fd, ups_, args.requests, args.clients, args.seed + 1)
        assert not state["errors"], state["errors"][:3]
        ups = settle(fd)
        took = time.time() - t0
        rss1, fds1 = rss_kib(fd.proc.pid), nfds(fd.proc.pid)
        st = up.stats()
        st2 = up2.stats()
        h2 = [u for u in ups if u["upstream"].endswith(":%d" % up2.port)][0]
        print("soak: %d requests sent in %.1f s (%d answers, %d hang-ups, %d clients)"
              % (warm["sent"] + state["sent"], took, warm["answers"] + state["answers"],
                 warm["hangups"] + state["hangups"], args.clients))
        print("soak: RSS after warm-up %d KiB, at the end %d KiB; fds %d -> %d; "
              "idle upstream connections %d; upstream max in flight %d and %d over h2 "
              "(limit %d); h2: %d connections opened, %d streams at most on one"
              % (rss0, rss1, fds0, fds1, sum(u["idle_connections"] for u in ups),
                 st["max_in_flight"], st2["max_in_flight"], LIMIT,
                 h2["connections_opened"], st2["streams_max_per_conn"]))
        _, _, metrics = fd.request("GET", "/metrics")
        sums = {}
        for line in metrics.decode().splitlines():
            for fam in ("fanoutd_upstream_retries_total", "fanoutd_upstream_breaker_trips_total",
                        "fanoutd_upstream_retry_budget_exhausted_total",
                        "fanoutd_upstream_collapsed_total", "fanoutd_upstream_hedges_total",
                        "fanoutd_upstream_hedges_won_total"):
                if line.startswith(fam + "{"):
                    sums[fam] = sums.get(fam, 0) + float(line.rsplit(" ", 1)[1])
        print("soak: %d retries made, %d not made (budget), breaker opened %d times"
              % (sums.get("fanoutd_upstream_retries_total", 0),
                 sums.get("fanoutd_upstream_retry_budget_exhausted_total", 0),
                 sums.get("fanoutd_upstream_breaker_trips_total", 0)))
        print("soak: %d requests collapsed into others; %d hedges sent, %d won"
              % (sums.get("fanoutd_upstream_collapsed_total", 0),
                 sums.get("fanoutd_upstream_hedges_total", 0),
                 sums.get("fanoutd_upstream_hedges_won_total", 0)))
        assert sums.get("fanoutd_upstream_retries_total", 0) > 0, "no retry was made"
        assert sums.get("fanoutd_upstream_collapsed_total", 0) > 0, "nothing was collapsed"
        assert sums.get("fanoutd_upstream_hedges_total", 0) > 0, "nothing was hedged"
        assert st["max_in_flight"] <= LIMIT, "per-upstream limit exceeded"
        assert st2["max_in_flight"] <= LIMIT, "per-upstream limit exceeded (h2)"
        assert h2["protocol"] == "h2", h2
        if not args.no_rss_check:
            assert rss1 - rss0 < 8 * 1024, "RSS grew by %d KiB" % (rss1 - rss0)
        # the idle keep-alive connections to the upstream are the only
        # descriptors that may differ (up to the limit, by design)
        idle1 = sum(u["idle_connections"] for u in ups)
        assert fds1 - idle1 <= fds0 - idle0 + 2, \
            "descriptors grew from %d (%d idle) to %d (%d idle)" % (fds0, idle0, fds1, idle1)
        assert all(u["idle_connections"] <= LIMIT for u in ups)
        ok = True
    finally:
        fd.stop()
        up.stop()
        up2.stop()
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
