// The weights over HTTP on a real server (port 0): each version at /weights/<version>-<sha256>, public and
// immutable, with an ETag and its length; 304 on If-None-Match; HEAD without a body; 404 for an unknown version, a
// wrong hash, an odd path, a query string or a version dropped past the bound; the dataset route still wants its
// token. And the broadcaster over it: tasks and checks name the path instead of carrying the weights.

import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FailedTokenThrottle, singleToken } from '../../coordinator/auth.js';
import { type RunningServer, startServer } from '../../coordinator/server.js';
import { WeightsBroadcaster } from '../../coordinator/step/broadcaster.js';
import type { StepWorker } from '../../coordinator/step/worker.js';
import { WEIGHTS_CACHE_CONTROL, WEIGHTS_PREFIX, WeightsStore } from '../../coordinator/weights-route.js';
import { decodeCoordinatorMessage } from '../../shared/protocol/codec.js';
import type { CoordinatorMessage } from '../../shared/protocol/messages.js';

const silent = pino({ level: 'silent' });

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Wire bytes of `n` f32 weights, distinct per seed. */
function wire(seed: number, n = 64): Uint8Array {
  return new Uint8Array(Float32Array.from({ length: n }, (_, i) => seed + i / 8).buffer);
}

let server: RunningServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

async function serve(store: WeightsStore): Promise<string> {
  server = await startServer({
    host: '127.0.0.1',
    port: 0,
    limits: {
      preHelloMaxBytes: 1024,
      headersTimeoutMs: 5000,
      idleTimeoutMs: 5000,
      keepAliveTimeoutMs: 5000,
      maxConnections: 64,
      maxConnectionsPerIp: 64,
    },
    tls: null,
    tokens: singleToken('sesame-sesame-sesame'),
    dashboardToken: 'peek-peek-peek-peek',
    throttle: new FailedTokenThrottle({ baseMs: 1, maxMs: 1, forgetMs: 1, maxAddresses: 1 }),
    protectedRoutes: new Map([['/data/x', (_req, res) => res.end('data')]]),
    cacheableRoutes: new Map([[WEIGHTS_PREFIX, store.route()]]),
    log: silent,
    onConnection: (socket) => socket.close(),
  });
  return `http://127.0.0.1:${server.port}`;
}

