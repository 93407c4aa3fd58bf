// Weights a task names by path (the coordinator's --weights-over-http), on the worker's side: WorkerClient fetches
// them, checks their SHA-256 before computing, fetches once more past caches after a mismatch and closes after a
// second one, and skips (without closing) a task whose fetch failed; the Node fetcher asks only the origin it joined,
// sends no token, and holds a body to the model's size.

import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { headerFields } from '../../shared/data/hash-encoding.js';
import { spirals } from '../../shared/data/synthetic.js';
import { initParams } from '../../shared/model/init.js';
import { mlpSpec } from '../../shared/model/spec.js';
import { CloseCode, PROTOCOL_VERSION, ProtocolError } from '../../shared/protocol/codes.js';
import { decodeCoordinatorMessage, decodeWorkerMessage, encode } from '../../shared/protocol/codec.js';
import type { CoordinatorMessage, ResultMessage, WorkerMessage } from '../../shared/protocol/messages.js';
import { type FetchWeights, WorkerClient } from '../../worker/client.js';
import { ShardComputer } from '../../worker/compute.js';
import { makeWeightsFetcher } from '../../worker/node/weights-fetch.js';

const SEED = 5;
const DATASET = spirals(32, SEED);
const SPEC = mlpSpec(2, [6], 2, 'tanh', 'cross_entropy');
const SHARD = 8;
const W0 = initParams(SPEC, SEED);
const W1 = W0.map((w) => w * 0.75);
const LIMITS = { paramCount: W0.length, maxNodes: 4, wireDtype: 'f32' } as const;
const SHARDS = [0, 1].map((id) => ({ id, indices: Uint32Array.from({ length: SHARD }, (_, i) => id * SHARD + i) }));

function bytesOf(w: Float32Array): Uint8Array {
  return new Uint8Array(w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength));
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function refOf(version: number, w: Float32Array) {
  const hash = sha256(bytesOf(w));
  return { path: `/weights/${version}-${hash}`, sha256: hash };
}

function expected(weights: Float32Array): Float32Array {
  return new ShardComputer(SPEC, DATASET, SHARD, 'js').computeNodes(weights, SHARDS, 2)[0].partial.grad;
}

interface Logged {
  readonly msg: string;
  readonly obj: object;
}

/** A client whose fetches `fetchWeights` answers; what it sends, logs and why it closed are kept. */
function client(fetchWeights: FetchWeights) {
  const sent: WorkerMessage[] = [];
  const warned: Logged[] = [];
  let closed: { code: number; reason: string } | null = null;
  let wake: (() => void) | null = null;
  const c = new WorkerClient(
    {
      send: (bytes) => {
        sent.push(decodeWorkerMessage(bytes.slice(), LIMITS));
        wake?.();
      },
      close: (code, reason) => {
        closed = { code, reason };
        wake?.();
      },
    },
    {
      token: 't',
      kind: 'node',
      agent: 'test',
      loadDataset: async () => DATASET,
      fetchWeights,
      log: {
        info: () => {},
        debug: () => {},
        warn: (obj, msg) => {
          warned.push({ obj, msg });
          wake?.();
        },
      },
    },
  );
  /** Resolves once `done()` holds, checked after every send, close and warning. */
  const until = (done: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      wake = () => {
        if (done()) resolve();
      };
      wake();
    });
  const receive = (m: CoordinatorMessage): void => c.receive(encode(m));
  return { c, sent, warned, until, receive, closed: () => closed as { code: number; reason: string } | null };
}

async function joined(fetchWeights: FetchWeights) {
  const k = client(fetchWeights);
  k.c.start();
  k.receive({
    type: 'welcome',
    protocol: PROTOCOL_VERSION,
    workerId: 'w1',
    spec: SPEC,
    dataset: { ...headerFields(DATASET), hash: 'h', path: '/data/h' },
    shardSize: SHARD,
    kernels: 'js',
    wireDtype: 'f32',
  });
  await k.until(() => k.sent.length >= 2); // hello, ready
  return k;
}

const task = (taskId: number, version: number, w: Float32Array): CoordinatorMessage => ({
  type: 'task',
  taskId,
  version,
  step: 0,
  numShards: 2,
  shards: SHARDS,
  dtype: 'f32',
  weights: null,
  weightsRef: refOf(version, w),
});

