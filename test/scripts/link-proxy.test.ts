// Tests for scripts/link/: the link timing model on its own (exact times, no clock),
// the unit parsers, and the proxy between real sockets on port 0: bytes complete and
// in order both ways (raw TCP and WebSocket through the ws package), half-close,
// backpressure, resets, shutdown with connections open, and the command line.
// Timings are asserted as lower bounds only (the model's delays must be paid at
// least); a loaded machine can only make them longer.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { startLinkProxy, type LinkProxy, type LinkProxyOptions } from '../../scripts/link/link-proxy.js';
import { LinkSchedule } from '../../scripts/link/link-schedule.js';
import { parseBandwidth, parseLatency } from '../../scripts/link/link-shape.js';
import { ConfigError } from '../../shared/errors.js';
import { deriveRng } from '../../shared/rng.js';

const LOCAL = '127.0.0.1';

function randomBytes(n: number, ...path: (number | string)[]): Buffer {
  const rng = deriveRng(7, ...path);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextUint32() & 0xff;
  return out;
}

/** Writes `data` in pieces of seeded random sizes, honouring backpressure, then half-closes. */
async function writeInPieces(socket: Socket, data: Buffer, seed: number): Promise<void> {
  const rng = deriveRng(seed, 'pieces');
  for (let at = 0; at < data.length; ) {
    const size = 1 + rng.nextInt(100_000);
    if (!socket.write(data.subarray(at, at + size))) await once(socket, 'drain');
    at += size;
  }
  socket.end();
}

/** Everything `socket` reads until the peer's FIN. */
async function readToEnd(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'end');
  return Buffer.concat(chunks);
}

