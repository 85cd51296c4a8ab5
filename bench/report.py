#!/usr/bin/python3
"""Write bench/RESULTS.md from what bench/run measured: report.py DIR

DIR holds raw.tsv (one line per run), fanoutd_stats.tsv (per scenario:
idle RSS, VmHWM, RSS after, connections_opened, tls_handshakes),
machine.txt and commands.txt.  The Markdown goes to stdout.  Scenarios
that did not run (bench/run --only) are left out.
"""
import csv
import os
import statistics
import sys

SCEN = {
    "LAT": ("1,000 × /delay/20 (20 ms each), C=100", 1000),
    "THR": ("20,000 × /fast (~100 B JSON), C=64", 20000),
    "SHARED": ("THR with `shared = yes` on the nginx upstream (`concurrency = 64` held in one local Redis), "
               "20,000 × /fast, C=64", 20000),
    "KB": ("10,000 × /kb (1 KiB), C=64", 10000),
    "SMALL": ("10 × /fast, C=10, whole call from a shell", 10),
    "THR-H2": ("20,000 × /fast over https, HTTP/2 (fanoutd `http2 = auto`), C=64", 20000),
    "THR-TLS": ("20,000 × /fast over https, HTTP/1.1 (fanoutd `http2 = no`), C=64", 20000),
    "STREAM": ("100,000 × /kb (1 KiB) streamed as NDJSON through `fanout -o ndjson > /dev/null`, C=64",
               100000),
    "TAIL": ("1,000 × the test upstream's /tail/KEY (2 % of the attempts 200 ms slower), C=100", 1000),
    "COLLAPSE": ("8 clients at once × the same 1,000 × the test upstream's /delay/50, C=100", 1000),
}
# issue 21's rows: each a fanoutd config (bench/run starts them side by side)
# or a peer; COLLAPSE's times are the 8 clients', from their release
TAIL_TOOLS = ["fanoutd-notail", "fanoutd-tail", "fanoutd-hedge", "fanoutd-p95", "httpx", "aiohttp", "curl", "node"]
COLLAPSE_TOOLS = ["fanoutd-collapse", "fanoutd-nocollapse"]
H1_SCEN = ("LAT", "THR", "KB", "SMALL")   # issue 9's, plain http
TLS_SCEN = ("THR-H2", "THR-TLS")          # issue 16's, the https server
TOOLS = ["fanoutd", "fanout", "first-line", "httpx", "aiohttp", "curl", "node", "wrk", "h2load", "floor"]
LABEL = {
    "fanoutd": "**fanoutd** (one `curl` per batch)",
    "httpx": "httpx.AsyncClient + TaskGroup + Semaphore",
    "aiohttp": "aiohttp.ClientSession + TaskGroup + Semaphore",
    "curl": "`curl --parallel --parallel-max C`",
    "node": "Node fetch + Promise.all + limiter",
    "wrk": "the limit: wrk straight at nginx",
    "h2load": "the limit: `h2load -c1 -m64` at nginx /fast (h2, one connection)",
    "floor": "the floor: `curl` → fanoutd GET /healthz",
    "fanout": "**`fanout -o ndjson < urls > /dev/null`** (the whole command)",
    "first-line": "bench/first_line.py (the same batch, NDJSON, raw socket)",
    "fanoutd-notail": "fanoutd, no hedging, **no tail** (every=1000000: the reference)",
    "fanoutd-tail": "fanoutd, no hedging, the tail",
    "fanoutd-hedge": "**fanoutd `hedge_after = 75ms`**, the tail",
    "fanoutd-p95": "**fanoutd `hedge_after = p95`**, the tail",
    "fanoutd-collapse": "**fanoutd `collapse = yes`**",
    "fanoutd-nocollapse": "fanoutd `collapse = no`",
}


def label(s, t):
    if t == "wrk":
        return {"LAT": "the limit: `wrk -t1 -c100` at nginx /delay/20",
                "THR": "the limit: `wrk -t1 -c64` at nginx /fast",
                "KB": "the limit: `wrk -t1 -c64` at nginx /kb",
                "THR-TLS": "the limit: `wrk -t1 -c64` at nginx https /fast (HTTP/1.1)"}.get(s, LABEL[t])
    if s == "THR-H2" and t == "httpx":
        return "httpx.AsyncClient(http2=True) + TaskGroup + Semaphore"
    if s == "THR-H2" and t == "curl":
        return "`curl --parallel --parallel-max 64 --http2`"
    return LABEL[t]
LAT_IDEAL = 200.0


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def parse_extra(r):
    """The extra column: key=value;key=value -> dict"""
    out = {}
    for kv in (r.get("extra") or "").split(";"):
        k, eq, v = kv.partition("=")
        if eq:
            out[k] = v
    return out