describe('WorkerClient with weights over HTTP', () => {
  it('fetches the weights a task names, once per version, and computes with them', async () => {
    const asked: string[] = [];
    const k = await joined(async (path, bytes, fresh) => {
      asked.push(`${path} ${bytes} ${fresh}`);
      return bytesOf(W1);
    });
    k.receive(task(1, 1, W1));
    k.receive(task(2, 1, W1));
    await k.until(() => k.sent.length >= 4);
    expect(asked).toEqual([`${refOf(1, W1).path} ${W0.length * 4} false`]);
    for (const r of k.sent.slice(2) as ResultMessage[]) expect([...r.grads]).toEqual([...expected(W1)]);
    expect(k.closed()).toBeNull();
  });

  it('rejects bytes that do not match the hash, fetches again past caches, computes with those', async () => {
    const fresh: boolean[] = [];
    const k = await joined(async (_path, _bytes, f) => {
      fresh.push(f);
      return bytesOf(f ? W1 : W0); // a stale or poisoned cache answers first
    });
    k.receive(task(1, 1, W1));
    await k.until(() => k.sent.length >= 3);
    expect(fresh).toEqual([false, true]);
    expect(k.warned.map((w) => w.msg)).toEqual([
      'weights rejected: their SHA-256 does not match; fetching again past caches',
    ]);
    expect(k.warned[0].obj).toMatchObject({ expected: refOf(1, W1).sha256, got: refOf(0, W0).sha256 });
    expect([...(k.sent[2] as ResultMessage).grads]).toEqual([...expected(W1)]);
  });

  it('closes with a clear reason, computing nothing, when bytes fetched past caches mismatch too', async () => {
    const k = await joined(async () => bytesOf(W0));
    k.receive(task(1, 1, W1));
    await k.until(() => k.closed() !== null);
    expect(k.closed()!.code).toBe(CloseCode.PROTOCOL_ERROR);
    expect(k.closed()!.reason).toMatch(/^the weights at \/weights\/1-[0-9a-f]{10,} do not match their SHA-256/);
    expect(k.sent).toHaveLength(2); // no result
    expect(k.warned.filter((w) => w.msg.startsWith('weights rejected'))).toHaveLength(2);
  });

  it('leaves a task whose fetch failed to the deadline, stays connected, and fetches again with the next', async () => {
    let calls = 0;
    const k = await joined(async () => {
      calls++;
      if (calls === 1) throw new Error('GET /weights/1-… answered 502 Bad Gateway');
      return bytesOf(W1);
    });
    k.receive(task(1, 1, W1));
    await k.until(() => k.warned.length >= 1);
    expect(k.warned[0].msg).toMatch(/^cannot fetch the weights/);
    expect(k.warned[0].obj).toMatchObject({ version: 1, err: 'GET /weights/1-… answered 502 Bad Gateway' });
    k.receive(task(2, 1, W1));
    await k.until(() => k.sent.length >= 3);
    expect((k.sent[2] as ResultMessage).taskId).toBe(2);
    expect([...(k.sent[2] as ResultMessage).grads]).toEqual([...expected(W1)]);
    expect(k.closed()).toBeNull();
  });

  it('adopts the weights a check fetched when they are newer, and does not fetch them again for a task', async () => {
    const asked: string[] = [];
    const k = await joined(async (path) => {
      asked.push(path);
      return bytesOf(W1);
    });
    const { weightsRef, ...work } = task(0, 1, W1) as Extract<CoordinatorMessage, { type: 'task' }>;
    k.receive({ ...work, type: 'check', checkId: 9, weightsRef: weightsRef! });
    k.receive(task(1, 1, W1));
    await k.until(() => k.sent.length >= 4);
    expect(k.sent[2]).toMatchObject({ type: 'digest', checkId: 9 });
    expect([...(k.sent[3] as ResultMessage).grads]).toEqual([...expected(W1)]);
    expect(asked).toEqual([refOf(1, W1).path]);
  });

  it('refuses a coordinator that serves weights over HTTP when it has no way to fetch them', async () => {
    const k = client(undefined as unknown as FetchWeights);
    k.c.start();
    k.receive({
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      workerId: 'w1',
      spec: SPEC,
      dataset: { ...headerFields(DATASET), hash: 'h', path: '/data/h' },
      shardSize: SHARD,
      kernels: 'js',
      wireDtype: 'f32',
    });
    await k.until(() => k.sent.length >= 2);
    k.receive(task(1, 1, W1));
    await k.until(() => k.closed() !== null);
    expect(k.closed()!.reason).toMatch(/serves the weights over HTTP, and this worker cannot fetch them/);
  });
});

