// The Node worker's dataset source: a local cache file per dataset hash, filled from
// the coordinator's HTTP route on first use. A cached copy whose hash does not match
// (corrupt, or another dataset) is fetched again, never used.
//
// The coordinator is not trusted with this machine: the dataset must be on its own
// origin (the token goes nowhere else), an announced size over the cap is refused
// before anything is allocated, and the cache stays under its own cap by evicting the
// least recently used datasets (a file's mtime is its last use).
//
// The bytes land, from the file or the network, in one buffer of the size the
// descriptor announces (the download asks for br or gzip and inflates as it arrives).
// Float32 features are then views of it, never a second copy; byte features (MNIST)
// are widened once into a float32 buffer of their own. Either way the floats live in
// a SharedArrayBuffer, so compute threads (--threads) read the same memory instead of
// copies of their own. The cache file holds the transfer bytes, as narrow as sent.

import { DEFAULTS } from '../../shared/defaults.js';
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import type { Dataset } from '../../shared/data/dataset.js';
import { transferHash } from '../../shared/node/dataset-hash.js';
import { type Allocate, datasetFromBytes, transferByteLength, widenedByteLength } from '../../shared/data/transfer.js';
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

/** Limits on what a coordinator can make this worker hold; defaults of --max-dataset-mb and --cache-max-mb. */
export interface DatasetLimits {
  /** Largest dataset accepted, in MB (10^6 bytes) held in memory (as float32). */
  readonly maxDatasetMb: number;
  /** The cache directory's datasets stay under this many MB; older ones are evicted. */
  readonly cacheMaxMb: number;
}

export const DATASET_LIMITS: DatasetLimits = {
  maxDatasetMb: DEFAULTS.worker.maxDatasetMb,
  cacheMaxMb: DEFAULTS.worker.cacheMaxMb,
};

const MB = 1e6;
const CACHE_FILE = /^[0-9a-f]{64}\.bin$/;
const shared: Allocate = (n) => new SharedArrayBuffer(n);

export function makeDatasetLoader(
  wsUrl: string,
  token: string,
  cacheDir: string,
  log: ClientLog,
  limits: DatasetLimits = DATASET_LIMITS,
  /** PEM certificate to trust for https besides the system's (the coordinator's self-signed one). */
  ca?: string,
) {
  const base = httpBase(wsUrl);
  const origin = new URL(base).origin;
  return async (d: DatasetDescriptor): Promise<Dataset> => {
    if (!/^[0-9a-f]{64}$/.test(d.hash))
      throw new DataError(`dataset hash ${JSON.stringify(d.hash.slice(0, 70))} is not a SHA-256 hex string`);
    const url = new URL(d.path, base);
    if (url.origin !== origin)
      throw new DataError(
        `dataset path ${JSON.stringify(d.path.slice(0, 100))} leaves the coordinator's origin ${origin} ` +
          '(the token is sent nowhere else)',
      );
    const size = checkedSize(d, limits.maxDatasetMb);
    const file = join(cacheDir, `${d.hash}.bin`);
    const cached = readIfPresent(file, size);
    if (cached !== null) {
      if (transferHash(d, [cached]) === d.hash) {
        markUsed(file);
        log.info({ file }, 'dataset from cache');
        return datasetFromBytes(d, cached, shared);
      }
      log.warn({ file }, 'cached dataset does not match its hash; fetching again');
    }
    const started = performance.now();
    const { bytes, wireBytes } = await download(url, token, size, ca);
    const got = transferHash(d, [bytes]);
    if (got !== d.hash)
      throw new DataError(`downloaded dataset hashes to ${got.slice(0, 12)}…, expected ${d.hash.slice(0, 12)}…`);
    log.info(
      { bytes: bytes.byteLength, wireBytes, dtype: d.dtype, ms: Math.round(performance.now() - started) },
      'dataset downloaded',
    );
    store(cacheDir, file, bytes, limits.cacheMaxMb * MB, log);
    return datasetFromBytes(d, bytes, shared);
  };
}

/**
 * The descriptor's transfer size in bytes, refused with one line when the dataset it
 * announces would take over `maxMb` in memory once widened to float32 (so a hostile
 * or mistaken coordinator cannot make this worker allocate it). Its factors are each
 * at most 2^53, so the products are exact or far over any cap.
 */
function checkedSize(d: DatasetDescriptor, maxMb: number): number {
  const held = widenedByteLength(d);
  if (!Number.isSafeInteger(d.numSamples * d.numFeatures) || !Number.isSafeInteger(held) || held > maxMb * MB)
    throw new DataError(
      `it announces a dataset of ${d.numSamples} samples × ${d.numFeatures} features ` +
        `(${(held / MB).toPrecision(4)} MB), over --max-dataset-mb ${maxMb}`,
    );
  return transferByteLength(d);
}

