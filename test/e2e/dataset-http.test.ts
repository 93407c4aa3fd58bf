// The dataset's HTTP route on a real coordinator (port 0): the body as stored,
// compressed when the client accepts it, cacheable for good (immutable URL by hash,
// an ETag per representation, 304 on If-None-Match); and the Node worker's loader
// taking it compressed, widening byte features to exactly the coordinator's floats,
// and holding an inflating body to the size the descriptor announces.

import { mkdtempSync, statSync } from 'node:fs';
import { createServer, get, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { narrowToBytes } from '../../shared/data/byte-features.js';
import type { Dataset } from '../../shared/data/dataset.js';
import { headerFields } from '../../shared/data/hash-encoding.js';
import { blobs } from '../../shared/data/synthetic.js';
import { transferByteLength, transferParts } from '../../shared/data/transfer.js';
import { DataError } from '../../shared/errors.js';
import { initParams } from '../../shared/model/init.js';
import { mlpSpec } from '../../shared/model/spec.js';
import type { DatasetDescriptor } from '../../shared/protocol/messages.js';
import { makeDatasetLoader } from '../../worker/node/dataset-cache.js';
import { type Coordinator, startCoordinator } from '../support/coordinator-harness.js';

const TOKEN = 'data-token';
const quiet = { info: () => {}, warn: () => {}, debug: () => {} };

/** 2,000 samples × 64 features on 41 levels: byte features that compress. */
function byteDataset(): Dataset {
  const base = blobs(2_000, 9, { numFeatures: 64 });
  const features = base.features.map((v) => Math.round(Math.max(-2, Math.min(2, v)) * 10) / 10);
  return { ...base, features, bytes: narrowToBytes(features)! };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function serving(ds: Dataset): Promise<{ c: Coordinator; descriptor: DatasetDescriptor; http: string }> {
  const spec = mlpSpec(ds.numFeatures, [4], ds.numClasses, 'relu', 'cross_entropy');
  const c = await startCoordinator({
    spec,
    dataset: ds,
    shardSize: 8,
    numShards: 2,
    weights: initParams(spec, 1),
    token: TOKEN,
    helloTimeoutMs: 5_000,
    heartbeatMs: 5_000,
    taskTimeoutMinMs: 1_000,
    taskTimeoutMaxMs: 5_000,
  });
  closers.push(() => c.close());
  const descriptor = { ...headerFields(ds), hash: c.datasetHash, path: `/data/${c.datasetHash}` };
  return { c, descriptor, http: c.url.replace('ws:', 'http:') };
}

interface Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body as it crossed the wire (still compressed). */
  readonly body: Buffer;
}

function request(url: string, headers: Record<string, string>): Promise<Response> {
  return new Promise((resolve, reject) => {
    get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const auth = { authorization: `Bearer ${TOKEN}` };

describe('GET /data/<hash>', () => {
  it('answers the stored bytes compressed as the client prefers, each with its ETag, cacheable for good', async () => {
    const ds = byteDataset();
    const { descriptor, http } = await serving(ds);
    const url = `${http}${descriptor.path}`;
    const identity = Buffer.concat(transferParts(ds));
    expect(identity.byteLength).toBe(transferByteLength(descriptor));

    const plain = await request(url, auth);
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.equals(identity)).toBe(true);
    expect(plain.headers.etag).toBe(`"${descriptor.hash}"`);
    expect(plain.headers['cache-control']).toMatch(/immutable/);
    expect(plain.headers['cache-control']).toMatch(/max-age=31536000/);
    expect(plain.headers.vary).toBe('Accept-Encoding');

    const br = await request(url, { ...auth, 'accept-encoding': 'gzip, deflate, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.body.byteLength).toBeLessThan(identity.byteLength / 2);
    expect(brotliDecompressSync(br.body).equals(identity)).toBe(true);

    const gz = await request(url, { ...auth, 'accept-encoding': 'br;q=0, gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).equals(identity)).toBe(true);
    expect(new Set([plain.headers.etag, br.headers.etag, gz.headers.etag]).size).toBe(3);

    expect(
      (await request(url, { ...auth, 'accept-encoding': 'identity, br;q=0, gzip;q=0' })).body.equals(identity),
    ).toBe(true);
  });

  it('compresses once for a room of clients joining at once', async () => {
    const { c, descriptor, http } = await serving(byteDataset());
    const url = `${http}${descriptor.path}`;
    const bodies = await Promise.all(
      Array.from({ length: 5 }, () => request(url, { ...auth, 'accept-encoding': 'br' })),
    );
    expect(new Set(bodies.map((r) => r.body.toString('base64'))).size).toBe(1);
    const made = c.logs.lines.filter((l) => l.msg === 'dataset compressed for serving');
    expect(made.map((l) => l.coding)).toEqual(['br']);
  });

  it('answers 304 without a body to the ETag of the representation it would send, 200 to another', async () => {
    const { descriptor, http } = await serving(byteDataset());
    const url = `${http}${descriptor.path}`;
    const first = await request(url, { ...auth, 'accept-encoding': 'br' });
    const again = await request(url, { ...auth, 'accept-encoding': 'br', 'if-none-match': String(first.headers.etag) });
    expect(again.status).toBe(304);
    expect(again.body.byteLength).toBe(0);
    expect(again.headers.etag).toBe(first.headers.etag);
    expect(again.headers['cache-control']).toMatch(/immutable/);
    const weakInList = `"other", W/${String(first.headers.etag)}`;
    expect((await request(url, { ...auth, 'accept-encoding': 'br', 'if-none-match': weakInList })).status).toBe(304);
    // The client holds the br body but now only takes gzip: it must get the gzip one.
    const other = await request(url, {
      ...auth,
      'accept-encoding': 'gzip',
      'if-none-match': String(first.headers.etag),
    });
    expect(other.status).toBe(200);
    expect(other.headers['content-encoding']).toBe('gzip');
    expect((await request(url, { 'if-none-match': String(first.headers.etag) })).status).toBe(401);
  });
});

describe('the Node worker loading it', () => {
  it('downloads it compressed, widens byte features to the exact floats, and caches the narrow bytes', async () => {
    const ds = byteDataset();
    const { c, descriptor } = await serving(ds);
    const dir = mkdtempSync(join(tmpdir(), 'flocktrain-http-'));
    const logged: Record<string, unknown>[] = [];
    const log = { ...quiet, info: (o: Record<string, unknown>) => void logged.push(o) };
    const loaded = await makeDatasetLoader(c.url, TOKEN, dir, log)(descriptor);
    const bitsOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    expect(bitsOf(loaded.features).equals(bitsOf(ds.features))).toBe(true);
    expect(bitsOf(loaded.labels).equals(bitsOf(ds.labels))).toBe(true);
    expect(loaded.features.buffer).toBeInstanceOf(SharedArrayBuffer);
    const downloaded = logged.find((o) => 'wireBytes' in o);
    expect(downloaded).toBeDefined();
    expect(Number(downloaded?.wireBytes)).toBeLessThan(transferByteLength(descriptor) / 2);
    expect(statSync(join(dir, `${descriptor.hash}.bin`)).size).toBe(transferByteLength(descriptor));
  });

  it('refuses a compressed body that inflates past the announced size', async () => {
    const ds = byteDataset();
    const descriptor = { ...headerFields(ds), hash: 'ab'.repeat(32), path: '/data/x' };
    const bomb = gzipSync(Buffer.alloc(transferByteLength(descriptor) * 8));
    const server: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': bomb.byteLength }).end(bomb);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const load = makeDatasetLoader(url, TOKEN, mkdtempSync(join(tmpdir(), 'flocktrain-http-')), quiet);
    const err = await load(descriptor).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(/sent more than the \d+ bytes the dataset descriptor announces/);
  });
});
