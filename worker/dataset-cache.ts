// The Node worker's dataset source: a local cache file per dataset hash, filled from
// the coordinator's HTTP route on first use. A cached copy whose hash does not match
// (corrupt, or another dataset) is fetched again, never used.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Dataset } from '../shared/data/dataset.js';
import { datasetHash } from '../shared/data/hash.js';
import { datasetFromBytes } from '../shared/data/transfer.js';
import { DataError } from '../shared/errors.js';
import type { DatasetDescriptor } from '../shared/protocol/messages.js';
import type { ClientLog } from './client.js';

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
    if (!/^[0-9a-f]{64}$/.test(d.hash)) throw new DataError(`dataset hash ${JSON.stringify(d.hash.slice(0, 70))} is not a SHA-256 hex string`);
    const file = join(cacheDir, `${d.hash}.bin`);
    const cached = readIfPresent(file);
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
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new DataError(`GET ${url.pathname} answered ${res.status} ${res.statusText}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const ds = datasetFromBytes(d, bytes);
    const got = datasetHash(ds);
    if (got !== d.hash) throw new DataError(`downloaded dataset hashes to ${got.slice(0, 12)}…, expected ${d.hash.slice(0, 12)}…`);
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

function readIfPresent(file: string): Uint8Array | null {
  try {
    return readFileSync(file);
  } catch {
    return null;
  }
}