/** Keeps `bytes` as `file`, evicting least recently used datasets to stay under `capBytes`. */
function store(dir: string, file: string, bytes: Uint8Array, capBytes: number, log: ClientLog): void {
  if (bytes.byteLength > capBytes) {
    log.info({ bytes: bytes.byteLength, capMB: capBytes / MB }, 'dataset larger than the cache cap; not cached');
    return;
  }
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    mkdirSync(dir, { recursive: true });
    const evicted = evict(dir, capBytes - bytes.byteLength);
    if (evicted.length > 0) log.info({ evicted }, 'evicted least recently used datasets from the cache');
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never written */
    }
    log.warn({ dir, err: (err as Error).message }, 'cannot cache the dataset; continuing without a cache');
  }
}

/** Deletes cached datasets, least recently used first, until they total at most `budget` bytes. */
export function evict(dir: string, budget: number): string[] {
  const entries = readdirSync(dir)
    .filter((name) => CACHE_FILE.test(name))
    .map((name) => {
      const st = statSync(join(dir, name));
      return { name, size: st.size, used: st.mtimeMs };
    })
    .sort((a, b) => a.used - b.used || (a.name < b.name ? -1 : 1));
  let total = entries.reduce((sum, e) => sum + e.size, 0);
  const evicted: string[] = [];
  for (const e of entries) {
    if (total <= budget) break;
    unlinkSync(join(dir, e.name));
    total -= e.size;
    evicted.push(e.name);
  }
  return evicted;
}

/** Records a use of a cached file for eviction: mtime, as atime is often not kept (noatime, relatime). */
function markUsed(file: string): void {
  try {
    const now = new Date();
    utimesSync(file, now, now);
  } catch {
    /* read-only cache: it still works, only its eviction order is older */
  }
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

/**
 * GET `url` straight into a shared buffer of exactly `size` bytes, inflating a br or
 * gzip body as it arrives; `wireBytes` is the body as it crossed the network.
 */
function download(
  url: URL,
  token: string,
  size: number,
  ca: string | undefined,
): Promise<{ bytes: Uint8Array; wireBytes: number }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let body: Readable | null = null;
    const fail = (detail: string): void => {
      if (settled) return;
      settled = true;
      body?.destroy();
      req.destroy();
      reject(new DataError(`GET ${url.pathname} ${detail}`));
    };
    const headers = { authorization: `Bearer ${token}`, 'accept-encoding': 'br, gzip' };
    const onResponse = (res: IncomingMessage): void => {
      if (res.statusCode !== 200) return fail(`answered ${res.statusCode} ${res.statusMessage ?? ''}`.trimEnd());
      const coding = res.headers['content-encoding'] ?? 'identity';
      if (coding !== 'identity' && coding !== 'br' && coding !== 'gzip')
        return fail(`sent content-encoding ${JSON.stringify(coding.slice(0, 40))}, which was not asked for`);
      let out: Uint8Array;
      try {
        out = new Uint8Array(new SharedArrayBuffer(size));
      } catch {
        return fail(`needs ${(size / MB).toPrecision(4)} MB, which this machine cannot allocate`);
      }
      let wireBytes = 0;
      res.on('data', (chunk: Buffer) => {
        wireBytes += chunk.byteLength;
      });
      // An inflated body is held to the announced size like a plain one: a small
      // compressed body cannot make this worker hold more than `size` bytes.
      body = coding === 'br' ? res.pipe(createBrotliDecompress()) : coding === 'gzip' ? res.pipe(createGunzip()) : res;
      let at = 0;
      body.on('data', (chunk: Buffer) => {
        if (settled) return;
        if (at + chunk.byteLength > size)
          return fail(`sent more than the ${size} bytes the dataset descriptor announces`);
        out.set(chunk, at);
        at += chunk.byteLength;
      });
      body.on('end', () => {
        if (at !== size) return fail(`ended after ${at} of ${size} bytes`);
        settled = true;
        resolve({ bytes: out, wireBytes });
      });
      body.on('error', (err) => fail(`failed: ${err.message}`));
      if (body !== res) res.on('error', (err) => fail(`failed: ${err.message}`));
    };
    const req =
      url.protocol === 'https:'
        ? httpsGet(url, { headers, ...(ca === undefined ? {} : { ca }) }, onResponse)
        : httpGet(url, { headers }, onResponse);
    req.on('error', (err) => fail(`failed: ${err.message}`));
  });
}
