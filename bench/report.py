#!/usr/bin/python3
"""Write bench/RESULTS.md from what bench/run measured: report.py DIR

DIR holds raw.tsv (one line per run), fanoutd_stats.tsv (per scenario:
idle RSS, VmHWM, RSS after, connections_opened), machine.txt and
commands.txt.  The Markdown goes to stdout.
"""
import csv
import os
import statistics
import sys

SCEN = {
    "LAT": ("1,000 × /delay/20 (20 ms each), C=100", 1000),
    "THR": ("20,000 × /fast (~100 B JSON), C=64", 20000),
    "KB": ("10,000 × /kb (1 KiB), C=64", 10000),
    "SMALL": ("10 × /fast, C=10, whole call from a shell", 10),
}
TOOLS = ["fanoutd", "httpx", "aiohttp", "curl", "node", "wrk", "floor"]
LABEL = {
    "fanoutd": "**fanoutd** (one `curl` per batch)",
    "httpx": "httpx.AsyncClient + TaskGroup + Semaphore",
    "aiohttp": "aiohttp.ClientSession + TaskGroup + Semaphore",
    "curl": "`curl --parallel --parallel-max C`",
    "node": "Node fetch + Promise.all + limiter",
    "wrk": "the limit: wrk straight at nginx",
    "floor": "the floor: `curl` → fanoutd GET /healthz",
}


def label(s, t):
    if t == "wrk":
        return {"LAT": "the limit: `wrk -t1 -c100` at nginx /delay/20",
                "THR": "the limit: `wrk -t1 -c64` at nginx /fast",
                "KB": "the limit: `wrk -t1 -c64` at nginx /kb"}.get(s, LABEL[t])
    return LABEL[t]
LAT_IDEAL = 200.0


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


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
        if tool == "wrk":
            # as long as wrk's rate would take for the scenario's N requests
            self.rps = [num(r["rps"]) for r in ok if num(r["rps"])]
            self.times = [n / x * 1000 for x in self.rps]
        else:
            # the time that counts: fanoutd -> the whole curl call; a peer ->
            # its own fan-out time (start-up excluded), except SMALL where
            # the whole process is what a shell script pays
            key = "wall_ms" if tool in ("fanoutd", "floor") or scen == "SMALL" else "inner_ms"
            self.times = [num(r[key]) for r in ok if num(r[key]) is not None]
            self.rps = [n / (t / 1000) for t in self.times if t > 0]
        self.wall = [num(r["wall_ms"]) for r in ok if num(r["wall_ms"]) is not None]
        self.inner = [num(r["inner_ms"]) for r in ok if num(r["inner_ms"]) is not None]
        self.rss = [num(r["rss_kb"]) for r in ok if num(r["rss_kb"])]
        self.conns = [int(r["conns"]) for r in ok if r["conns"].lstrip("-").isdigit()]
        self.cpu = [num(r.get("cpu_ms")) for r in ok if num(r.get("cpu_ms")) is not None]

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
        for t in TOOLS:
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
    w(f"- {m.get('fanoutd')}; {m.get('nginx')} with 1 worker; {m.get('python')}; "
      f"Node {m.get('node')}; {m.get('curl')}; {m.get('wrk')}")
    w(f"- each scenario: {m.get('reps')} rounds (SMALL: {m.get('small_reps')}), every tool once a round, "
      "interleaved, each round starting with the next tool; min and median over the rounds; "
      "fanoutd restarted for each scenario (so its first run there starts with no connections)")
    w("")
    w("## Summary (medians; in brackets: how many times faster fanoutd is)")
    w("")
    w("| tool | LAT ms | THR req/s | KB ms | SMALL ms | peak RSS THR | peak RSS KB | CPU ms THR |")
    w("| --- | --: | --: | --: | --: | --: | --: | --: |")
    for t in TOOLS:
        cells = []
        for s in SCEN:
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

    for s, (desc, n) in SCEN.items():
        w(f"## {s}: {desc}")
        w("")
        w("| tool | ok runs | min ms | median ms | median req/s | whole process, median ms "
          "| fanoutd's own elapsed_ms, median (wrk: its mean latency) | CPU ms, median "
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
                    conns = "/".join(str(c) for c in x.conns) if x.conns else "—"
                else:
                    conns = f"{x.conns[0]}, then {sum(x.conns[1:])} in {len(x.conns) - 1} runs"
                ratio = "—"
            else:
                rss = max(x.rss) if x.rss else None
                inner = "—"
                if t == "wrk" and x.inner:
                    inner = f"mean latency {statistics.median(x.inner):.2f}"
                conns = f"{statistics.median(x.conns):.0f}" if x.conns else "—"
                sp = speedup(s, t)
                ratio = (f"fanoutd = {sp * 100:.0f} % of it" if t == "wrk" and sp else f_x(sp))
                if t == "floor":
                    ratio = "—"
            whole = f_ms(statistics.median(x.wall)) if x.wall and t != "wrk" else "—"
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
        if (s, "fanoutd") in st:
            w("")
            w("fanoutd's conns per run are listed run by run (round 1 first): the daemon keeps "
              "idle connections for `keepalive_timeout` (30 s), so a run soon after the last "
              "one opens none; after a longer gap (the slow peers) they have been closed.")
        w("")

    w("## fanoutd's memory and connections")
    w("")
    w("| scenario | RSS idle after start | peak RSS (VmHWM) | RSS after the runs | connections_opened (GET /v1/upstreams) |")
    w("| --- | --: | --: | --: | --: |")
    for s in SCEN:
        r = fst.get(s)
        if r:
            w(f"| {s} | {f_mib(num(r['idle_rss_kb']))} | {f_mib(num(r['hwm_kb']))} "
              f"| {f_mib(num(r['rss_after_kb']))} | {r['connections_opened'] or '—'} |")
    w("")

    # --- targets (issue 9) ---
    w("## Targets (issue 9)")
    w("")
    w("| target | measured | verdict |")
    w("| --- | --- | --- |")

    def target(name, measured, ok):
        verdict = "n/a" if ok is None else ("**PASS**" if ok else "**MISS**")
        w(f"| {name} | {measured} | {verdict} |")

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
    w("")
    w("## Exact commands")
    w("")
    w("```")
    w(commands)
    w("```")
    print("\n".join(out))


if __name__ == "__main__":
    main()
