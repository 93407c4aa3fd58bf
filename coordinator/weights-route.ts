// The weights over plain HTTP (--weights-over-http): each published version is kept,
// as its wire bytes, at /weights/<version>-<sha256>, and tasks name that path instead of
// carrying the bytes. The URL names its content, so the response is public and cacheable
// for good: a reverse proxy or CDN in front of the coordinator fetches each version once
// and hands it to every worker behind it.
//
// The route takes no token (a token in a header or the query would split or defeat a
// shared cache). What guards it is the path: its SHA-256 of the weights is known only to
// those who hold the weights or were told the path over an authenticated socket. Only the
// last few versions are kept; any other path is a cheap 404, and one whose hash is nearly
// right takes no longer than one whose hash is all wrong. docs/security.md has the reasoning.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { parseWeightsPath, weightsPath } from '../shared/protocol/codec.js';
import type { WeightsRef } from '../shared/protocol/messages.js';
import { etagMatches } from './data/route.js';
import type { RouteHandler } from './server.js';
import type { SendCounters, WeightsPublisher } from './step/broadcaster.js';

/** The path prefix the server hands to this route. */
export const WEIGHTS_PREFIX = '/weights/';

/** A year, the longest max-age caches are asked to honour; any cache may keep it (see the header). */
export const WEIGHTS_CACHE_CONTROL = 'public, max-age=31536000, immutable';

/** What the route has answered; bodies are counted into the scheduler's bytesOut as well. */
export interface WeightsServed {
  /** Versions published so far (the same weights published again count once). */
  versions: number;
  /** 200 answers to GET, each a whole body. */
  bodies: number;
  /** Their bytes. */
  bytes: number;
  /** The most bodies any one version was sent: 1 when a cache in front fans every version out. */
  maxBodiesPerVersion: number;
  /** 200 answers to HEAD, and 304 answers to If-None-Match. */
  heads: number;
  notModified: number;
  /** 404s: paths that name no kept version (unknown, malformed, or dropped). */
  notFound: number;
}

interface Kept {
  readonly version: number;
  readonly ref: WeightsRef;
  /** The 32 bytes of the hash, compared in constant time with a request's. */
  readonly digest: Buffer;
  readonly etag: string;
  /** The wire bytes: a copy, the broadcaster rewrites its own at the next publish. */
  readonly body: Uint8Array;
  bodies: number;
}

export class WeightsStore implements WeightsPublisher {
  readonly served: WeightsServed = {
    versions: 0,
    bodies: 0,
    bytes: 0,
    maxBodiesPerVersion: 0,
    heads: 0,
    notModified: 0,
    notFound: 0,
  };
  readonly #keep: number;
  readonly #counters: SendCounters | null;
  readonly #log: Logger;
  /** By version, oldest first (insertion order). */
  readonly #kept = new Map<number, Kept>();

  /**
   * `keep`: versions served at once (the newest ones), at least 1; a check of an older
   * version carries its weights in the message. `counters`: where bodies sent are added.
   */
  constructor(keep: number, log: Logger, counters: SendCounters | null = null) {
    if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep: expected an integer ≥ 1, got ${keep}`);
    this.#keep = keep;
    this.#log = log;
    this.#counters = counters;
  }

  /** Keeps a copy of `wire` (the weights in the wire dtype) as `version`; drops the oldest beyond `keep`. */
  publish(version: number, wire: Uint8Array): WeightsRef {
    const digest = createHash('sha256').update(wire).digest();
    const sha256 = digest.toString('hex');
    // The same weights again (the trainer publishes the version it starts from): nothing changes.
    const same = this.#kept.get(version);
    if (same?.ref.sha256 === sha256) return same.ref;
    this.#kept.delete(version);
    this.#kept.set(version, {
      version,
      ref: { path: weightsPath(version, sha256), sha256 },
      digest,
      etag: `"${sha256}"`,
      body: new Uint8Array(wire),
      bodies: 0,
    });
    this.served.versions++;
    for (const old of this.#kept.keys()) {
      if (this.#kept.size <= this.#keep) break;
      this.#kept.delete(old);
    }
    return this.#kept.get(version)!.ref;
  }

  /** The path and hash of `version`, or null when it is not (or no longer) served. */
  ref(version: number): WeightsRef | null {
    return this.#kept.get(version)?.ref ?? null;
  }

  /** GET and HEAD of /weights/<version>-<sha256>; the server calls it for every path under WEIGHTS_PREFIX. */
  route(): RouteHandler {
    return (req, res, url) => {
      const kept = this.#find(url);
      if (kept === null) {
        this.served.notFound++;
        res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('not found\n');
        return;
      }
      const headers = {
        etag: kept.etag,
        'cache-control': WEIGHTS_CACHE_CONTROL,
        'content-type': 'application/octet-stream',
      };
      if (etagMatches(req.headers['if-none-match'], kept.etag)) {
        this.served.notModified++;
        res.writeHead(304, headers).end();
        return;
      }
      res.writeHead(200, { ...headers, 'content-length': kept.body.byteLength });
      if (req.method === 'HEAD') {
        this.served.heads++;
        res.end();
        return;
      }
      kept.bodies++;
      this.served.bodies++;
      this.served.bytes += kept.body.byteLength;
      this.served.maxBodiesPerVersion = Math.max(this.served.maxBodiesPerVersion, kept.bodies);
      if (this.#counters !== null) {
        this.#counters.bytesOut += kept.body.byteLength;
        this.#counters.tensorBytes += kept.body.byteLength;
      }
      this.#log.debug({ version: kept.version, bytes: kept.body.byteLength }, 'weights served');
      res.end(kept.body);
    };
  }

  /**
   * The kept version a request names, or null. The lookup is by version (not secret);
   * the hash is then compared in constant time, so how long a 404 takes says nothing
   * about how much of a guessed hash was right. A query string is refused: one URL per
   * version, so nobody can make a cache in front hold (and fetch here) variants of it.
   */
  #find(url: URL): Kept | null {
    if (url.search !== '') return null;
    const named = parseWeightsPath(url.pathname);
    if (named === null) return null;
    const kept = this.#kept.get(named.version);
    if (kept === undefined) return null;
    return timingSafeEqual(kept.digest, Buffer.from(named.sha256, 'hex')) ? kept : null;
  }
}
