#!/usr/bin/python3
"""Peer: the same hand-written fan-out with aiohttp.

One aiohttp.ClientSession (TCPConnector limit = C, keep-alive),
asyncio.TaskGroup, asyncio.Semaphore(C), raise_for_status=True.  Every
status and body is kept in memory, in input order.

    /usr/bin/python3 aiohttp_taskgroup.py URLFILE C

Prints "ok n=N bytes=B elapsed_ms=T" (from creating the session to the
last body collected) and exits 0; any error -> stderr, exit 1.
"""
import asyncio
import sys
import time

import aiohttp


async def fan_out(urls, c):
    sem = asyncio.Semaphore(c)
    results = [None] * len(urls)
    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=connector,
                                     raise_for_status=True) as session:

        async def one(i, url):
            async with sem:
                async with session.get(url) as r:
                    body = await r.read()
                    if not 200 <= r.status < 300:
                        raise RuntimeError(f"{url}: status {r.status}")
                    results[i] = (r.status, body)

        async with asyncio.TaskGroup() as tg:
            for i, url in enumerate(urls):
                tg.create_task(one(i, url))
    return results


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: aiohttp_taskgroup.py URLFILE C")
    with open(sys.argv[1]) as f:
        urls = [line.strip() for line in f if line.strip()]
    c = int(sys.argv[2])
    t0 = time.perf_counter()
    try:
        results = asyncio.run(fan_out(urls, c))
    except BaseException as e:
        print(f"aiohttp_taskgroup: {e!r}", file=sys.stderr)
        sys.exit(1)
    ms = (time.perf_counter() - t0) * 1000
    nbytes = sum(len(body) for _, body in results)
    print(f"ok n={len(results)} bytes={nbytes} elapsed_ms={ms:.1f}")


if __name__ == "__main__":
    main()
