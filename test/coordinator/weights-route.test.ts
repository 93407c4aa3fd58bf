// The weights over HTTP on a real server (port 0): each version at /weights/<version>-<sha256>, public and
// immutable, with an ETag and its length; 304 on If-None-Match; HEAD without a body; 404 for an unknown version, a
// wrong hash, an odd path, a query string or a version dropped past the bound; the dataset route still wants its
// token. And the broadcaster over it: tasks and checks name the path instead of carrying the weights. And priming a
// cache in front (weights-prime.ts), with a plain server standing in for the cache: each version fetched through it
// before a task names it; a cache that fails, stalls or cuts the body short holds no step, and says so once.

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RunningServer } from '../../coordinator/server.js';
import { startTestServer } from '../support/test-server.js';
import { Events } from '../../coordinator/events.js';
import { epochOrder, planStep } from '../../coordinator/plan.js';
import { Scheduler } from '../../coordinator/scheduler.js';
import { WeightsBroadcaster } from '../../coordinator/step/broadcaster.js';
import { StructuralVerifier } from '../../coordinator/step/verifier.js';
import type { StepWorker } from '../../coordinator/step/worker.js';
import { checkedPrimeUrl, PRIME_USER_AGENT, WeightsPrimer } from '../../coordinator/weights-prime.js';
import { WEIGHTS_CACHE_CONTROL, WEIGHTS_PREFIX, WeightsStore } from '../../coordinator/weights-route.js';
import { spirals } from '../../shared/data/synthetic.js';
import { ConfigError } from '../../shared/errors.js';
import { initParams } from '../../shared/model/init.js';
import { mlpSpec } from '../../shared/model/spec.js';
import { decodeCoordinatorMessage } from '../../shared/protocol/codec.js';
import type { CoordinatorMessage, TaskMessage } from '../../shared/protocol/messages.js';
import { ShardComputer } from '../../worker/compute.js';
import { honestResult } from '../support/coordinator-harness.js';

const silent = pino({ level: 'silent' });

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Wire bytes of `n` f32 weights, distinct per seed. */
function wire(seed: number, n = 64): Uint8Array {
  return new Uint8Array(Float32Array.from({ length: n }, (_, i) => seed + i / 8).buffer);
}

let server: RunningServer | null = null;

/** The stand-in caches of the priming tests, closed after each. */
const fronts: Server[] = [];

afterEach(async () => {
  await server?.close();
  server = null;
  for (const f of fronts.splice(0)) {
    f.closeAllConnections();
    await new Promise((resolve) => f.close(resolve));
  }
});