describe('the weightsRef at the protocol boundary', () => {
  const base = {
    type: 'task',
    taskId: 1,
    version: 4,
    step: 0,
    numShards: 2,
    shards: SHARDS,
    dtype: 'f32',
    weights: null,
  } as const;
  const good = refOf(4, W1);

  it('decodes a path of the message version that names its hash', () => {
    expect(decodeCoordinatorMessage(encode({ ...base, weightsRef: good }))).toMatchObject({ weightsRef: good });
    expect(decodeCoordinatorMessage(encode(base))).not.toHaveProperty('weightsRef');
  });

  it.each([
    ['another origin', { ...good, path: `//evil.example${good.path}` }],
    ['an absolute URL', { ...good, path: `http://evil.example${good.path}` }],
    ['another version', { ...good, path: good.path.replace('/4-', '/5-') }],
    ['another hash', { ...good, sha256: sha256(bytesOf(W0)) }],
    ['a short hash', { path: '/weights/4-abc', sha256: 'abc' }],
    ['upper-case hex', { path: good.path.toUpperCase(), sha256: good.sha256.toUpperCase() }],
    ['a dot segment', { ...good, path: `/weights/../data/${good.sha256}` }],
  ])('refuses %s', (_what, weightsRef) => {
    expect(() => decodeCoordinatorMessage(encode({ ...base, weightsRef }))).toThrow(ProtocolError);
  });

  it('refuses weights and a weightsRef together', () => {
    expect(() => decodeCoordinatorMessage(encode({ ...base, weights: W1, weightsRef: good }))).toThrow(
      /the weights or a weightsRef, not both/,
    );
  });
});

describe('the Node weights fetcher', () => {
  let server: Server | null = null;

  afterEach(async () => {
    await new Promise<void>((resolve) => (server === null ? resolve() : server.close(() => resolve())));
    server = null;
  });

  /** A server answering every request with `body` (and `status`); the request headers are kept. */
  async function serve(body: Uint8Array, status = 200): Promise<{ url: string; headers: IncomingHttpHeaders[] }> {
    const headers: IncomingHttpHeaders[] = [];
    server = createServer((req, res) => {
      headers.push(req.headers);
      res.writeHead(status, { 'content-length': body.byteLength }).end(body);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, headers };
  }

  it('GETs the path from the origin it joined, without a token, and past caches when asked', async () => {
    const { url, headers } = await serve(bytesOf(W1));
    const fetchWeights = makeWeightsFetcher(url);
    expect(await fetchWeights(refOf(1, W1).path, W1.length * 4, false)).toEqual(bytesOf(W1));
    await fetchWeights(refOf(1, W1).path, W1.length * 4, true);
    expect(headers[0].authorization).toBeUndefined();
    expect(headers[0]['cache-control']).toBeUndefined();
    expect(headers[1]['cache-control']).toBe('no-cache');
  });

  it('refuses a path off its origin, a body of another size, and an error status, each in one line', async () => {
    const { url } = await serve(bytesOf(W1));
    const fetchWeights = makeWeightsFetcher(url);
    await expect(fetchWeights(`//evil.example${refOf(1, W1).path}`, W1.length * 4, false)).rejects.toThrow(
      /leaves http:\/\/127\.0\.0\.1:\d+/,
    );
    await expect(fetchWeights(refOf(1, W1).path, W1.length * 4 + 4, false)).rejects.toThrow(
      /announces \d+ bytes, the model's weights are \d+/,
    );
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    const missing = await serve(new Uint8Array(0), 404);
    await expect(makeWeightsFetcher(missing.url)(refOf(1, W1).path, 8, false)).rejects.toThrow(/answered 404/);
  });
});
