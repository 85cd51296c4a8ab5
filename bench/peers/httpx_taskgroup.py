#!/usr/bin/python3
"""Peer: what a Python user writes by hand instead of calling fanoutd.

One httpx.AsyncClient (the "session": keep-alive pool, limits >= C),
asyncio.TaskGroup (fail fast: the first error cancels the rest),
asyncio.Semaphore(C) and raise_for_status().  Every status and body is
kept in memory, in input order.

    /usr/bin/python3 httpx_taskgroup.py URLFILE C [--http2] [--cacert FILE]

URLFILE has one URL a line.  --http2: AsyncClient(http2=True) (needs
python3-h2; over https ALPN picks h2, and the requests share one
connection); --cacert FILE: verify the servers against FILE, not the
system store.  Prints "ok n=N bytes=B elapsed_ms=T" (T: from
creating the client to the last body collected, interpreter start-up and
imports excluded) and exits 0; any error -> message on stderr, exit 1.
"""
import asyncio
import sys
import time

import httpx


async def fan_out(urls, c, http2=False, verify=True):
    sem = asyncio.Semaphore(c)
    results = [None] * len(urls)
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(limits=limits, http2=http2, verify=verify) as client:

        async def one(i, url):
            async with sem:
                r = await client.get(url)
                r.raise_for_status()
                if not 200 <= r.status_code < 300:
                    raise RuntimeError(f"{url}: status {r.status_code}")
                results[i] = (r.status_code, r.content)

        async with asyncio.TaskGroup() as tg:
            for i, url in enumerate(urls):
                tg.create_task(one(i, url))
    return results


def main():
    args, http2, verify = sys.argv[1:], False, True
    if "--http2" in args:
        args.remove("--http2")
        http2 = True
    if "--cacert" in args[:-1]:
        i = args.index("--cacert")
        verify = args.pop(i + 1)
        args.pop(i)
    if len(args) != 2:
        sys.exit("usage: httpx_taskgroup.py URLFILE C [--http2] [--cacert FILE]")
    with open(args[0]) as f:
        urls = [line.strip() for line in f if line.strip()]
    c = int(args[1])
    t0 = time.perf_counter()
    try:
        results = asyncio.run(fan_out(urls, c, http2, verify))
    except BaseException as e:  # ExceptionGroup from the TaskGroup
        print(f"httpx_taskgroup: {e!r}", file=sys.stderr)
        sys.exit(1)
    ms = (time.perf_counter() - t0) * 1000
    nbytes = sum(len(body) for _, body in results)
    print(f"ok n={len(results)} bytes={nbytes} elapsed_ms={ms:.1f}")


if __name__ == "__main__":
    main()