async function serve(store: WeightsStore): Promise<string> {
  server = await startTestServer(
    {
      protectedRoutes: new Map([['/data/x', (_req, res) => res.end('data')]]),
      cacheableRoutes: new Map([[WEIGHTS_PREFIX, store.route()]]),
    },
    { worker: 'sesame-sesame-sesame', dashboard: 'peek-peek-peek-peek' },
  );
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

/** What a stand-in cache does with a request: pass it to the coordinator, or fail in one of the ways caches fail. */
type FrontMode = 'pass' | 'bad_gateway' | 'stall' | 'short';

/**
 * A stand-in for the cache in front: answers /weights/ as `mode()` says, passing requests on to `store`'s route;
 * `requests` records each GET's user agent as it arrives, and `waitForRequest` resolves at the next one.
 */
async function front(store: WeightsStore, mode: () => FrontMode) {
  const requests: (string | undefined)[] = [];
  let waiter: (() => void) | null = null;
  const handle = store.route();
  const f = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(req.headers['user-agent']);
    waiter?.();
    waiter = null;
    switch (mode()) {
      case 'pass':
        return handle(req, res, new URL(req.url ?? '/', 'http://front'));
      case 'bad_gateway':
        return res.writeHead(502).end();
      case 'stall':
        return; // never answers: the prime's timeout ends it
      case 'short':
        return res.writeHead(200, { 'content-length': '3' }).end('abc');
    }
  });
  fronts.push(f);
  await new Promise<void>((resolve) => f.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(f.address() as { port: number }).port}`,
    requests,
    waitForRequest: () => new Promise<void>((resolve) => (waiter = resolve)),
  };
}

/** A pino logger whose lines land in `lines`, parsed. */
function capturingLog() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'debug', base: undefined }, { write: (l: string) => lines.push(JSON.parse(l)) });
  return { log, lines, warnings: () => lines.filter((l) => l.level === 40) };
}

describe('priming the cache in front', () => {
  it('fetches the first version when the first step asks, and each later one the moment it is published', async () => {
    const store = new WeightsStore(4, silent);
    let mode: FrontMode = 'pass';
    const cache = await front(store, () => mode);
    const { log, lines } = capturingLog();
    const primer = new WeightsPrimer(store, { url: cache.url, timeoutMs: 10_000, log });
    const ref0 = primer.publish(0, wire(0));
    expect(ref0).toEqual(store.ref(0));
    // Before steps begin (the coordinator may not listen yet) nothing is fetched.
    expect(cache.requests).toEqual([]);
    await primer.ready(0);
    // Read through the cache to the end of the body: the coordinator sent it whole, once.
    expect(cache.requests).toEqual([PRIME_USER_AGENT]);
    expect(store.served).toMatchObject({ bodies: 1, bytes: 256 });
    expect(primer.publish(0, wire(0))).toEqual(ref0);
    await primer.ready(0);
    expect(cache.requests).toHaveLength(1);
    const arrived = cache.waitForRequest();
    primer.publish(1, wire(1));
    await arrived; // started by the publish itself, before anyone asked
    await primer.ready(1);
    expect(store.served).toMatchObject({ bodies: 2, maxBodiesPerVersion: 1 });
    expect(primer.ready(0)).toBeNull();
    // Closed (the run is over), a prime in flight is abandoned without a word, and no other is started.
    mode = 'stall';
    const stalled = cache.waitForRequest();
    primer.publish(2, wire(2));
    await stalled;
    primer.close();
    await primer.ready(2);
    primer.publish(3, wire(3));
    await primer.ready(3);
    expect(cache.requests).toHaveLength(3);
    expect(lines.filter((l) => l.msg === 'weights primed').map((l) => l.version)).toEqual([0, 1]);
    expect(lines.filter((l) => l.level > 30)).toEqual([]);
  });

  it('lets a failed, stalled or cut-short prime hold nothing up, and says so once per drought', async () => {
    const store = new WeightsStore(4, silent);
    let mode: FrontMode = 'bad_gateway';
    const cache = await front(store, () => mode);
    const { log, lines, warnings } = capturingLog();
    const primer = new WeightsPrimer(store, { url: cache.url, timeoutMs: 200, log });
    let version = 0;
    const prime = async (): Promise<void> => {
      primer.publish(version, wire(version));
      await primer.ready(version++);
    };
    await prime();
    mode = 'stall';
    await prime();
    mode = 'short';
    await prime();
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({
      msg: 'cannot prime the cache with the weights; tasks go out anyway, and workers may wait on its lock',
      version: 0,
      url: cache.url,
    });
    expect(String(warnings()[0].err)).toMatch(/^GET \/weights\/0-[0-9a-f]+… answered 502 Bad Gateway$/);
    mode = 'pass';
    await prime();
    expect(lines.find((l) => l.msg === 'weights prime works again')).toMatchObject({ version: 3, failedPrimes: 3 });
    // A new drought is said again, with its own reason.
    mode = 'stall';
    await prime();
    mode = 'short';
    await prime();
    expect(warnings().map((l) => l.err)).toEqual([
      expect.stringMatching(/answered 502 Bad Gateway$/),
      'not done within 200 ms',
    ]);
    expect(lines.filter((l) => l.msg === 'weights primed').map((l) => l.version)).toEqual([3]);
  });

  it.each([
    ['pass', 'after the version is in the cache', 1, 0],
    ['bad_gateway', 'when the cache fails to take it, and the step completes all the same', 0, 1],
  ] as const)('a cache that answers %s: the tasks go out %s', async (mode, _, bodiesAtTask, warned) => {
    const store = new WeightsStore(4, silent);
    const cache = await front(store, () => mode);
    const { log, warnings } = capturingLog();
    const spec = mlpSpec(2, [5], 2, 'tanh', 'cross_entropy');
    const w0 = initParams(spec, 3);
    const order = epochOrder(
      Uint32Array.from({ length: 16 }, (_, i) => i),
      3,
      0,
    );
    const plan = planStep(order, 0, 0, 0, 8, 4);
    const events = new Events(silent);
    const seenAtTask: { requests: number; bodies: number }[] = [];
    events.on('taskAssigned', () => seenAtTask.push({ requests: cache.requests.length, bodies: store.served.bodies }));
    const s = new Scheduler(events, w0.length, {
      minWorkers: 1,
      taskTimeoutMinMs: 60_000,
      taskTimeoutMaxMs: 60_000,
      wireDtype: 'f32',
      verifier: new StructuralVerifier(null),
      weightsOverHttp: () => new WeightsPrimer(store, { url: cache.url, timeoutMs: 10_000, log }),
    });
    s.publish(0, w0);
    // The first step waits for its worker, and the prime with it: the cache is there by the time workers are.
    const step = s.run(plan, 0);
    const w = recordingWorker();
    s.onReady(w);
    await vi.waitFor(() => expect(seenAtTask).toHaveLength(1));
    expect(seenAtTask[0]).toEqual({ requests: 1, bodies: bodiesAtTask });
    expect(cache.requests).toEqual([PRIME_USER_AGENT]);
    const computer = new ShardComputer(spec, spirals(16, 3), 4);
    for (const m of w.got) if (m.type === 'task') s.onResult(w, honestResult(computer, w0, m as TaskMessage));
    expect((await step).count).toBe(8);
    expect(warnings()).toHaveLength(warned);
  });

  it('takes an http or https origin, and refuses anything else in one line', () => {
    expect(checkedPrimeUrl('http://127.0.0.1:8080', '--weights-prime-url')).toBe('http://127.0.0.1:8080');
    expect(checkedPrimeUrl('https://cache.example.org/', '--weights-prime-url')).toBe('https://cache.example.org');
    const refused: [string, RegExp][] = [
      ['cache:8080', /must be the http:\/\/ or https:\/\/ URL of the cache in front, got "cache:8080"$/],
      ['127.0.0.1:8080', /must be the http:\/\/ or https:\/\/ URL of the cache in front, got "127.0.0.1:8080"$/],
      ['ftp://cache', /must be the http:\/\/ or https:\/\/ URL/],
      ['http://user:secret@cache', /must be a URL without a user or password/],
      ['http://cache:8080/weights/', /must be the cache's address alone, e.g. http:\/\/cache:8080 \(workers fetch/],
      ['http://cache/?x=1', /must be the cache's address alone/],
    ];
    for (const [value, message] of refused) {
      let err: unknown = null;
      try {
        checkedPrimeUrl(value, '--weights-prime-url');
      } catch (e) {
        err = e;
      }
      expect(err, value).toBeInstanceOf(ConfigError);
      expect((err as Error).message, value).toMatch(/^--weights-prime-url /);
      expect((err as Error).message, value).toMatch(message);
      expect((err as Error).message, value).not.toContain('\n');
    }
  });
});
