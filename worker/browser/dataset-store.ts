// The browser worker's dataset source: IndexedDB keyed by the dataset hash, filled
// from the coordinator's HTTP route on first use, so a reload (or Resume) does not
// download again. IndexedDB, not Cache Storage: a LAN join link (http://192.168.…) is
// not a secure context, and Cache Storage exists only in secure contexts. Whatever is
// read, from the network or the store, is checked against the descriptor's hash
// before use; a stored copy that fails is fetched again. Only the newest dataset is
// kept (datasets can be tens of MB). What is stored is the transfer body, as narrow
// as sent; byte features are widened to float32 once, when the dataset is kept. In a
// cross-origin isolated tab the kept floats live in a SharedArrayBuffer, which the
// tab's compute threads read without a copy.

import type { Dataset } from '../../shared/data/dataset.js';
import { datasetFromBytes, transferByteLength } from '../../shared/data/transfer.js';
import { DataError } from '../../shared/errors.js';
import type { DatasetDescriptor } from '../../shared/protocol/messages.js';
import { datasetBodyHash } from './dataset-hash.js';
import { canShareMemory } from './web-threads.js';

const DB_NAME = 'flocktrain';
const STORE = 'datasets';

export type DatasetSource = 'memory' | 'cache' | 'download';

export interface LoadedDataset {
  readonly dataset: Dataset;
  readonly source: DatasetSource;
  readonly bytes: number;
}

/**
 * Loads datasets for one origin: `origin` is where the page came from; the dataset
 * path must be on it, so the token is never sent elsewhere.
 */
export class BrowserDatasetStore {
  readonly #origin: string;
  readonly #memory = new Map<string, Dataset>();

  constructor(origin: string) {
    this.#origin = origin;
  }

  async load(d: DatasetDescriptor, token: string, onStatus: (text: string) => void): Promise<LoadedDataset> {
    if (!/^[0-9a-f]{64}$/.test(d.hash))
      throw new DataError(`dataset hash ${JSON.stringify(d.hash.slice(0, 70))} is not a SHA-256 hex string`);
    const kept = this.#memory.get(d.hash);
    if (kept !== undefined) return { dataset: kept, source: 'memory', bytes: transferByteLength(d) };
    const stored = await readStored(d.hash).catch(() => null);
    if (
      stored !== null &&
      stored.byteLength === transferByteLength(d) &&
      (await datasetBodyHash(d, stored)) === d.hash
    ) {
      return this.#keep(d, stored, 'cache');
    }
    const url = new URL(d.path, this.#origin);
    if (url.origin !== this.#origin)
      throw new DataError(`dataset path ${d.path} leaves the coordinator's origin ${this.#origin}`);
    onStatus(`downloading ${d.name} (${(transferByteLength(d) / 1e6).toFixed(1)} MB)`);
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
    if (!res.ok) throw new DataError(`GET ${url.pathname} answered ${res.status} ${res.statusText}`);
    const body = new Uint8Array(await res.arrayBuffer());
    const got = await datasetBodyHash(d, body);
    if (got !== d.hash)
      throw new DataError(`downloaded dataset hashes to ${got.slice(0, 12)}…, expected ${d.hash.slice(0, 12)}…`);
    await writeStored(d.hash, body).catch(() =>
      onStatus('cannot store the dataset in this browser; a reload will download it again'),
    );
    return this.#keep(d, body, 'download');
  }

  #keep(d: DatasetDescriptor, body: Uint8Array, source: DatasetSource): LoadedDataset {
    const share = canShareMemory();
    // f32 features are views of the body, so the body itself moves to shared memory; byte features widen into it.
    const dataset = share
      ? datasetFromBytes(d, d.dtype === 'f32' ? sharedCopy(body) : body, (n) => new SharedArrayBuffer(n))
      : datasetFromBytes(d, body);
    this.#memory.clear();
    this.#memory.set(d.hash, dataset);
    return { dataset, source, bytes: body.byteLength };
  }
}

/** The bytes in a SharedArrayBuffer of their own (laid out as thread-pool.ts shares a dataset). */
function sharedCopy(body: Uint8Array): Uint8Array {
  const shared = new Uint8Array(new SharedArrayBuffer(body.byteLength));
  shared.set(body);
  return shared;
}

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('indexedDB.open failed'));
  });
}

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

async function readStored(hash: string): Promise<Uint8Array | null> {
  const db = await openDb();
  try {
    const value: unknown = await done(db.transaction(STORE, 'readonly').objectStore(STORE).get(hash));
    return value instanceof ArrayBuffer ? new Uint8Array(value) : null;
  } finally {
    db.close();
  }
}

async function writeStored(hash: string, body: Uint8Array): Promise<void> {
  const db = await openDb();
  try {
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    store.clear(); // one dataset at a time
    store.put(body.slice().buffer, hash);
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB write failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB write aborted'));
    });
  } finally {
    db.close();
  }
}