describe('GET /weights/<version>-<sha256>', () => {
  it('serves the wire bytes, public and immutable, with an ETag and a Content-Length, and no token', async () => {
    const counters = { bytesOut: 0, tensorBytes: 0 };
    const store = new WeightsStore(4, silent, counters);
    const bytes = wire(1);
    const ref = store.publish(7, bytes);
    expect(ref).toEqual({ path: `/weights/7-${sha256(bytes)}`, sha256: sha256(bytes) });
    bytes.fill(0); // the broadcaster rewrites its buffer at the next publish: the store keeps its own copy
    const base = await serve(store);
    const res = await fetch(base + ref.path);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(WEIGHTS_CACHE_CONTROL).toBe(res.headers.get('cache-control'));
    expect(res.headers.get('etag')).toBe(`"${ref.sha256}"`);
    expect(res.headers.get('content-length')).toBe(String(64 * 4));
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const body = new Uint8Array(await res.arrayBuffer());
    expect(sha256(body)).toBe(ref.sha256);
    expect(body).toEqual(wire(1));
    expect(store.served).toMatchObject({ versions: 1, bodies: 1, bytes: 256, maxBodiesPerVersion: 1 });
    // Bodies sent over HTTP count as the coordinator's bytes out, as socket messages do.
    expect(counters).toEqual({ bytesOut: 256, tensorBytes: 256 });
  });

  it('answers If-None-Match with its ETag (strong or weak) with 304 and no body', async () => {
    const store = new WeightsStore(4, silent);
    const ref = store.publish(0, wire(2));
    const base = await serve(store);
    for (const tag of [`"${ref.sha256}"`, `W/"${ref.sha256}"`, `"other", "${ref.sha256}"`]) {
      const res = await fetch(base + ref.path, { headers: { 'if-none-match': tag } });
      expect(res.status, tag).toBe(304);
      expect(res.headers.get('etag')).toBe(`"${ref.sha256}"`);
      expect((await res.arrayBuffer()).byteLength).toBe(0);
    }
    const other = await fetch(base + ref.path, { headers: { 'if-none-match': '"nope"' } });
    expect(other.status).toBe(200);
    await other.arrayBuffer();
    expect(store.served).toMatchObject({ notModified: 3, bodies: 1 });
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const store = new WeightsStore(4, silent);
    const ref = store.publish(3, wire(3));
    const base = await serve(store);
    const res = await fetch(base + ref.path, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('256');
    expect(res.headers.get('etag')).toBe(`"${ref.sha256}"`);
    expect(res.headers.get('cache-control')).toBe(WEIGHTS_CACHE_CONTROL);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    expect(store.served).toMatchObject({ heads: 1, bodies: 0 });
  });

  it('404s an unknown version, a wrong hash, an odd path, a query string, a method but GET or HEAD', async () => {
    const store = new WeightsStore(4, silent);
    const ref = store.publish(5, wire(5));
    const base = await serve(store);
    const wrongHash = ref.sha256.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const paths = [
      `/weights/6-${ref.sha256}`,
      `/weights/5-${wrongHash}`,
      `/weights/5-${ref.sha256.toUpperCase()}`,
      `/weights/05-${ref.sha256}`,
      `/weights/5-${ref.sha256}/`,
      `/weights/5`,
      '/weights/',
      `${ref.path}?v=1`,
    ];
    for (const path of paths) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('cache-control'), path).toBe('no-store');
      await res.arrayBuffer();
    }
    const post = await fetch(base + ref.path, { method: 'POST' });
    expect(post.status).toBe(404);
    await post.arrayBuffer();
    expect(store.served).toMatchObject({ notFound: paths.length, bodies: 0 });
  });

  it('keeps only the newest versions: an older one is 404 and has no ref', async () => {
    const store = new WeightsStore(2, silent);
    const refs = [1, 2, 3].map((v) => store.publish(v, wire(v)));
    const base = await serve(store);
    expect(store.ref(1)).toBeNull();
    expect(store.ref(2)).toEqual(refs[1]);
    expect(store.ref(3)).toEqual(refs[2]);
    const statuses = await Promise.all(
      refs.map(async (r) => {
        const res = await fetch(base + r.path);
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(statuses).toEqual([404, 200, 200]);
  });

  it('keeps a version published again with the same weights as it was, and replaces it for other weights', () => {
    const store = new WeightsStore(4, silent);
    const first = store.publish(0, wire(0));
    expect(store.publish(0, wire(0))).toEqual(first);
    expect(store.served.versions).toBe(1);
    const other = store.publish(0, wire(9));
    expect(other.sha256).toBe(sha256(wire(9)));
    expect(store.ref(0)).toEqual(other);
    expect(store.served.versions).toBe(2);
  });

  it('leaves the dataset route behind its token', async () => {
    const base = await serve(new WeightsStore(1, silent));
    const res = await fetch(`${base}/data/x`);
    expect(res.status).toBe(401);
    await res.arrayBuffer();
  });
});

/** A worker that keeps what it is sent, decoded. */
function recordingWorker(): StepWorker & { readonly got: CoordinatorMessage[] } {
  const got: CoordinatorMessage[] = [];
  return {
    id: 'w1',
    kind: 'node',
    agent: 'test',
    remote: '127.0.0.1',
    log: silent,
    tasksDone: 0,
    samplesDone: 0,
    computeMs: 0,
    standby: null,
    got,
    send: (bytes, onSent) => {
      got.push(decodeCoordinatorMessage(bytes.slice()));
      onSent?.();
    },
    reject: () => {},
    ban: () => {},
  };
}

describe('the broadcaster over HTTP', () => {
  const shards = [{ id: 0, indices: Uint32Array.of(0, 1) }];
  const task = (taskId: number, version: number) => ({ taskId, version, step: version, numShards: 1, shards });

  it('sends a joining worker nothing, and every task the path and hash of its version instead of the weights', () => {
    const counters = { bytesOut: 0, tensorBytes: 0 };
    let store: WeightsStore | null = null;
    const b = new WeightsBroadcaster('f32', counters, (c) => (store = new WeightsStore(2, silent, c)));
    const w = recordingWorker();
    const w0 = Float32Array.from([1, 2, 3]);
    b.publish(0, w0);
    b.send(w);
    expect(w.got).toEqual([]);
    b.sendTask(w, task(1, 0));
    b.sendTask(w, task(2, 0));
    const ref0 = store!.ref(0)!;
    expect(ref0.sha256).toBe(sha256(new Uint8Array(w0.buffer)));
    for (const m of w.got) expect(m).toMatchObject({ type: 'task', version: 0, weights: null, weightsRef: ref0 });
    expect(counters.tensorBytes).toBe(0);
    b.publish(1, Float32Array.from([4, 5, 6]));
    b.sendTask(w, task(3, 1));
    expect(w.got[2]).toMatchObject({ version: 1, weights: null, weightsRef: store!.ref(1) });
  });

  it('sends a check the path of its version while it is served, and the weights themselves once it is not', () => {
    let store: WeightsStore | null = null;
    const b = new WeightsBroadcaster(
      'f32',
      { bytesOut: 0, tensorBytes: 0 },
      (c) => (store = new WeightsStore(2, silent, c)),
    );
    const w = recordingWorker();
    const versions = [0, 1, 2].map((v) => Float32Array.from([v, v + 1]));
    versions.forEach((weights, v) => b.publish(v, weights));
    const work = (version: number) => ({ version, step: version, numShards: 1, shards, weights: versions[version] });
    b.sendCheck(w, 1, work(2));
    b.sendCheck(w, 2, work(0)); // dropped: only the newest two are kept
    expect(w.got[0]).toMatchObject({ type: 'check', version: 2, weights: null, weightsRef: store!.ref(2) });
    expect(w.got[1]).toMatchObject({ type: 'check', version: 0 });
    expect(w.got[1]).not.toHaveProperty('weightsRef');
    expect((w.got[1] as { weights: Float32Array }).weights).toEqual(versions[0]);
  });
});
