// The Node worker's dataset source: a local cache file per dataset hash, filled from
// the coordinator's HTTP route on first use. A cached copy whose hash does not match
// (corrupt, or another dataset) is fetched again, never used.
//
// The bytes land, from the file or the network, in one buffer of the size the
// descriptor announces, and the dataset is views of it: never a second copy (MNIST is
// 31 MB). The buffer is a SharedArrayBuffer, so compute threads (--threads) read the
// same memory instead of copies of their own.

import { closeSync, fstatSync, mkdirSync, openSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Dataset } from '../../shared/data/dataset.js';
import { datasetHash } from '../../shared/node/dataset-hash.js';
import { datasetFromBytes, transferByteLength } from '../../shared/data/transfer.js';
import { DataError } from '../../shared/errors.js';
import type { DatasetDescriptor } from '../../shared/protocol/messages.js';
import type { ClientLog } from '../client.js';

export function defaultCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'flocktrain');
}

/** http(s) base of the coordinator from its ws(s) URL. */
export function httpBase(wsUrl: string): string {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = '/';
  u.search = '';
  return u.toString();
}

export function makeDatasetLoader(wsUrl: string, token: string, cacheDir: string, log: ClientLog) {
  return async (d: DatasetDescriptor): Promise<Dataset> => {
    if (!/^[0-9a-f]{64}$/.test(d.hash))
      throw new DataError(`dataset hash ${JSON.stringify(d.hash.slice(0, 70))} is not a SHA-256 hex string`);
    const file = join(cacheDir, `${d.hash}.bin`);
    const size = transferByteLength(d);
    const cached = readIfPresent(file, size);
    if (cached !== null) {
      try {
        const ds = datasetFromBytes(d, cached);
        if (datasetHash(ds) === d.hash) {
          log.info({ file }, 'dataset from cache');
          return ds;
        }
      } catch {
        /* wrong size: refetch below */
      }
      log.warn({ file }, 'cached dataset does not match its hash; fetching again');
    }
    const url = new URL(d.path, httpBase(wsUrl));
    const started = performance.now();
    const bytes = await download(url, token, size);
    const ds = datasetFromBytes(d, bytes);
    const got = datasetHash(ds);
    if (got !== d.hash)
      throw new DataError(`downloaded dataset hashes to ${got.slice(0, 12)}…, expected ${d.hash.slice(0, 12)}…`);
    log.info({ bytes: bytes.byteLength, ms: Math.round(performance.now() - started) }, 'dataset downloaded');
    try {
      mkdirSync(cacheDir, { recursive: true });
      const tmp = `${file}.tmp-${process.pid}`;
      writeFileSync(tmp, bytes);
      renameSync(tmp, file);
    } catch (err) {
      log.warn({ dir: cacheDir, err: (err as Error).message }, 'cannot cache the dataset; continuing without a cache');
    }
    return ds;
  };
}

/** The file's bytes in a shared buffer, or null when it is missing or not `size` bytes long. */
function readIfPresent(file: string, size: number): Uint8Array | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    if (fstatSync(fd).size !== size) return null;
    const out = new Uint8Array(new SharedArrayBuffer(size));
    let at = 0;
    while (at < size) {
      const n = readSync(fd, out, at, size - at, at);
      if (n === 0) return null;
      at += n;
    }
    return out;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** GET `url` straight into a shared buffer of exactly `size` bytes. */
function download(url: URL, token: string, size: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (detail: string): void => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(new DataError(`GET ${url.pathname} ${detail}`));
    };
    const get = url.protocol === 'https:' ? httpsGet : httpGet;
    const req = get(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      if (res.statusCode !== 200) return fail(`answered ${res.statusCode} ${res.statusMessage ?? ''}`.trimEnd());
      const out = new Uint8Array(new SharedArrayBuffer(size));
      let at = 0;
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        if (at + chunk.byteLength > size)
          return fail(`sent more than the ${size} bytes the dataset descriptor announces`);
        out.set(chunk, at);
        at += chunk.byteLength;
      });
      res.on('end', () => {
        if (at !== size) return fail(`ended after ${at} of ${size} bytes`);
        settled = true;
        resolve(out);
      });
      res.on('error', (err) => fail(`failed: ${err.message}`));
    });
    req.on('error', (err) => fail(`failed: ${err.message}`));
  });
}
