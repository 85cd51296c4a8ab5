#!/usr/bin/python3
"""Check one fanoutd answer the benchmark got: bench/check_answer.py FILE N

The answer must be {"ok": true, ...} with N results in input order, every
status 2xx and every body present.  Prints "ok n=N bytes=B elapsed_ms=T"
(T: fanoutd's own elapsed_ms for the batch; B: the bodies as returned, JSON
bodies re-serialized) and " hedged=H shared=S slow=W" (the results with
"hedged": true, with "shared": true, and whose JSON body says "slow": true,
the test upstream's slow /tail answers: bench/run TAIL and COLLAPSE), and
exits 0, else says what is wrong and exits 1.
"""
import json
import sys


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    with open(path, "rb") as f:
        raw = f.read()
    try:
        ans = json.loads(raw)
    except ValueError as e:
        sys.exit(f"check_answer: not JSON ({e}): {raw[:200]!r}")
    if ans.get("ok") is not True:
        sys.exit(f"check_answer: not ok: {raw[:400]!r}")
    res = ans.get("results", [])
    if len(res) != n:
        sys.exit(f"check_answer: {len(res)} results, want {n}")
    nbytes = hedged = shared = slow = 0
    for i, r in enumerate(res):
        if r.get("index") != i or not 200 <= r.get("status", 0) < 300 or "body" not in r:
            sys.exit(f"check_answer: bad result {i}: {json.dumps(r)[:300]}")
        b = r["body"]
        nbytes += len(b) if isinstance(b, str) else len(json.dumps(b, separators=(",", ":")))
        hedged += r.get("hedged") is True
        shared += r.get("shared") is True
        slow += isinstance(b, dict) and b.get("slow") is True
    print(f"ok n={n} bytes={nbytes} elapsed_ms={ans.get('elapsed_ms')} hedged={hedged} shared={shared} slow={slow}")


if __name__ == "__main__":
    main()
