// Peer: the hand-written fan-out in Node (>= 18): the global fetch
// (undici, keep-alive) + Promise.all, with a small FIFO limiter of C.
// Every status and body is kept in memory, in input order.
//
//     node node_fetch.mjs URLFILE C
//
// Prints "ok n=N bytes=B elapsed_ms=T" (from the first request to the last
// body collected) and exits 0; any error (incl. non-2xx) -> stderr, exit 1.
import { readFileSync } from 'node:fs';

const [file, cArg] = process.argv.slice(2);
if (!file || !cArg) {
  console.error('usage: node node_fetch.mjs URLFILE C');
  process.exit(2);
}
const urls = readFileSync(file, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
const C = Number(cArg);

let active = 0;
const waiting = [];
function acquire() {
  if (active < C) {
    active++;
    return Promise.resolve();
  }
  return new Promise((resolve) => waiting.push(resolve));
}
function release() {
  const next = waiting.shift();
  if (next) next(); // the slot passes straight to the next waiter
  else active--;
}

async function one(url) {
  await acquire();
  try {
    const r = await fetch(url);
    const body = Buffer.from(await r.arrayBuffer());
    if (!r.ok) throw new Error(`${url}: status ${r.status}`);
    return [r.status, body];
  } finally {
    release();
  }
}

const t0 = performance.now();
try {
  const results = await Promise.all(urls.map(one));
  const ms = performance.now() - t0;
  const bytes = results.reduce((n, [, b]) => n + b.length, 0);
  console.log(`ok n=${results.length} bytes=${bytes} elapsed_ms=${ms.toFixed(1)}`);
  process.exit(0);
} catch (e) {
  console.error(`node_fetch: ${e && e.cause ? `${e.message}: ${e.cause}` : e}`);
  process.exit(1);
}