def load(d):
    with open(os.path.join(d, "raw.tsv")) as f:
        raw = list(csv.DictReader(f, delimiter="\t"))
    with open(os.path.join(d, "fanoutd_stats.tsv")) as f:
        fst = {r["scenario"]: r for r in csv.DictReader(f, delimiter="\t")}
    machine = {}
    with open(os.path.join(d, "machine.txt")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            machine[k] = v
    with open(os.path.join(d, "commands.txt")) as f:
        commands = f.read().rstrip("\n")
    return raw, fst, machine, commands


class Stat:
    """The runs of one tool in one scenario."""

    def __init__(self, scen, tool, rows):
        self.scen, self.tool = scen, tool
        self.runs = len(rows)
        ok = [r for r in rows if r["ok"] == "1"]
        self.ok = len(ok)
        n = SCEN[scen][1]
        if tool in ("wrk", "h2load"):
            # as long as wrk's rate would take for the scenario's N requests
            self.rps = [num(r["rps"]) for r in ok if num(r["rps"])]
            self.times = [n / x * 1000 for x in self.rps]
        else:
            # the time that counts: fanoutd -> the whole curl call; a peer ->
            # its own fan-out time (start-up excluded), except SMALL where
            # the whole process is what a shell script pays
            key = ("wall_ms" if tool in ("fanoutd", "floor", "fanout", "first-line") or scen == "SMALL"
                   or tool.startswith("fanoutd-") else "inner_ms")
            self.times = [num(r[key]) for r in ok if num(r[key]) is not None]
            self.rps = [n / (t / 1000) for t in self.times if t > 0]
        self.wall = [num(r["wall_ms"]) for r in ok if num(r["wall_ms"]) is not None]
        self.inner = [num(r["inner_ms"]) for r in ok if num(r["inner_ms"]) is not None]
        self.rss = [num(r["rss_kb"]) for r in ok if num(r["rss_kb"])]
        self.conns = [int(r["conns"]) for r in ok if r["conns"].lstrip("-").isdigit()]
        self.cpu = [num(r.get("cpu_ms")) for r in ok if num(r.get("cpu_ms")) is not None]
        # fanoutd's own counters (GET /v1/upstreams), run by run
        self.f_opened = [int(r["f_opened"]) for r in ok if (r.get("f_opened") or "").isdigit()]
        self.f_hs = [int(r["f_handshakes"]) for r in ok if (r.get("f_handshakes") or "").isdigit()]
        self.f_open = [int(r["f_open"]) for r in ok if (r.get("f_open") or "").isdigit()]
        self.extra = [parse_extra(r) for r in ok]   # run by run

    def ex(self, key):
        """extra's key, run by run, as numbers (runs without it left out)"""
        return [v for v in (num(e.get(key)) for e in self.extra) if v is not None]

    def tmin(self):
        return min(self.times) if self.times else None

    def tmed(self):
        return statistics.median(self.times) if self.times else None

    def rps_med(self):
        return statistics.median(self.rps) if self.rps else None


def f_ms(x):
    if x is None:
        return "—"
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def f_rps(x):
    return "—" if x is None else f"{x:,.0f}"


def f_mib(kb):
    return "—" if kb is None else f"{kb / 1024:.1f} MiB"


def f_x(x):
    return "—" if x is None else (f"{x:.2f}×" if x < 10 else f"{x:.0f}×")


def main():
    d = sys.argv[1]
    raw, fst, m, commands = load(d)
    st = {}
    for s in SCEN:
        for t in TOOLS + [x for x in TAIL_TOOLS + COLLAPSE_TOOLS if x not in TOOLS]:
            rows = [r for r in raw if r["scenario"] == s and r["tool"] == t]
            if rows:
                st[s, t] = Stat(s, t, rows)

    def speedup(s, t):
        """how many times faster fanoutd is than tool t in scenario s (>1: fanoutd faster)"""
        f, o = st.get((s, "fanoutd")), st.get((s, t))
        if not f or not o or f.rps_med() is None or o.rps_med() is None:
            return None
        return f.rps_med() / o.rps_med()

    def fanoutd_rss(s, key="hwm_kb"):
        return num(fst.get(s, {}).get(key))

    out = []
    w = out.append
    quick = m.get("quick") == "1"
    w("# fanoutd benchmark results")
    w("")
    w(f"Written by `bench/run{' --quick' if quick else ''}` on {m.get('date')}. "
      "Rerun with `make bench` or `bench/run` (see the README's Benchmark section).")
    w("")
    w(f"- machine: {m.get('nproc')} CPUs (`nproc`), {m.get('cpu')}, {m.get('mem')}, {m.get('kernel')}; "
      f"every process (nginx, fanoutd, the peers, the client) shares it; load average "
      f"{m.get('load')}")
    ran = [s for s in SCEN if any(k[0] == s for k in st)]
    h1_ran = [s for s in H1_SCEN if s in ran]
    tls_ran = [s for s in TLS_SCEN if s in ran]
    stream_ran = "STREAM" in ran
    kb_ref = m.get("kb_ref") == "1"
    thr_ref = m.get("thr_ref") == "1"
    if kb_ref and h1_ran == ["KB"]:
        h1_ran = []   # KB only as STREAM's reference: no issue 9 tables
    if thr_ref and h1_ran == ["THR"]:
        h1_ran = []   # THR only as SHARED's reference: no issue 9 tables
    shared_ran = "SHARED" in ran
    extra = ""
    if tls_ran:
        extra = f"; {m.get('h2load', 'h2load')}; python3-{m.get('python_h2', 'h2')}; {m.get('openssl', 'OpenSSL')}"
    if stream_ran:
        extra += f"; {m.get('fanout', 'fanout')}"
    if shared_ran:
        extra += f"; {m.get('redis', 'redis-server')}"
    w(f"- {m.get('fanoutd')}; {m.get('nginx')} with 1 worker; {m.get('python')}; "
      f"Node {m.get('node')}; {m.get('curl')}; {m.get('wrk')}{extra}")
    asked = m.get("scenarios", "").split()
    if asked and len(asked) < len(SCEN):
        w(f"- only the scenarios {', '.join(asked)} ran (`bench/run --only`)"
          + ("; KB with fanoutd alone, as STREAM's reference" if kb_ref else "")
          + ("; THR with fanoutd alone, as SHARED's reference" if thr_ref else ""))
    w(f"- each scenario: {m.get('reps')} rounds (SMALL: {m.get('small_reps')}), every tool once a round, "
      "interleaved, each round starting with the next tool; min and median over the rounds; "
      "fanoutd restarted for each scenario (so its first run there starts with no connections)")
    w("")
    if h1_ran:
        summary_h1(w, st, speedup, fanoutd_rss)
    if tls_ran:
        summary_tls(w, st, speedup, fanoutd_rss, m)
    if stream_ran:
        summary_stream(w, st, fanoutd_rss)
    ran21 = [s for s in ("TAIL", "COLLAPSE") if s in ran]
    if ran21:
        summary_21(w, st, m)
    if shared_ran:
        summary_shared(w, st, fanoutd_rss)
    per_scenario(w, st, speedup, fanoutd_rss, fst, m)
    if h1_ran:
        targets_9(w, st, fst, fanoutd_rss)
    if tls_ran:
        targets_16(w, st, fst)
    if stream_ran:
        targets_18(w, st, fanoutd_rss)
    if shared_ran:
        targets_19(w, st)
    if ran21:
        targets_21(w, st)
    how_measured(w, h1_ran, tls_ran, stream_ran, ran21, m)
    w("## Exact commands")
    w("")
    w("```")
    w(commands)
    w("```")
    print("\n".join(out))


def summary_h1(w, st, speedup, fanoutd_rss):
    w("## Summary (medians; in brackets: how many times faster fanoutd is)")
    w("")
    w("| tool | LAT ms | THR req/s | KB ms | SMALL ms | peak RSS THR | peak RSS KB | CPU ms THR |")
    w("| --- | --: | --: | --: | --: | --: | --: | --: |")
    for t in TOOLS:
        if not any((s, t) in st for s in H1_SCEN):
            continue
        cells = []
        for s in H1_SCEN:
            x = st.get((s, t))
            if x is None:
                cells.append("—")
                continue
            v = f_rps(x.rps_med()) if s == "THR" else f_ms(x.tmed())
            if t == "fanoutd":
                cells.append(f"**{v}**")
            elif t in ("wrk", "floor"):
                sp = speedup(s, t)
                if t == "wrk" and s == "LAT":
                    v = f"≈ {v}"
                cells.append(f"{v} (fanoutd = {sp * 100:.0f} %)" if sp and s == "THR" else v)
            else:
                cells.append(f"{v} ({f_x(speedup(s, t))})")
        for s in ("THR", "KB"):
            x = st.get((s, t))
            kb = fanoutd_rss(s) if t == "fanoutd" else (max(x.rss) if x and x.rss else None)
            cells.append(f_mib(kb))
        x = st.get(("THR", t))
        cells.append(f"{statistics.median(x.cpu):,.0f}" if x and x.cpu else "—")
        name = "the limit: `wrk` straight at nginx (LAT: ≈ time for 1,000)" if t == "wrk" else LABEL[t]
        w(f"| {name} | " + " | ".join(cells) + " |")
    w("")
    w("Times are what the caller waits: for fanoutd the whole `curl` call (process start to "
      "answer written to a file); for a peer its own fan-out time, from creating the client to "
      "the last body collected, interpreter start-up and imports **excluded** (in SMALL the "
      "whole process, start-up included, because that is what a shell script pays). "
      "THR req/s = 20,000 / time. The limit (wrk straight at nginx, no fan-out layer, "
      "with the scenario's concurrency) is shown as req/s and as the time its rate needs "
      "for the scenario's N requests. The floor is a `curl` to fanoutd that runs no batch. Peak RSS: peers and wrk `/usr/bin/time -v` "
      "(Maximum resident set size); fanoutd VmHWM of the daemon over the scenario.")
    w("")


def per_run(xs):
    return "/".join(str(c) for c in xs) if xs else "—"


def cap(text):
    return text[:1].upper() + text[1:]


def h2_note(m):
    """What fanoutd spoke in THR-H2, as far as the config can tell."""
    if m.get("http2_key") == "no":
        return ("this fanoutd does not take the upstream key `http2`, so bench/run left it out "
                "(BENCH_HTTP2_KEY): its THR-H2 runs are HTTP/1.1 over TLS, like THR-TLS, "
                "with up to 64 connections")
    return "fanoutd's config has `http2 = auto` (THR-H2) and `http2 = no` (THR-TLS)"


def summary_tls(w, st, speedup, fanoutd_rss, m):
    w("## Summary, https to nginx (issue 16; medians; in brackets: how many times faster fanoutd is)")
    w("")
    w("| tool | THR-H2 req/s | THR-TLS req/s | TCP conns per run, THR-H2 | TCP conns per run, THR-TLS "
      "| peak RSS THR-H2 | CPU ms THR-H2 |")
    w("| --- | --: | --: | --: | --: | --: | --: |")
    for t in TOOLS:
        if not any((s, t) in st for s in TLS_SCEN):
            continue
        cells = []
        for s in TLS_SCEN:
            x = st.get((s, t))
            if x is None:
                cells.append("—")
                continue
            v = f_rps(x.rps_med())
            sp = speedup(s, t)
            if t == "fanoutd":
                cells.append(f"**{v}**")
            elif t in ("wrk", "h2load"):
                cells.append(f"{v} (fanoutd = {sp * 100:.0f} %)" if sp else v)
            else:
                cells.append(f"{v} ({f_x(sp)})")
        for s in TLS_SCEN:
            x = st.get((s, t))
            if x is None or not x.conns:
                cells.append("—")
            elif t == "fanoutd":
                cells.append(per_run(x.conns))
            else:
                cells.append(f"{statistics.median(x.conns):.0f}")
        x = st.get(("THR-H2", t))
        kb = fanoutd_rss("THR-H2") if t == "fanoutd" else (max(x.rss) if x and x.rss else None)
        cells.append(f_mib(kb))
        cells.append(f"{statistics.median(x.cpu):,.0f}" if x and x.cpu else "—")
        name = label("THR-H2", t) if ("THR-H2", t) in st else label("THR-TLS", t)
        if t == "wrk":
            name = "the limit: `wrk -t1 -c64` at nginx https (HTTP/1.1)"
        w(f"| {name} | " + " | ".join(cells) + " |")
    w("")
    w("The same nginx worker, a second server block: `listen … ssl http2`, a self-signed "
      "P-256 certificate made for the run (fanoutd and the peers verify against it as their "
      "CA file), `keepalive_requests 100000`, `http2_max_concurrent_streams 128`. THR-H2: "
      "httpx (`http2=True`) and curl (`--http2`) are the peers; aiohttp and Node's fetch do "
      "not speak HTTP/2, so they are not in it. The limit is h2load, 64 streams on one "
      "connection; THR-TLS (fanoutd with `http2 = no` beside it, to show what h2 saves) "
      f"has wrk over https as its limit. {cap(h2_note(m))}. fanoutd's conns are "
      "run by run (round 1 first).")
    w("")


def per_scenario(w, st, speedup, fanoutd_rss, fst, m):
    for s, (desc, n) in SCEN.items():
        if not any(k[0] == s for k in st):
            continue
        if s == "STREAM":
            stream_section(w, st, fanoutd_rss, desc)
            continue
        if s in ("TAIL", "COLLAPSE"):
            section_21(w, st, s, desc)
            continue
        w(f"## {s}: {desc}")
        w("")
        w("| tool | ok runs | min ms | median ms | median req/s | whole process, median ms "
          "| fanoutd's own elapsed_ms, median (wrk, h2load: mean latency) | CPU ms, median "
          "| peak RSS | TCP conns to nginx per run | fanoutd faster by |")
        w("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
        for t in TOOLS:
            x = st.get((s, t))
            if x is None:
                continue
            if t == "fanoutd":
                rss = fanoutd_rss(s)
                inner = f_ms(statistics.median(x.inner)) if x.inner else "—"
                if len(x.conns) <= 6:
                    conns = per_run(x.conns)
                else:
                    conns = f"{x.conns[0]}, then {sum(x.conns[1:])} in {len(x.conns) - 1} runs"
                ratio = "—"
            else:
                rss = max(x.rss) if x.rss else None
                inner = "—"
                if t in ("wrk", "h2load") and x.inner:
                    inner = f"mean latency {statistics.median(x.inner):.2f}"
                conns = f"{statistics.median(x.conns):.0f}" if x.conns else "—"
                sp = speedup(s, t)
                ratio = (f"fanoutd = {sp * 100:.0f} % of it" if t in ("wrk", "h2load") and sp else f_x(sp))
                if t == "floor":
                    ratio = "—"
            whole = f_ms(statistics.median(x.wall)) if x.wall and t not in ("wrk", "h2load") else "—"
            cpu = f"{statistics.median(x.cpu):,.0f}" if x.cpu else "—"
            w(f"| {label(s, t)} | {x.ok}/{x.runs} | {f_ms(x.tmin())} | {f_ms(x.tmed())} "
              f"| {f_rps(x.rps_med())} | {whole} | {inner} | {cpu} | {f_mib(rss)} | {conns} | {ratio} |")
        if s == "LAT":
            f = st.get((s, "fanoutd"))
            if f and f.tmed():
                w("")
                w(f"Ideal: 1,000 / 100 × 20 ms = 200 ms; fanoutd's median is "
                  f"{f.tmed() / LAT_IDEAL:.3f} × ideal.")
            lim = st.get((s, "wrk"))
            if lim and lim.tmed() and lim.inner:
                w(f"nginx itself, at 100 concurrent /delay/20 (wrk), answers in "
                  f"{statistics.median(lim.inner):.2f} ms on average: 10 waves of that take "
                  f"{lim.tmed():.0f} ms, the real floor for this scenario.")
        if s == "SMALL":
            f, fl = st.get((s, "fanoutd")), st.get((s, "floor"))
            if f and fl and f.tmed() and fl.tmed():
                w("")
                w(f"Of fanoutd's {f.tmed():.1f} ms, {fl.tmed():.1f} ms is what any `curl` call "
                  f"to it costs (process start, connect, one request); the batch adds "
                  f"{f.tmed() - fl.tmed():.1f} ms.")
        if s == "THR-H2":
            w("")
            w(f"Not in it: aiohttp and Node's fetch (no HTTP/2). {cap(h2_note(m))}.")
        if s == "KB" and m.get("kb_ref") == "1":
            w("")
            w("KB ran with fanoutd alone (no peers, no wrk): `bench/run --only` asked for STREAM "
              "without KB, and STREAM's throughput is compared with KB's fanoutd req/s of the same run.")
        if s == "THR" and m.get("thr_ref") == "1":
            w("")
            w("THR ran with fanoutd alone (no peers, no wrk): `bench/run --only` asked for SHARED "
              "without THR, and SHARED's throughput is compared with THR's fanoutd req/s of the same run.")
        if s == "SHARED":
            shared_runs(w, st)
        f = st.get((s, "fanoutd"))
        if f:
            w("")
            w("fanoutd's conns per run are listed run by run (round 1 first): the daemon keeps "
              "idle connections for `keepalive_timeout` (30 s), so a run soon after the last "
              "one opens none; after a longer gap (the slow peers) they have been closed.")
            if f.f_opened or f.f_open:
                w(f"fanoutd's own count (GET /v1/upstreams), run by run: connections_opened "
                  f"{per_run(f.f_opened)}, tls_handshakes {per_run(f.f_hs)}, connections open "
                  f"after the run {per_run(f.f_open)}.")
        w("")

    w("## fanoutd's memory and connections")
    w("")
    w("| scenario | RSS idle after start | peak RSS (VmHWM) | RSS after the runs "
      "| connections_opened (GET /v1/upstreams) | tls_handshakes |")
    w("| --- | --: | --: | --: | --: | --: |")
    for s in SCEN:
        r = fst.get(s)
        if r:
            w(f"| {s} | {f_mib(num(r['idle_rss_kb']))} | {f_mib(num(r['hwm_kb']))} "
              f"| {f_mib(num(r['rss_after_kb']))} | {r['connections_opened'] or '—'} "
              f"| {r.get('tls_handshakes') or '—'} |")
    w("")


def target_row(w, name, measured, ok):
    verdict = "n/a" if ok is None else ("**PASS**" if ok else "**MISS**")
    w(f"| {name} | {measured} | {verdict} |")


def targets_9(w, st, fst, fanoutd_rss):
    w("## Targets (issue 9)")
    w("")
    w("| target | measured | verdict |")
    w("| --- | --- | --- |")

    def target(*a):
        target_row(w, *a)

    f = st.get(("LAT", "fanoutd"))
    v = f.tmed() if f else None
    target("LAT ≤ 1.05 × ideal (≤ 210 ms, curl call included)",
           f"{f_ms(v)} ms median ({v / LAT_IDEAL:.3f} × ideal)" if v else "—",
           None if v is None else v <= 1.05 * LAT_IDEAL)
    f, wr = st.get(("THR", "fanoutd")), st.get(("THR", "wrk"))
    fr, wrr = (f.rps_med() if f else None), (wr.rps_med() if wr else None)
    target("THR ≥ 60 % of wrk straight at nginx",
           f"{f_rps(fr)} vs {f_rps(wrr)} req/s = {fr / wrr * 100:.0f} %" if fr and wrr else "—",
           None if not (fr and wrr) else fr >= 0.6 * wrr)
    for t, factor, name in (("httpx", 10, "THR ≥ 10 × the httpx peer"),
                            ("curl", 2.5, "THR ≥ 2.5 × curl --parallel")):
        o = st.get(("THR", t))
        orr = o.rps_med() if o else None
        target(name, f"{f_rps(fr)} vs {f_rps(orr)} req/s = {fr / orr:.2f} ×" if fr and orr else "—",
               None if not (fr and orr) else (fr >= factor * orr if factor > 1 else fr > orr))
    f, wr = st.get(("KB", "fanoutd")), st.get(("KB", "wrk"))
    fr, wrr = (f.rps_med() if f else None), (wr.rps_med() if wr else None)
    target("KB ≥ 40 % of wrk straight at nginx /kb",
           f"{f_rps(fr)} vs {f_rps(wrr)} req/s = {fr / wrr * 100:.0f} %" if fr and wrr else "—",
           None if not (fr and wrr) else fr >= 0.4 * wrr)
    f, fl = st.get(("SMALL", "fanoutd")), st.get(("SMALL", "floor"))
    v = f.tmed() if f else None
    flv = fl.tmed() if fl else None
    target("SMALL ≤ curl start-up + 1 ms (the floor: curl GET /healthz)",
           f"{f_ms(v)} ms vs floor {f_ms(flv)} ms" if v and flv else "—",
           None if not (v and flv) else v <= flv + 1.0)
    target("SMALL ≤ 5 ms per curl call (median)",
           (f"{f_ms(v)} ms" + (f" (floor: curl GET /healthz {f_ms(flv)} ms)" if flv else "")) if v else "—",
           None if v is None else v <= 5.0)
    idle = num(fst.get("LAT", fst.get("THR", {})).get("idle_rss_kb")) if fst else None
    target("idle RSS ≤ 4 MiB", f"{f_mib(idle)} (VmRSS after start, before any batch)",
           None if idle is None else idle <= 4096)
    kb = fanoutd_rss("KB")
    limit = 3 * SCEN["KB"][1] * 1024  # 3 × the body bytes returned
    target("KB peak RSS ≤ 3 × the 10,240,000 body bytes (29.3 MiB)", f_mib(kb),
           None if kb is None else kb * 1024 <= limit)
    target("KB peak RSS ≤ 30 MiB", f_mib(kb), None if kb is None else kb <= 30 * 1024)
    f = st.get(("THR", "fanoutd"))
    most = max(f.conns) if f and f.conns else None
    opened = fst.get("THR", {}).get("connections_opened")
    target("THR opens ≤ 64 TCP connections to nginx",
           f"at most {most} in one run, {sum(f.conns)} over all {f.ok} runs (nginx stub_status); "
           f"fanoutd's connections_opened = {opened or '—'}"
           if most is not None else "—",
           None if most is None else most <= 64)
    w("")



def targets_16(w, st, fst):
    w("## Targets (issue 16)")
    w("")
    w("| target | measured | verdict |")
    w("| --- | --- | --- |")
    f = st.get(("THR-H2", "fanoutd"))
    fr = f.rps_med() if f else None
    for t, factor, name in (("h2load", 0.5, "THR-H2 ≥ 50 % of h2load straight at nginx"),
                            ("curl", 3, "THR-H2 ≥ 3 × curl --parallel --http2"),
                            ("httpx", 20, "THR-H2 ≥ 20 × httpx http2=True")):
        o = st.get(("THR-H2", t))
        orr = o.rps_med() if o else None
        if factor < 1:
            measured = f"{f_rps(fr)} vs {f_rps(orr)} req/s = {fr / orr * 100:.0f} %" if fr and orr else "—"
        else:
            measured = f"{f_rps(fr)} vs {f_rps(orr)} req/s = {fr / orr:.2f} ×" if fr and orr else "—"
        target_row(w, name, measured, None if not (fr and orr) else fr >= factor * orr)
    # one connection per run: nginx accepts ≤ 1 (a new one only when the kept
    # one expired), fanoutd opened ≤ 1, and exactly 1 open after every run
    if f and f.ok and (f.f_open or f.conns):
        ok = (len(f.f_open) == f.ok and all(c == 1 for c in f.f_open)
              and all(c <= 1 for c in f.f_opened) and all(c <= 1 for c in f.conns))
        opened = fst.get("THR-H2", {}).get("connections_opened")
        measured = (f"nginx accepts per run {per_run(f.conns)}; fanoutd opened {per_run(f.f_opened)}, "
                    f"open after each run {per_run(f.f_open)} (connections_opened over the "
                    f"scenario: {opened or '—'})")
        target_row(w, "THR-H2: exactly 1 connection per run", measured, ok)
    else:
        target_row(w, "THR-H2: exactly 1 connection per run", "—", None)
    w("")


def stream_figures(st):
    """STREAM's figures: (fanout req/s, KB fanoutd req/s, the first-line Stat)"""
    f, kb = st.get(("STREAM", "fanout")), st.get(("KB", "fanoutd"))
    return (f.rps_med() if f else None), (kb.rps_med() if kb else None), st.get(("STREAM", "first-line"))


def med(xs):
    return statistics.median(xs) if xs else None


def summary_stream(w, st, fanoutd_rss):
    fr, kbr, fl = stream_figures(st)
    f = st.get(("STREAM", "fanout"))
    w("## Summary, streamed (issue 18; medians)")
    w("")
    w("| STREAM | fanout req/s | KB's fanoutd req/s (buffered, 10,000) | fanoutd peak RSS "
      "| fanout's peak RSS | time to first line | first line after the first upstream answer |")
    w("| --- | --: | --: | --: | --: | --: | --: |")
    ratio = f" ({fr / kbr * 100:.0f} %)" if fr and kbr else ""
    w(f"| 100,000 × /kb, C=64 | **{f_rps(fr)}**{ratio} | {f_rps(kbr)} | {f_mib(fanoutd_rss('STREAM'))} "
      f"| {f_mib(max(f.rss) if f and f.rss else None)} "
      f"| {f_ms(med(fl.ex('ttfl_ms'))) if fl else '—'} ms "
      f"| {f_ms(med(fl.ex('lag_ms'))) if fl else '—'} ms |")
    w("")


def stream_section(w, st, fanoutd_rss, desc):
    w(f"## STREAM: {desc}")
    w("")
    w("| tool | ok runs | min ms | median ms | median req/s | fanoutd CPU ms, median "
      "| fanoutd VmHWM after each run | client peak RSS | client CPU ms, median "
      "| TCP conns to nginx per run |")
    w("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
    for t in ("fanout", "first-line"):
        x = st.get(("STREAM", t))
        if x is None:
            continue
        hwm = x.ex("daemon_hwm_kb") if t == "fanout" else x.rss
        cli_rss = f_mib(max(x.rss)) if t == "fanout" and x.rss else "—"
        cli_cpu = f"{med(x.ex('client_cpu_ms')):,.0f}" if t == "fanout" and x.ex("client_cpu_ms") else "—"
        cpu = f"{med(x.cpu):,.0f}" if x.cpu else "—"
        w(f"| {LABEL[t]} | {x.ok}/{x.runs} | {f_ms(x.tmin())} | {f_ms(x.tmed())} | {f_rps(x.rps_med())} "
          f"| {cpu} | {' / '.join(f_mib(k) for k in hwm) or '—'} | {cli_rss} | {cli_cpu} "
          f"| {per_run(x.conns)} |")
    kb = st.get(("KB", "fanoutd"))
    if kb:
        w(f"| for comparison: KB's fanoutd (10,000 × /kb buffered, one `curl`) | {kb.ok}/{kb.runs} "
          f"| {f_ms(kb.tmin())} | {f_ms(kb.tmed())} | {f_rps(kb.rps_med())} "
          f"| {f'{med(kb.cpu):,.0f}' if kb.cpu else '—'} | {f_mib(fanoutd_rss('KB'))} (KB's daemon) | — | — "
          f"| {per_run(kb.conns)} |")
    fl = st.get(("STREAM", "first-line"))
    if fl and fl.extra:
        w("")
        w("The first line, run by run (bench/first_line.py; times from the batch's last byte sent; "
          "the first upstream answer: the earliest `$msec` in nginx's access log of /kbl):")
        w("")
        w("| run | time to first line ms | first upstream answer (nginx) ms "
          "| first line after the first upstream answer ms | the first line's own `elapsed_ms` "
          "| ttfl − that `elapsed_ms` (fanoutd reading and parsing the batch included) "
          "| batch `elapsed_ms` | whole answer ms |")
        w("| --: | --: | --: | --: | --: | --: | --: | --: |")
        for i, e in enumerate(fl.extra, 1):
            def g(k, e=e):
                v = num(e.get(k))
                return "—" if v is None else f"{v:,.2f}" if abs(v) < 10 else f_ms(v)
            w(f"| {i} | {g('ttfl_ms')} | {g('up_ms')} | {g('lag_ms')} | {g('first_ms')} "
              f"| {g('lag_parse_ms')} | {g('elapsed_ms')} | {g('wall_ms')} |")
    w("")
    w("fanout's time is the whole process: reading 100,000 URLs from standard input, sending "
      "the batch, reading the NDJSON stream and printing every line in input order to /dev/null "
      "(exit 0: every request succeeded). Its peak RSS and CPU: `/usr/bin/time -v`. fanoutd's "
      "VmHWM is cumulative over the scenario (the daemon is restarted for each scenario, not each run), so each "
      "run's figure is the peak so far; bench/first_line.py's runs stream the same batch too.")
    w("")


def targets_18(w, st, fanoutd_rss):
    w("## Targets (issue 18)")
    w("")
    w("| target | measured | verdict |")
    w("| --- | --- | --- |")
    fr, kbr, fl = stream_figures(st)
    f = st.get(("STREAM", "fanout"))
    target_row(w, "STREAM: every run complete (fanout exit 0; first_line.py: 100,000 2xx lines and `done`, `ok`)",
               "; ".join(f"{t} {x.ok}/{x.runs}" for t in ("fanout", "first-line")
                         for x in [st.get(("STREAM", t))] if x) or "—",
               None if not f else all(x.ok == x.runs for t in ("fanout", "first-line")
                                      for x in [st.get(("STREAM", t))] if x))
    target_row(w, "STREAM throughput within 10 % of KB's fanoutd req/s (same run)",
               f"{f_rps(fr)} vs {f_rps(kbr)} req/s = {fr / kbr * 100:.0f} %" if fr and kbr
               else ("— (needs KB's fanoutd row in the same run)" if fr else "—"),
               None if not (fr and kbr) else fr >= 0.9 * kbr)
    hwm = fanoutd_rss("STREAM")
    target_row(w, "STREAM peak RSS of fanoutd ≤ 64 MiB (VmHWM over the scenario)", f_mib(hwm),
               None if hwm is None else hwm <= 64 * 1024)
    lag = fl.ex("lag_ms") if fl else []
    target_row(w, "STREAM: the first line out within 5 ms of the first upstream answer (median)",
               (f"{med(lag):.2f} ms median, run by run {' / '.join(f'{x:.2f}' for x in lag)} "
                f"(nginx's log time of the first answer → the first line at the client); time to "
                f"first line {f_ms(med(fl.ex('ttfl_ms')))} ms, the first upstream answer "
                f"{f_ms(med(fl.ex('up_ms')))} ms after the batch was sent (fanoutd reading and "
                "parsing the 100,000-URL batch, then the request)") if lag else "—",
               None if not lag else med(lag) <= 5.0)
    target_row(w, "fanout's own peak RSS (no target)", f_mib(max(f.rss)) if f and f.rss else "—", None)
    w("")


def shared_figures(st):
    """SHARED's figures: (SHARED req/s, THR fanoutd req/s, Redis commands per
    request run by run from INFO commandstats, the same from fanoutd's metric)"""
    sh, thr = st.get(("SHARED", "fanoutd")), st.get(("THR", "fanoutd"))
    n = SCEN["SHARED"][1]
    per = [c / n for c in sh.ex("redis_cmds")] if sh else []
    fper = [c / n for c in sh.ex("f_redis_cmds")] if sh else []
    return (sh.rps_med() if sh else None), (thr.rps_med() if thr else None), per, fper


def summary_shared(w, st, fanoutd_rss):
    sr, tr, per, fper = shared_figures(st)
    w("## Summary, limits shared through Redis (issue 19; medians)")
    w("")
    w("| | SHARED req/s | THR's fanoutd req/s (local limits) | Redis commands executed per upstream request "
      "(INFO commandstats, the scripts' `redis.call()`s included) | commands fanoutd sent per upstream request "
      "(`fanoutd_redis_commands_total`) | fanoutd peak RSS SHARED |")
    w("| --- | --: | --: | --: | --: | --: |")
    ratio = f" ({sr / tr * 100:.0f} %)" if sr and tr else ""
    w(f"| 20,000 × /fast, C=64 | **{f_rps(sr)}**{ratio} | {f_rps(tr)} "
      f"| {f'{med(per):.3f}' if per else '—'} | {f'{med(fper):.3f}' if fper else '—'} "
      f"| {f_mib(fanoutd_rss('SHARED'))} |")
    w("")


def shared_runs(w, st):
    sh = st.get(("SHARED", "fanoutd"))
    if not sh or not sh.extra:
        return
    n = SCEN["SHARED"][1]
    w("")
    w("Redis, run by run (round 1 first): commands Redis executed during the run (INFO commandstats "
      "calls summed before and after, INFO itself left out; Redis counts the `redis.call()`s inside "
      "the Lua scripts there as well as the EVALSHA that ran them), by command; the commands fanoutd "
      "sent (`fanoutd_redis_commands_total`); requests let through on local limits "
      "(`fanoutd_redis_fallbacks_total`); `fanoutd_redis_up` after the run:")
    w("")
    w("| run | req/s | Redis commands executed | per upstream request | by command | fanoutd sent "
      "| per request | fallbacks | redis_up |")
    w("| --: | --: | --: | --: | --- | --: | --: | --: | --: |")
    for i, (e, rps) in enumerate(zip(sh.extra, sh.rps), 1):
        rc, fc = num(e.get("redis_cmds")), num(e.get("f_redis_cmds"))
        w(f"| {i} | {f_rps(rps)} | {f'{rc:,.0f}' if rc is not None else '—'} "
          f"| {f'{rc / n:.3f}' if rc is not None else '—'} "
          f"| {(e.get('redis_by') or '—').replace('+', ', ').replace('/', ' ')} "
          f"| {f'{fc:,.0f}' if fc is not None else '—'} "
          f"| {f'{fc / n:.3f}' if fc is not None else '—'} | {e.get('f_fallbacks', '—')} "
          f"| {e.get('redis_up', '—')} |")


def targets_19(w, st):
    w("## Targets (issue 19)")
    w("")
    w("| target | measured | verdict |")
    w("| --- | --- | --- |")
    sr, tr, per, fper = shared_figures(st)
    sh = st.get(("SHARED", "fanoutd"))
    target_row(w, "SHARED: every run complete (all 20,000 answers 2xx, checked)",
               f"{sh.ok}/{sh.runs}" if sh else "—", None if not sh else sh.ok == sh.runs)
    target_row(w, "SHARED ≥ 50 % of THR's fanoutd req/s (local limits, same run)",
               f"{f_rps(sr)} vs {f_rps(tr)} req/s = {sr / tr * 100:.0f} %" if sr and tr
               else ("— (needs THR's fanoutd row in the same run)" if sr else "—"),
               None if not (sr and tr) else sr >= 0.5 * tr)
    fb = sh.ex("f_fallbacks") if sh else []
    up = [e.get("redis_up") for e in sh.extra] if sh else []
    target_row(w, "SHARED really shared: no request on local limits (fallbacks 0, `fanoutd_redis_up 1`)",
               (f"fallbacks run by run {per_run([int(x) for x in fb]) if fb else '—'}; "
                f"redis_up {per_run(up)}") if sh else "—",
               None if not (sh and fb) else all(x == 0 for x in fb) and all(u == "1" for u in up))
    target_row(w, "Redis commands per upstream request (reported, no target)",
               (f"executed by Redis {med(per):.3f} median (INFO commandstats, the scripts' "
                f"`redis.call()`s included), run by run {' / '.join(f'{x:.3f}' for x in per)}"
                + (f"; sent by fanoutd {med(fper):.3f} median (`fanoutd_redis_commands_total`), "
                   f"run by run {' / '.join(f'{x:.3f}' for x in fper)}" if fper else "")) if per else "—",
               None)
    w("")


def tail_figures(st, t):
    """TAIL's row t: (Stat, median ms, × the no-tail median, the runs' extra
    upstream requests, median extra)"""
    x, ref = st.get(("TAIL", t)), st.get(("TAIL", "fanoutd-notail"))
    n = SCEN["TAIL"][1]
    if not x:
        return None, None, None, [], None
    v, r = x.tmed(), (ref.tmed() if ref else None)
    extra = [int(c - n) for c in x.ex("up_requests")]
    return x, v, (v / r if v and r else None), extra, med(extra)


def f_int(x):
    return "—" if x is None else f"{x:,.0f}"


def summary_21(w, st, m):
    n = SCEN["TAIL"][1]
    if any(k[0] == "TAIL" for k in st):
        w("## Summary, a slow tail and hedging (issue 21; medians)")
        w("")
        w("| TAIL: 1,000 × /tail, 2 % +200 ms, C=100 | ms | × no-tail | extra upstream requests "
          "| hedges started / won (`/metrics`) | refused by the budget | answers that came slow |")
        w("| --- | --: | --: | --: | --: | --: | --: |")
        for t in TAIL_TOOLS:
            x, v, ratio, extra, mx = tail_figures(st, t)
            if not x:
                continue
            hw = (f"{f_int(med(x.ex('hedges')))} / {f_int(med(x.ex('hedges_won')))}"
                  if t.startswith("fanoutd") else "—")
            br = f_int(med(x.ex("budget_refused"))) if t.startswith("fanoutd") else "—"
            slow = f_int(med(x.ex("slow"))) if t.startswith("fanoutd") else "—"
            pct = f" ({mx / n * 100:.1f} %)" if mx is not None else ""
            w(f"| {LABEL[t] if t.startswith('fanoutd') else label('TAIL', t)} | {f_ms(v)} | {f_x(ratio)} "
              f"| {f_int(mx)}{pct} | {hw} | {br} | {slow} |")
        w("")
        budget = m.get("retry_budget", "default")
        budget = "fanoutd's default (20 %)" if budget == "default" else f"`retry_budget = {budget}` on the hedging daemons"
        w(f"retry_budget: {budget}. The peers' times are their own fan-out (interpreter start-up excluded); "
          "fanoutd's the whole `curl` call.")
        w("")
    c, nc = st.get(("COLLAPSE", "fanoutd-collapse")), st.get(("COLLAPSE", "fanoutd-nocollapse"))
    if c or nc:
        w("## Summary, collapsing (issue 21; medians)")
        w("")
        w("| COLLAPSE: 8 clients × the same 1,000 × /delay/50, C=100 | all 8 answered, ms "
          "| upstream requests | results with `\"shared\": true` | `fanoutd_upstream_collapsed_total` |")
        w("| --- | --: | --: | --: | --: |")
        for x in (c, nc):
            if x:
                w(f"| {LABEL[x.tool]} | {f_ms(x.tmed())} | {f_int(med(x.ex('up_requests')))} "
                  f"| {f_int(med(x.ex('shared')))} | {f_int(med(x.ex('collapsed')))} |")
        w("")


def section_21(w, st, s, desc):
    w(f"## {s}: {desc}")
    w("")
    n = SCEN[s][1]
    if s == "TAIL":
        w("| row | ok runs | min ms | median ms | × no-tail (medians) | upstream requests, run by run "
          "| hedges started, run by run | hedges won | refused by the budget | results `\"hedged\": true` "
          "| answers that came slow | rolling p50 / p95 ms after the run | connections opened, run by run "
          "| CPU ms, median | peak RSS |")
        w("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
        for t in TAIL_TOOLS:
            x, v, ratio, extra, mx = tail_figures(st, t)
            if not x:
                continue
            fd = t.startswith("fanoutd")

            def runs(k, x=x, fd=fd):
                return per_run([int(v) for v in x.ex(k)]) if fd else "—"
            lat = (f"{f_ms(med(x.ex('p50_ms')))} / {f_ms(med(x.ex('p95_ms')))}" if fd and x.ex("p95_ms") else "—")
            cpu = f"{med(x.cpu):,.0f}" if x.cpu else "—"
            rss = f_mib(max(x.rss)) if x.rss else "—"
            w(f"| {LABEL[t] if fd else label(s, t)} | {x.ok}/{x.runs} | {f_ms(x.tmin())} | {f_ms(v)} "
              f"| {f_x(ratio)} | {per_run([int(c) for c in x.ex('up_requests')])} | {runs('hedges')} "
              f"| {runs('hedges_won')} | {runs('budget_refused')} | {runs('hedged')} | {runs('slow')} "
              f"| {lat} | {per_run(x.f_opened) if fd else '—'} | {cpu} | {rss} |")
        w("")
        w(f"Ideal without the tail: 1,000 / 100 × 50 ms = 500 ms. Every row's batch has a KEY of its own, "
          f"so the test upstream's count of it (GET /count/KEY after the run) is that run's upstream "
          f"requests: {n:,} plus the hedges that reached it. Hedges started and won, and those the "
          "retry budget refused: fanoutd's `/metrics` counters before and after the run. A hedge "
          "waits for the next free slot ahead of the requests still queued and counts once it is "
          "sent; one still waiting when the first attempt answers is dropped unsent and not counted, "
          "so started ≈ requests − 1,000 (one sent as the first attempt answers may be cancelled before it arrives). \"Answers that came slow\": "
          "results whose body says `\"slow\": true` (the slow attempt won, or was never hedged). "
          "CPU and RSS: the row's daemon (VmHWM, cumulative over the scenario); a peer's whole process.")
    else:
        w("| row | ok runs | min ms | median ms | slowest client, median ms | median client, median ms "
          "| upstream requests, run by run | results `\"shared\": true`, run by run "
          "| `collapsed_total` per run | fanoutd CPU ms, median | peak RSS |")
        w("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
        for t in COLLAPSE_TOOLS:
            x = st.get((s, t))
            if not x:
                continue
            w(f"| {LABEL[t]} | {x.ok}/{x.runs} | {f_ms(x.tmin())} | {f_ms(x.tmed())} "
              f"| {f_ms(med(x.ex('client_max_ms')))} | {f_ms(med(x.ex('client_med_ms')))} "
              f"| {per_run([int(c) for c in x.ex('up_requests')])} | {per_run([int(c) for c in x.ex('shared')])} "
              f"| {per_run([int(c) for c in x.ex('collapsed')])} | {f'{med(x.cpu):,.0f}' if x.cpu else '—'} "
              f"| {f_mib(max(x.rss)) if x.rss else '—'} |")
        w("")
        w("The time is from the release of the 8 clients (each curl already started, blocked reading "
          "its batch from a FIFO) to the last answer; the clients' own times are curl's `time_total`. "
          "Ideal: 1,000 / 100 × 50 ms = 500 ms when collapsed (one upstream request per URL), 8,000 / "
          "100 × 50 ms = 4,000 ms when not. Upstream requests: the test upstream's /stats `requests` "
          "after a /stats/reset just before the release.")
    w("")


def targets_21(w, st):
    w("## Targets (issue 21)")
    w("")
    w("| target | measured | verdict |")
    w("| --- | --- | --- |")
    n = SCEN["TAIL"][1]
    ref = st.get(("TAIL", "fanoutd-notail"))
    if any(k[0] == "TAIL" for k in st):
        rows = [t for t in TAIL_TOOLS if ("TAIL", t) in st]
        target_row(w, "TAIL: every run complete (1,000 answers, 2xx, checked)",
                   "; ".join(f"{t} {st['TAIL', t].ok}/{st['TAIL', t].runs}" for t in rows),
                   all(st["TAIL", t].ok == st["TAIL", t].runs for t in rows))
        for t, name in (("fanoutd-hedge", "`hedge_after = 75ms`"), ("fanoutd-p95", "`hedge_after = p95`")):
            x, v, ratio, extra, mx = tail_figures(st, t)
            if not x:
                continue
            target_row(w, f"TAIL {name}: ≤ 1.3 × the no-tail time (medians, same run)",
                       f"{f_ms(v)} vs {f_ms(ref.tmed() if ref else None)} ms = {f_x(ratio)}" if ratio else "—",
                       None if ratio is None else ratio <= 1.3)
            target_row(w, f"TAIL {name}: ≤ 5 % extra upstream requests (≤ 50; median of the runs)",
                       (f"{f_int(mx)} extra = {mx / n * 100:.1f} % median, run by run {per_run(extra)}; "
                        f"hedges started {per_run([int(v) for v in x.ex('hedges')])}, won "
                        f"{per_run([int(v) for v in x.ex('hedges_won')])}, refused by the budget "
                        f"{per_run([int(v) for v in x.ex('budget_refused')])}") if extra else "—",
                       None if mx is None else mx <= 0.05 * n)
        x, v, ratio, extra, mx = tail_figures(st, "fanoutd-tail")
        if x:
            target_row(w, "TAIL without hedging (no target: what hedging is measured against)",
                       f"{f_ms(v)} ms = {f_x(ratio)} the no-tail time, {f_int(mx)} extra requests", None)
    c, nc = st.get(("COLLAPSE", "fanoutd-collapse")), st.get(("COLLAPSE", "fanoutd-nocollapse"))
    if c:
        up = [int(v) for v in c.ex("up_requests")]
        target_row(w, "COLLAPSE `collapse = yes`: upstream requests = 1,000, not 8,000 (median of the runs)",
                   f"{f_int(med(up))} median, run by run {per_run(up)}; all 8 clients answered in "
                   f"{f_ms(c.tmed())} ms median" + (f" vs {f_ms(nc.tmed())} ms with `collapse = no` "
                                                    f"({nc.tmed() / c.tmed():.1f} × longer)" if nc and nc.tmed() and c.tmed() else ""),
                   None if not up else med(up) == 1000)
        sh = [int(v) for v in c.ex("shared")]
        target_row(w, "COLLAPSE `collapse = yes`: every waiter's result `\"shared\": true` (8 × 1,000 a run)",
                   f"{per_run(sh)} run by run; runs complete {c.ok}/{c.runs}",
                   None if not sh else all(v == 8 * SCEN["COLLAPSE"][1] for v in sh) and c.ok == c.runs)
    if nc:
        up = [int(v) for v in nc.ex("up_requests")]
        target_row(w, "COLLAPSE `collapse = no` (the comparison): 8,000 upstream requests",
                   f"{f_int(med(up))} median, run by run {per_run(up)}; {f_ms(nc.tmed())} ms",
                   None if not up else med(up) == 8000)
    w("")


def how_measured(w, h1_ran, tls_ran, stream_ran=False, ran21=(), m=None):
    w("## How it was measured")
    w("")
    w("- nginx 1 worker, `keepalive_requests 10000000`, `access_log off`; `/fast` returns a "
      "104-byte JSON object, `/kb` 1,024 bytes of text, `/delay/20` waits 20 ms "
      "(`echo_sleep 0.02`) then answers `ok`. URLs carry `?i=N` so no two are alike.")
    w("- fanoutd: `upstream_concurrency` = C, `max_batch_size = 20000`, `access_log = no`; "
      "one `curl --data-binary @batch.json` per run, answer written to a file and checked "
      "afterwards (`ok: true`, every index, status and body: bench/check_answer.py).")
    w("- peers (bench/peers/): each keeps every status and body (curl: status and size, "
      "bodies to /dev/null), fails on any non-2xx or error, and prints its own elapsed time.")
    w("- TCP connections: nginx's `stub_status` accepts counter read before and after each run.")
    w("- CPU ms: user + system time; a peer's whole process (`/usr/bin/time -v`, start-up "
      "included), fanoutd's daemon only (`/proc/PID/stat`, 10 ms ticks; the client curl not "
      "counted). Less disturbed by other load on the machine than the wall-clock times.")
    w("- fanoutd's RSS: `/proc/PID/status` VmRSS after start (idle) and VmHWM after the "
      "scenario (peak); the daemon is restarted per scenario.")
    w("- fanoutd's own connections: GET /v1/upstreams before and after each of its runs "
      "(connections_opened and tls_handshakes during the run, connections open after it, "
      "summed over upstreams), and once at the end of the scenario.")
    if tls_ran:
        w("- https (THR-H2, THR-TLS): a second nginx server block, `listen 127.0.0.1:PORT ssl "
          "http2`, a P-256 certificate for IP 127.0.0.1 made by `openssl req -x509` in the "
          "temporary directory; fanoutd's `[upstream \"https://127.0.0.1:PORT\"]` has "
          "`concurrency = 64`, `tls_verify = yes`, `ca_file` = that certificate and `http2` "
          "(auto / no) when this fanoutd takes the key; httpx `verify=` and curl `--cacert` "
          "the same file. h2load does not verify certificates.")
    if stream_ran:
        w("- STREAM: fanoutd as for KB (`upstream_concurrency = 64`) plus `max_stream_batch_size = "
          "100000`; `fanout -d http://127.0.0.1:PORT -o ndjson < urls > /dev/null` under "
          "`/usr/bin/time -v`, timed as a whole (req/s = 100,000 / that); interleaved with "
          "bench/first_line.py, which POSTs the same batch as a JSON array with `Accept: "
          "application/x-ndjson` over a raw socket, reads the chunked stream as it comes and "
          "checks it (100,000 result lines with 2xx, then `done`/`ok` with 100,000 completed). "
          "Its batch goes to `/kbl`, the same 1 KiB as `/kb` but with an nginx access log "
          "(`log_format first '$msec'`, buffer=64k flush=100ms), so the first upstream answer "
          "has a time on the same wall clock as the client's. Time to first line: from the "
          "batch's last byte sent to the first complete line received; the lag is from the "
          "earliest logged `$msec` to that line (nginx's time is truncated to the ms and taken "
          "when its event loop woke, so the lag errs by up to 1 ms on the long side). "
          "ttfl − the first line's own `elapsed_ms` is the same with fanoutd's reading and "
          "parsing of the batch included. (Mapping fanoutd's batch clock onto the client's through "
          "the last line does not work: under back-pressure the last line waits behind up to "
          "`stream_buffer` of lines.)")
    if ran21:
        m = m or {}
        w("- TAIL, COLLAPSE (issue 21): not nginx but tests/upstream, fanoutd's test server "
          "(single-threaded libevent): `/tail/KEY?every=50&slow=250&base=50&i=N` answers attempt I of "
          "KEY (counted at arrival, from 1) after 250 ms when I % 50 = 0 and after 50 ms otherwise; "
          "`/count/KEY` says how many attempts of KEY arrived; `/delay/50` answers after 50 ms; "
          "`/stats` counts requests since `/stats/reset`. fanoutd: `upstream_concurrency = 100` and "
          "`[upstream \"http://127.0.0.1:PORT\"] concurrency = 100` plus the row's key; the daemons of "
          "a scenario run side by side on their own ports, each warmed by one unrecorded batch. "
          f"retry_budget: {m.get('retry_budget', 'default')} (BENCH_RETRY_BUDGET).")
    w("")


if __name__ == "__main__":
    main()
