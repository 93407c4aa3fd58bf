// The Node worker's dataset source: downloads once from the coordinator's HTTP route
// with the token, caches by hash, uses the cache next time, refetches a cached copy
// whose hash does not match, and refuses bytes that do not hash to the descriptor.
// It refuses a path off the coordinator's origin and a size over its cap before any
// request, and keeps the cache under its cap by evicting the least recently used.

import { existsSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { syntheticDatasets } from '../../../shared/data/synthetic.js';
import { datasetHash } from '../../../shared/node/dataset-hash.js';
import { headerFields } from '../../../shared/data/hash-encoding.js';
import { DataError } from '../../../shared/errors.js';
import type { DatasetDescriptor } from '../../../shared/protocol/messages.js';
import { DATASET_LIMITS, makeDatasetLoader } from '../../../worker/node/dataset-cache.js';

const quiet = { info: () => {}, warn: () => {}, debug: () => {} };
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** Serves `body` at the descriptor's path to requests carrying the token; counts requests. */
async function serve(body: Uint8Array, token: string): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    if (req.headers.authorization !== `Bearer ${token}`) return void res.writeHead(401).end();
    res.writeHead(200, { 'content-length': body.byteLength }).end(body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

function fixture(seed = 1) {
  const ds = syntheticDatasets.spirals(50, seed);
  const hash = datasetHash(ds);
  const descriptor: DatasetDescriptor = { ...headerFields(ds), hash, path: `/data/${hash}` };
  const body = new Uint8Array(Buffer.concat([Buffer.from(ds.features.buffer), Buffer.from(ds.labels.buffer)]));
  return { ds, hash, descriptor, body };
}

describe('worker dataset cache', () => {
  it('downloads once, then serves from the cache', async () => {
    const { ds, descriptor, body } = fixture();
    const { url, requests } = await serve(body, 'tok');
    const dir = mkdtempSync(join(tmpdir(), 'flocktrain-cache-'));
    const load = makeDatasetLoader(url, 'tok', dir, quiet);
    const first = await load(descriptor);
    const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    expect(bytesOf(first.features).equals(bytesOf(ds.features))).toBe(true);
    expect(first.labels).toEqual(ds.labels);
    await load(descriptor);
    expect(requests()).toBe(1);
  });

  it('refetches a cached copy that does not match its hash, and repairs the cache', async () => {
    const { descriptor, body, hash } = fixture();
    const { url, requests } = await serve(body, 'tok');
    const dir = mkdtempSync(join(tmpdir(), 'flocktrain-cache-'));
    const corrupt = body.slice();
    corrupt[10] ^= 1;
    writeFileSync(join(dir, `${hash}.bin`), corrupt);
    const load = makeDatasetLoader(url, 'tok', dir, quiet);
    expect(datasetHash(await load(descriptor))).toBe(hash);
    expect(requests()).toBe(1);
    expect(Buffer.from(readFileSync(join(dir, `${hash}.bin`))).equals(Buffer.from(body))).toBe(true);
  });

  it('refuses downloaded bytes that do not hash to the descriptor, and a refused token', async () => {
    const { descriptor, body } = fixture();
    const tampered = body.slice();
    tampered[0] ^= 1;
    const bad = await serve(tampered, 'tok');
    const dir = mkdtempSync(join(tmpdir(), 'flocktrain-cache-'));
    await expect(makeDatasetLoader(bad.url, 'tok', dir, quiet)(descriptor)).rejects.toThrow(DataError);
    await expect(makeDatasetLoader(bad.url, 'tok', dir, quiet)(descriptor)).rejects.toThrow(/hashes to/);
    const good = await serve(body, 'tok');
    await expect(makeDatasetLoader(good.url, 'wrong', dir, quiet)(descriptor)).rejects.toThrow(/401/);
  });

  it('refuses a body longer or shorter than the descriptor announces, with a one-line error', async () => {
    const { descriptor, body } = fixture();
    const dir = mkdtempSync(join(tmpdir(), 'flocktrain-cache-'));
    const long = await serve(new Uint8Array([...body, 0, 0, 0, 0]), 'tok');
    await expect(makeDatasetLoader(long.url, 'tok', dir, quiet)(descriptor)).rejects.toThrow(/more than the \d+ bytes/);
    const short = await serve(body.subarray(0, body.byteLength - 4), 'tok');
    await expect(makeDatasetLoader(short.url, 'tok', dir, quiet)(descriptor)).rejects.toThrow(
      /ended after \d+ of \d+ bytes/,
    );
  });

  it('keeps the dataset as views of one shared buffer, downloaded or cached, for compute threads', async () => {
    const { descriptor, body } = fixture();
    const { url } = await serve(body, 'tok');
    const dir = mkdtempSync(join(tmpdir(), 'flocktrain-cache-'));
    const load = makeDatasetLoader(url, 'tok', dir, quiet);
    for (const ds of [await load(descriptor), await load(descriptor)]) {
      expect(ds.features.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(ds.labels.buffer).toBe(ds.features.buffer);
      expect(ds.features.buffer.byteLength).toBe(body.byteLength);
    }
  });

  it("refuses a dataset path off the coordinator's origin and a size over the cap, before any request", async () => {
    const { descriptor, body } = fixture();
    const { url, requests } = await serve(body, 'tok');
    const dir = mkdtempSync(join(tmpdir(), 'flocktrain-cache-'));
    const load = makeDatasetLoader(url, 'tok', dir, quiet);
    const port = new URL(url).port;
    for (const path of [`http://localhost:${port}/x`, `//example.com${descriptor.path}`, `https://127.0.0.1:${port}/x`])
      await expect(load({ ...descriptor, path })).rejects.toThrow(/leaves the coordinator's origin/);
    const huge = { ...descriptor, numSamples: 2 ** 50, numFeatures: 2 ** 30 };
    await expect(load(huge)).rejects.toThrow(/over --max-dataset-mb 1024/);
    const small = makeDatasetLoader(url, 'tok', dir, quiet, { ...DATASET_LIMITS, maxDatasetMb: 1e-4 });
    await expect(small(descriptor)).rejects.toThrow(DataError);
    expect(requests()).toBe(0);
  });

  it('keeps the cache under --cache-max-mb by evicting the least recently used dataset', async () => {
    const [a, b, c] = [fixture(1), fixture(2), fixture(3)];
    const size = a.body.byteLength;
    const servers = await Promise.all([a, b, c].map((f) => serve(f.body, 'tok')));
    const dir = mkdtempSync(join(tmpdir(), 'flocktrain-cache-'));
    const limits = { ...DATASET_LIMITS, cacheMaxMb: (2.5 * size) / 1e6 }; // room for two
    const loader = (i: number) => makeDatasetLoader(servers[i].url, 'tok', dir, quiet, limits);
    const file = (f: { hash: string }) => join(dir, `${f.hash}.bin`);
    const age = (f: { hash: string }, seconds: number) => {
      const t = new Date(Date.now() - seconds * 1000);
      utimesSync(file(f), t, t);
    };
    await loader(0)(a.descriptor);
    age(a, 300);
    await loader(1)(b.descriptor);
    age(b, 200);
    await loader(0)(a.descriptor); // from the cache: a is now the most recently used
    expect(servers[0].requests()).toBe(1);
    await loader(2)(c.descriptor);
    expect(existsSync(file(a))).toBe(true);
    expect(existsSync(file(b))).toBe(false);
    expect(existsSync(file(c))).toBe(true);

    // A dataset larger than the whole cache is used, not cached, and evicts nothing.
    const tiny = makeDatasetLoader(servers[1].url, 'tok', dir, quiet, { ...limits, cacheMaxMb: size / 2 / 1e6 });
    expect(datasetHash(await tiny(b.descriptor))).toBe(b.hash);
    expect(readdirSync(dir).sort()).toEqual([`${a.hash}.bin`, `${c.hash}.bin`].sort());
  });
});