/** Resolves when `socket` closes, whether or not an error came first (events.once would reject on it). */
function closeOf(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** A promise and the function that resolves it. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve: (v: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(server: Server): Promise<number> {
  server.listen(0, LOCAL);
  await once(server, 'listening');
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as AddressInfo).port;
}

async function proxyTo(port: number, options: Omit<LinkProxyOptions, 'listenPort' | 'target'>): Promise<LinkProxy> {
  const proxy = await startLinkProxy({ listenPort: 0, target: { host: LOCAL, port }, ...options });
  cleanups.push(() => proxy.close());
  return proxy;
}

async function dial(port: number): Promise<Socket> {
  const socket = connect({ host: LOCAL, port, allowHalfOpen: true, noDelay: true });
  cleanups.push(() => void socket.destroy());
  await once(socket, 'connect');
  return socket;
}

describe('LinkSchedule', () => {
  // 8,000 bit/s: a byte occupies the line for exactly 1 ms.
  const shape = { latencyMs: 10, bandwidthBitsPerSec: 8000 };

  it('delivers a chunk after its serialisation plus the latency, queued behind a busy line', () => {
    const s = new LinkSchedule(shape);
    expect(s.admit(500, 0)).toBe(510);
    expect(s.admit(500, 100)).toBe(1010); // waits for the line until 500
    expect(s.admit(0, 200)).toBe(1010); // a FIN right behind the data
    expect(s.admit(100, 5000)).toBe(5110); // idle line: starts at once
  });

  it('never delivers out of order, and unlimited bandwidth is latency alone', () => {
    const s = new LinkSchedule(shape);
    let last = Number.NEGATIVE_INFINITY;
    const rng = deriveRng(3, 'schedule');
    for (let now = 0, i = 0; i < 1000; i++, now += rng.nextInt(50)) {
      const due = s.admit(rng.nextInt(40), now);
      expect(due).toBeGreaterThanOrEqual(last);
      expect(due).toBeGreaterThanOrEqual(now + shape.latencyMs);
      last = due;
    }
    const free = new LinkSchedule({ latencyMs: 20, bandwidthBitsPerSec: Number.POSITIVE_INFINITY });
    expect(free.admit(1e9, 3)).toBe(23);
  });

  it('keeps a long busy period exact: no drift from adding up per-chunk durations', () => {
    const s = new LinkSchedule({ latencyMs: 5, bandwidthBitsPerSec: 3e7 }); // 1/3750 ms per byte: inexact in binary
    let due = 0;
    for (let i = 0; i < 1_000_000; i++) due = s.admit(7, i * 1e-6);
    expect(due).toBe(0 + 7_000_000 * (8000 / 3e7) + 5);
  });
});

describe('link units', () => {
  it('reads rates as tc spells them (SI, bits per second)', () => {
    expect(parseBandwidth('100mbit')).toBe(1e8);
    expect(parseBandwidth('1gbit')).toBe(1e9);
    expect(parseBandwidth('1.5Mbit')).toBe(1.5e6);
    expect(parseBandwidth('800kbit')).toBe(8e5);
    expect(parseBandwidth('12345')).toBe(12345);
    expect(parseBandwidth('unlimited')).toBe(Number.POSITIVE_INFINITY);
    for (const bad of ['100mb', '0', '-1mbit', 'fast', '']) {
      expect(() => parseBandwidth(bad)).toThrow(ConfigError);
      expect(() => parseBandwidth(bad)).toThrow(`got "${bad}"`);
    }
  });

  it('reads latencies in ms by default', () => {
    expect(parseLatency('20')).toBe(20);
    expect(parseLatency('20ms')).toBe(20);
    expect(parseLatency('1.5s')).toBe(1500);
    expect(parseLatency('500us')).toBe(0.5);
    expect(parseLatency('0')).toBe(0);
    for (const bad of ['-5', '20min', 'soon']) expect(() => parseLatency(bad)).toThrow(ConfigError);
  });

  it('refuses a shape no link has', async () => {
    await expect(startLinkProxy({ listenPort: 0, target: { host: LOCAL, port: 1 }, latencyMs: -1 })).rejects.toThrow(
      'latency must be a finite number of ms ≥ 0, got -1',
    );
    await expect(
      startLinkProxy({ listenPort: 0, target: { host: LOCAL, port: 1 }, down: { bandwidthBitsPerSec: 0 } }),
    ).rejects.toThrow('down (target → client) bandwidth must be > 0');
  });
});

describe('startLinkProxy', () => {
  it('carries large random payloads both ways at once, complete and in order, each ended by its own FIN', async () => {
    const up = randomBytes(3_000_000, 'up');
    const down = randomBytes(2_000_000, 'down');
    let atServer: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
    const port = await listen(
      createServer({ allowHalfOpen: true }, (s) => {
        atServer = readToEnd(s);
        void writeInPieces(s, down, 2);
      }),
    );
    const proxy = await proxyTo(port, { latencyMs: 2, bandwidthBitsPerSec: 1e9 });
    const client = await dial(proxy.port);
    const [atClient] = await Promise.all([readToEnd(client), writeInPieces(client, up, 1)]);
    expect((await atServer).equals(up)).toBe(true);
    expect(atClient.equals(down)).toBe(true);
    expect(proxy.stats().up.bytes).toBe(up.length);
    expect(proxy.stats().down.bytes).toBe(down.length);
  });

  it('keeps the reverse direction open after a half-close: a reply sent after the request FIN arrives', async () => {
    const request = randomBytes(500_000, 'request');
    const port = await listen(
      createServer({ allowHalfOpen: true }, (s) => {
        // Replies only once the request is complete: the client's FIN must have come through.
        void readToEnd(s).then((got) => writeInPieces(s, Buffer.concat([got, got]), 4));
      }),
    );
    const proxy = await proxyTo(port, { latencyMs: 5, bandwidthBitsPerSec: 2e8 });
    const client = await dial(proxy.port);
    const reply = readToEnd(client);
    await writeInPieces(client, request, 3);
    expect((await reply).equals(Buffer.concat([request, request]))).toBe(true);
  });

  it('holds ≤ maxQueuedBytes (plus one read) per direction when the line is slower than the sender', async () => {
    const payload = randomBytes(2_000_000, 'bulk');
    let atServer: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
    const port = await listen(
      createServer({ allowHalfOpen: true }, (s) => {
        atServer = readToEnd(s);
        s.end();
      }),
    );
    const maxQueuedBytes = 64 * 1024;
    const proxy = await proxyTo(port, { latencyMs: 1, bandwidthBitsPerSec: 2e8, maxQueuedBytes });
    const client = await dial(proxy.port);
    await Promise.all([writeInPieces(client, payload, 5), readToEnd(client)]);
    expect((await atServer).equals(payload)).toBe(true);
    const readChunk = 64 * 1024;
    expect(proxy.stats().up.peakHeldBytes).toBeLessThanOrEqual(maxQueuedBytes + readChunk);
  });

  it('carries WebSocket traffic (the ws package) unchanged and in order both ways', async () => {
    const wss = new WebSocketServer({ host: LOCAL, port: 0 });
    await once(wss, 'listening');
    cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
    wss.on('connection', (ws) => {
      // Echoes each message reversed, so a reply is not just the proxy's own buffer handed back.
      ws.on('message', (data: RawData) => ws.send(Buffer.from(data as Buffer).reverse()));
    });
    const proxy = await proxyTo((wss.address() as AddressInfo).port, { latencyMs: 3, bandwidthBitsPerSec: 1e9 });
    const ws = new WebSocket(`ws://${LOCAL}:${proxy.port}`);
    cleanups.push(() => ws.terminate());
    await once(ws, 'open');
    const rng = deriveRng(9, 'ws');
    const sent = Array.from({ length: 120 }, (_, i) => randomBytes(1 + rng.nextInt(80_000), 'message', i));
    const replies: Buffer[] = [];
    const all = new Promise<void>((resolve) =>
      ws.on('message', (data: RawData) => {
        replies.push(data as Buffer);
        if (replies.length === sent.length) resolve();
      }),
    );
    for (const m of sent) ws.send(m);
    await all;
    replies.forEach((r, i) => expect(r.equals(Buffer.from(sent[i]).reverse())).toBe(true));
    ws.close();
    await once(ws, 'close');
  });

  it('makes a round trip take at least the two one-way latencies', async () => {
    const port = await listen(createServer((s) => s.pipe(s)));
    const proxy = await proxyTo(port, { up: { latencyMs: 10 }, down: { latencyMs: 25 } });
    const client = await dial(proxy.port);
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      client.write('x');
      await once(client, 'data');
      expect(performance.now() - started).toBeGreaterThanOrEqual(35);
    }
  });

  it('makes N bytes take at least N × 8 / bandwidth plus the latency to arrive', async () => {
    const n = 400_000;
    const bandwidth = 2e7; // 160 ms for n
    const lastByte = deferred<number>();
    let received = 0;
    const port = await listen(
      createServer((s) =>
        s.on('data', (c: Buffer) => {
          received += c.length;
          if (received === n) lastByte.resolve(performance.now());
        }),
      ),
    );
    const proxy = await proxyTo(port, { latencyMs: 7, up: { bandwidthBitsPerSec: bandwidth } });
    const client = await dial(proxy.port);
    const started = performance.now();
    client.write(randomBytes(n, 'timed'));
    expect((await lastByte.promise) - started).toBeGreaterThanOrEqual((n * 8 * 1000) / bandwidth + 7);
  });

  it('closes the client when the target refuses, and the target when the client vanishes', async () => {
    const refused = createServer();
    const deadPort = await listen(refused);
    await new Promise<void>((r) => refused.close(() => r()));
    const toNowhere = await proxyTo(deadPort, { latencyMs: 1 });
    const orphan = await dial(toNowhere.port);
    orphan.on('error', () => {}); // a reset is the expected outcome
    await closeOf(orphan);

    const targetOpen = deferred();
    const targetClosed = deferred();
    const port = await listen(
      createServer((s) => {
        s.on('error', () => {});
        s.on('close', () => targetClosed.resolve());
        s.resume(); // reading, or its FIN would never surface
        targetOpen.resolve();
      }),
    );
    const proxy = await proxyTo(port, { latencyMs: 5 });
    const client = await dial(proxy.port);
    await targetOpen.promise;
    client.write(randomBytes(1000, 'doomed'));
    // Linux may report this reset to the proxy as an error or as a FIN: either way the target must not be left open.
    client.resetAndDestroy();
    await targetClosed.promise;
    expect(toNowhere.stats().open).toBe(0);
  });

  it('shuts down with connections open and data in flight: close() resolves, every socket closes', async () => {
    const atTarget: Socket[] = [];
    const allThere = deferred();
    const port = await listen(
      createServer((s) => {
        s.on('error', () => {});
        s.resume();
        atTarget.push(s);
        if (atTarget.length === 3) allThere.resolve();
      }),
    );
    const proxy = await startLinkProxy({ listenPort: 0, target: { host: LOCAL, port }, latencyMs: 60_000 });
    const clients = await Promise.all([0, 1, 2].map(() => dial(proxy.port)));
    for (const c of clients) {
      c.on('error', () => {});
      c.on('end', () => c.end()); // dial() keeps half-open sockets: answer the FIN as a plain client would
      c.resume();
      c.write(randomBytes(10_000, 'stuck'));
    }
    await allThere.promise;
    expect(proxy.stats().open).toBe(3);
    const closed = [...clients, ...atTarget].map(closeOf);
    await proxy.close();
    await Promise.all(closed);
    expect(proxy.stats().open).toBe(0);
    const late = connect({ host: LOCAL, port: proxy.port });
    const [err] = (await once(late, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
  });
});

describe('link-proxy command', () => {
  const script = fileURLToPath(new URL('../../dist/scripts/link-proxy.js', import.meta.url));

  it('forwards with the link it is given and logs what it carried when stopped', async () => {
    const port = await listen(createServer((s) => s.pipe(s)));
    const child = spawn(
      process.execPath,
      [
        script,
        '--listen',
        '0',
        '--target',
        `${LOCAL}:${port}`,
        '--latency',
        '5',
        '--bandwidth',
        '100mbit',
        '--log-format',
        'json',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanups.push(() => void child.kill('SIGKILL'));
    const lines: Record<string, unknown>[] = [];
    let partial = '';
    const listening = new Promise<Record<string, unknown>>((resolve) =>
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop()!;
        for (const text of parts) {
          const line = JSON.parse(text) as Record<string, unknown>;
          lines.push(line);
          if (line.msg === 'listening') resolve(line);
        }
      }),
    );
    const info = await listening;
    expect(info.up).toBe('5 ms / 100 Mbit/s');
    const client = await dial(Number(info.port));
    const payload = randomBytes(300_000, 'cli');
    const echoed = readToEnd(client);
    await writeInPieces(client, payload, 6);
    expect((await echoed).equals(payload)).toBe(true);
    const exited = once(child, 'close');
    child.kill('SIGTERM');
    expect((await exited)[0]).toBe(0);
    const closed = lines.find((l) => l.msg === 'closed');
    expect(closed?.up).toMatchObject({ bytes: payload.length });
  });

  it('refuses a bad rate in one line, naming it', async () => {
    const child = spawn(process.execPath, [script, '--target', `${LOCAL}:1`, '--bandwidth', '100mb'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const [code] = await once(child, 'close');
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([expect.stringContaining('got "100mb"')]);
  });
});
