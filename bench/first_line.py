#!/usr/bin/python3
"""Time to fanoutd's first NDJSON line: bench/first_line.py HOST:PORT BATCH.json N [LOG]

Sends BATCH.json (a JSON batch of N requests) to http://HOST:PORT/v1/batch
with Accept: application/x-ndjson over a raw socket, reads the streamed
answer as it comes (chunked or not) and prints, on success,

    ok n=N wall_ms=W ttfl_ms=T first_ms=E up_ms=U lag_ms=L lag_parse_ms=P elapsed_ms=B

  W  the batch sent (its last byte) to the end of the answer
  T  time to first line: the batch sent to the first complete line received
  E  that first line's own "elapsed_ms" (its request, from its start in
     fanoutd to its answer in)
  B  the last line's "elapsed_ms": the batch on fanoutd's clock
  U  the batch sent to the first upstream answer: the earliest time in LOG,
     an nginx access log of the batch's requests with log_format '$msec'
     (the wall clock, truncated to the ms, so U is up to 1 ms early)
  L  T - U: the first line out after the first upstream answer
  P  T - E: the same with the reading and parsing of the batch in fanoutd
     included (an upper bound of L, needs no LOG)
Without LOG, U and L are "-".  (The last line cannot map fanoutd's clock
onto the client's: under back-pressure it waits behind up to stream_buffer
of lines.)

It checks the answer: N result lines with a 2xx status, then a last line
{"done": true, "ok": true} whose "completed" has all N.  Else it says what
is wrong and exits 1.
"""
import json
import socket
import sys
import time


def fail(msg):
    sys.exit(f"first_line: {msg}")


def main():
    addr, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    log = sys.argv[4] if len(sys.argv) > 4 else None
    host, _, port = addr.rpartition(":")
    with open(path, "rb") as f:
        body = f.read()
    head = (f"POST /v1/batch HTTP/1.1\r\nHost: {addr}\r\n"
            "Accept: application/x-ndjson\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.time()   # the wall clock: nginx's $msec is on it
    s.sendall(head + body)
    t_sent = time.time()

    raw = bytearray()
    headers = None
    chunked = False
    state, left = "size", 0      # chunked decoding
    pending = b""                # the line not complete yet
    first = last = None
    t_first = None
    lines = bad = 0
    eof = False

    def take(piece, now):
        nonlocal pending, first, last, t_first, lines, bad
        if b"\n" not in piece:
            pending += piece
            return
        parts = (pending + piece).split(b"\n")
        pending = parts.pop()
        if first is None:
            first, t_first = parts[0], now
        lines += len(parts)
        last = parts[-1]
        for p in parts:   # cheap: a result's status is early in its line
            if p.startswith(b'{"index"') and b'"status":2' not in p[:300]:
                bad += 1

    while not eof:
        chunk = s.recv(1 << 18)
        now = time.time()
        if not chunk:
            eof = True
        raw += chunk
        if headers is None:
            end = raw.find(b"\r\n\r\n")
            if end < 0:
                if eof:
                    fail(f"no HTTP answer: {bytes(raw[:200])!r}")
                continue
            headers = bytes(raw[:end]).decode("latin-1")
            del raw[:end + 4]
            status = headers.split(" ", 2)[1] if " " in headers else "?"
            if status != "200":
                rest = raw + s.recv(4096)
                fail(f"HTTP {status}: {bytes(rest[:300])!r}")
            low = headers.lower()
            if "application/x-ndjson" not in low:
                fail(f"not streamed (no application/x-ndjson): {headers!r}")
            chunked = "transfer-encoding: chunked" in low
        if not chunked:
            if raw:
                take(bytes(raw), now)
                raw.clear()
            continue
        pos = 0
        while True:
            if state == "size":
                i = raw.find(b"\r\n", pos)
                if i < 0:
                    break
                left = int(bytes(raw[pos:i]).split(b";")[0], 16)
                pos = i + 2
                if left == 0:
                    eof = True
                    break
                state = "data"
            elif state == "data":
                k = min(left, len(raw) - pos)
                if k == 0:
                    break
                take(bytes(raw[pos:pos + k]), now)
                pos += k
                left -= k
                if left == 0:
                    state = "crlf"
            else:
                if len(raw) - pos < 2:
                    break
                pos += 2
                state = "size"
        del raw[:pos]
    t_end = time.time()
    s.close()
    if pending.strip():
        lines += 1
        last = pending
    if first is None or last is None:
        fail("no line")
    if lines != n + 1:
        fail(f"{lines} lines, want {n} results and the last line")
    if bad:
        fail(f"{bad} results without a 2xx status")
    try:
        fj, lj = json.loads(first), json.loads(last)
    except ValueError as e:
        fail(f"a line is not JSON ({e})")
    if lj.get("done") is not True or lj.get("ok") is not True or len(lj.get("completed", ())) != n:
        fail(f"last line not done/ok with {n} completed: {last[:300]!r}")
    if "index" not in fj or "elapsed_ms" not in fj:
        fail(f"first line is no result: {first[:300]!r}")
    wall = (t_end - t_sent) * 1000
    ttfl = (t_first - t_sent) * 1000
    e, b = float(fj["elapsed_ms"]), float(lj["elapsed_ms"])
    up = lag = "-"
    if log is not None:
        first_up = None
        for _ in range(50):   # nginx writes its log buffer within flush= (100 ms)
            try:
                with open(log) as f:
                    # this batch's requests only (not a buffer left from before)
                    ts = [t for t in (float(x) for x in f.read().split()) if t >= t_sent - 0.002]
            except (OSError, ValueError) as e2:
                fail(f"{log}: {e2}")
            if ts:
                first_up = min(ts)
                break
            time.sleep(0.05)
        if first_up is None:
            fail(f"{log}: no request of this batch logged")
        up = f"{(first_up - t_sent) * 1000:.2f}"
        lag = f"{(t_first - first_up) * 1000:.2f}"
    print(f"ok n={n} wall_ms={wall:.1f} ttfl_ms={ttfl:.2f} first_ms={e:.2f} up_ms={up} "
          f"lag_ms={lag} lag_parse_ms={ttfl - e:.2f} elapsed_ms={b:.1f} "
          f"send_ms={(t_sent - t0) * 1000:.2f}")


if __name__ == "__main__":
    main()
