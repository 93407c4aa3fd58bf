// The browser worker's dataset source: IndexedDB keyed by the dataset hash, filled
// from the coordinator's HTTP route on first use, so a reload (or Resume) does not
// download again. IndexedDB, not Cache Storage: a LAN join link (http://192.168.…) is
// not a secure context, and Cache Storage exists only in secure contexts. Whatever is
// read, from the network or the store, is checked against the descriptor's hash
// before use; a stored copy that fails is discarded and fetched again. Only the newest
// dataset is kept (datasets can be tens of MB). What is stored is the transfer body,
// as narrow as sent; byte features are widened to float32 once, when the dataset is
// kept. In a cross-origin isolated tab the kept floats live in a SharedArrayBuffer,
// which the tab's compute threads read without a copy.
//
// Tabs of one browser profile share the store, and a room of them joining at once
// downloads once: filling the store for a hash happens under a Web Lock named by that
// hash, so the first tab downloads while the others wait, then read its copy. Reads
// need no lock (an IndexedDB transaction sees a whole write or none). Where Web Locks
// are missing (not a secure context) or IndexedDB is, each tab fetches on its own.

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

  async load(
    d: DatasetDescriptor,
    token: string,
    onStatus: (text: string) => void,
    warn: (message: string) => void = () => {},
  ): Promise<LoadedDataset> {
    if (!/^[0-9a-f]{64}$/.test(d.hash))
      throw new DataError(`dataset hash ${JSON.stringify(d.hash.slice(0, 70))} is not a SHA-256 hex string`);
    const kept = this.#memory.get(d.hash);
    if (kept !== undefined) return { dataset: kept, source: 'memory', bytes: transferByteLength(d) };
    const url = new URL(d.path, this.#origin);
    if (url.origin !== this.#origin)
      throw new DataError(`dataset path ${d.path} leaves the coordinator's origin ${this.#origin}`);
    const download = async (): Promise<Uint8Array> => {
      onStatus(`downloading ${d.name} (${(transferByteLength(d) / 1e6).toFixed(1)} MB)`);
      const body = await fetchChecked(d, url, token);
      await writeStored(d.hash, body).catch(() =>
        onStatus('cannot store the dataset in this browser; a reload will download it again'),
      );
      return body;
    };
    /** The stored copy if it is sound; a corrupt one is reported, and the next write replaces it. */
    const stored = async (): Promise<Uint8Array | null> => {
      const copy = await readChecked(d);
      if (copy.body === null && copy.corrupt !== null) warn(copy.corrupt);
      return copy.body;
    };
    const locks = webLocks();
    if (locks === null || typeof indexedDB === 'undefined') {
      const copy = await stored();
      return copy !== null ? this.#keep(d, copy, 'cache') : this.#keep(d, await download(), 'download');
    }
    const name = `flocktrain-dataset:${d.hash}`;
    const exclusive = async <T>(fill: () => Promise<T>): Promise<T> => {
      const now = await locks.request<{ readonly value: T } | null>(name, { ifAvailable: true }, async (lock) =>
        lock === null ? null : { value: await fill() },
      );
      if (now !== null) return now.value;
      onStatus(`waiting for another tab of this browser to fetch ${d.name}`);
      return locks.request(name, {}, fill);
    };
    // The lock covers only "download unless stored": the tabs that waited for it read
    // the stored copy side by side, each checking the hash on its own.
    const downloaded = await exclusive(async () => ((await hasStored(d.hash).catch(() => false)) ? null : download()));
    if (downloaded !== null) return this.#keep(d, downloaded, 'download');
    onStatus(`reading ${d.name} from this browser's store`);
    const unlocked = await readChecked(d);
    if (unlocked.body !== null) return this.#keep(d, unlocked.body, 'cache');
    // Corrupt, or evicted meanwhile by a tab that moved on to another dataset: the first
    // tab here under the lock replaces it (writeStored clears the store), and the tabs
    // after it read that copy.
    const again = await exclusive(async () => {
      const copy = await stored();
      return copy !== null
        ? { body: copy, source: 'cache' as const }
        : { body: await download(), source: 'download' as const };
    });
    return this.#keep(d, again.body, again.source);
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

/** The body from the coordinator, refused unless it hashes to the descriptor's hash. */
async function fetchChecked(d: DatasetDescriptor, url: URL, token: string): Promise<Uint8Array> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
  if (!res.ok) throw new DataError(`GET ${url.pathname} answered ${res.status} ${res.statusText}`);
  const body = new Uint8Array(await res.arrayBuffer());
  const got = await datasetBodyHash(d, body);
  if (got !== d.hash)
    throw new DataError(`downloaded dataset hashes to ${got.slice(0, 12)}…, expected ${d.hash.slice(0, 12)}…`);
  return body;
}

type StoredCopy = { readonly body: Uint8Array } | { readonly body: null; readonly corrupt: string | null };

/** The stored copy of `d` if there is one and it hashes right; else null, with what was wrong if it was there. */
async function readChecked(d: DatasetDescriptor): Promise<StoredCopy> {
  const stored = await readStored(d.hash).catch(() => null);
  if (stored === null) return { body: null, corrupt: null };
  const got =
    stored.byteLength === transferByteLength(d) ? await datasetBodyHash(d, stored) : `${stored.byteLength} bytes`;
  if (got === d.hash) return { body: stored };
  return {
    body: null,
    corrupt:
      `the stored copy of dataset ${d.name} is corrupt (${got.slice(0, 12)}…, expected ${d.hash.slice(0, 12)}…); ` +
      'discarding it and downloading again',
  };
}

/** The part of the Web Locks API used here. */
interface LockManagerLike {
  /** With ifAvailable, `callback` gets null instead of waiting when another holder has the lock. */
  request<T>(
    name: string,
    options: { ifAvailable?: boolean },
    callback: (lock: object | null) => T | Promise<T>,
  ): Promise<T>;
}
/** The Web Locks API of this scope (a Window or a Worker), or null where it is missing. */
function webLocks(): LockManagerLike | null {
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
  return locks !== undefined && typeof locks.request === 'function' ? locks : null;
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

async function hasStored(hash: string): Promise<boolean> {
  const db = await openDb();
  try {
    return (await done(db.transaction(STORE, 'readonly').objectStore(STORE).getKey(hash))) !== undefined;
  } finally {
    db.close();
  }
}

/** Stores `body` under `hash` and evicts every other dataset, in one transaction. */
async function writeStored(hash: string, body: Uint8Array): Promise<void> {
  const db = await openDb();
  try {
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    store.clear();
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
