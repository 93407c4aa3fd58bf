// Priming the HTTP cache in front (--weights-prime-url): each published version is
// fetched once through the cache, by the coordinator itself, before any task names it.
// Without this, the workers of a step all ask the cache for the new version at once;
// one request goes on to the coordinator, and the rest wait on the cache's lock, which
// nginx looks at again only every 500 ms. Primed, the version is in the cache before
// the first worker asks: every worker's request is a hit, and a step's critical path
// grows by one round trip through the cache instead of up to half a second.
//
// A prime that fails or outlasts its timeout holds nothing up: the tasks go out, and
// the workers fetch through the cache as they would unprimed. It is logged once per
// drought (the first failure, then the first success after it).
//
// Not a cache client of any kind beyond that: the body is read to its end (so the
// cache stores it whole) and counted, not kept or hashed; workers check the hash.

import type { Logger } from 'pino';
import { ConfigError } from '../shared/errors.js';
import type { WeightsRef } from '../shared/protocol/messages.js';
import type { WeightsPublisher } from './step/broadcaster.js';

/** Said to the cache with every prime, so its logs tell the coordinator's requests from the workers'. */
export const PRIME_USER_AGENT = 'flocktrain-prime';

/**
 * `value` as the origin of the cache (http or https, with no path: workers fetch /weights/ at the root of the address
 * they joined, so a path here would fill entries nobody asks for); a ConfigError naming `flag` (e.g. --x) otherwise.
 */
export function checkedPrimeUrl(value: string, flag: string): string {
  const refuse = (expected: string): ConfigError =>
    new ConfigError(`${flag} must be ${expected}, got ${JSON.stringify(value.slice(0, 200))}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refuse('the http:// or https:// URL of the cache in front');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw refuse('the http:// or https:// URL of the cache in front');
  if (url.username !== '' || url.password !== '') throw refuse('a URL without a user or password');
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '')
    throw refuse(`the cache's address alone, e.g. ${url.origin} (workers fetch /weights/ at its root)`);
  return url.origin;
}

export interface PrimeOptions {
  /** The cache's origin as the coordinator reaches it (checkedPrimeUrl's). */
  readonly url: string;
  /** A prime not done by then (headers and the whole body) is given up: the tasks go out without it. */
  readonly timeoutMs: number;
  readonly log: Logger;
}

/** The version being primed (or last primed) and the attempt's end, which never rejects. */
interface Prime {
  readonly version: number;
  readonly ref: WeightsRef;
  /** The body's length: the weights in the wire dtype. */
  readonly bytes: number;
  /**
   * null until started. The first version is primed when the first step's workers have joined, not at its publish:
   * this server may not listen yet then, nor the cache be up, which the workers' joining through it shows.
   */
  done: Promise<void> | null;
}

/** A publisher (the WeightsStore) whose every version is also fetched through the cache in front. */
export class WeightsPrimer implements WeightsPublisher {
  readonly #store: WeightsPublisher;
  readonly #options: PrimeOptions;
  #latest: Prime | null = null;
  /** Set by the first ready(): from then on each version is primed the moment it is published. */
  #started = false;
  /** Primes failed since the last one that worked; the first failure and the recovery are logged. */
  #failed = 0;
  /** Aborts the prime in flight: at close, and when it outlasts the timeout. */
  #abort: AbortController | null = null;
  #closed = false;

  constructor(store: WeightsPublisher, options: PrimeOptions) {
    this.#store = store;
    this.#options = options;
  }

  /** Publishes to the store and, once steps have begun, starts priming: it runs while the trainer logs and saves. */
  publish(version: number, wire: Uint8Array): WeightsRef {
    const ref = this.#store.publish(version, wire);
    // The same weights again (the trainer publishes the version it starts from): one prime is enough.
    if (this.#latest?.version === version && this.#latest.ref.path === ref.path) return ref;
    this.#latest = { version, ref, bytes: wire.byteLength, done: null };
    if (this.#started) this.#start(this.#latest);
    return ref;
  }

  ref(version: number): WeightsRef | null {
    return this.#store.ref(version);
  }

  /** Settles once `version` is in the cache, or its prime failed or timed out; null for any version but the latest. */
  ready(version: number): Promise<void> | null {
    this.#started = true;
    const latest = this.#latest;
    if (latest === null || latest.version !== version) return null;
    return latest.done ?? this.#start(latest);
  }

  /**
   * Stops priming (the run is over): the prime in flight, typically of the final weights, which no task will name,
   * is abandoned without a word.
   */
  close(): void {
    this.#closed = true;
    this.#abort?.abort();
  }

  #start(prime: Prime): Promise<void> {
    const url = new URL(prime.ref.path, this.#options.url);
    const t0 = performance.now();
    prime.done = this.#fetch(url, prime.bytes).then(
      (cache) => {
        const ms = Math.round(performance.now() - t0);
        if (this.#failed > 0)
          this.#options.log.info({ version: prime.version, failedPrimes: this.#failed }, 'weights prime works again');
        this.#failed = 0;
        this.#options.log.debug({ version: prime.version, ms, cache }, 'weights primed');
      },
      (err: unknown) => {
        if (this.#closed || this.#failed++ > 0) return;
        this.#options.log.warn(
          { version: prime.version, url: url.origin, err: err instanceof Error ? err.message : String(err) },
          'cannot prime the cache with the weights; tasks go out anyway, and workers may wait on its lock',
        );
      },
    );
    return prime.done;
  }

  /** GETs `url` to the end of its body; what the cache said it did (X-Cache-Status), if it says. */
  async #fetch(url: URL, size: number): Promise<string | null> {
    if (this.#closed) throw new Error('closed');
    const abort = new AbortController();
    this.#abort = abort;
    const timeoutMs = this.#options.timeoutMs;
    const timer = setTimeout(() => abort.abort(new Error(`not done within ${timeoutMs} ms`)), timeoutMs);
    try {
      const res = await fetch(url, {
        // The workers' request, as near as fetch allows: no encoding asked, one representation, one cache entry.
        headers: { 'accept-encoding': 'identity', 'user-agent': PRIME_USER_AGENT },
        redirect: 'manual',
        signal: abort.signal,
      });
      const path = `GET ${url.pathname.slice(0, 30)}…`;
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`${path} answered ${res.status} ${res.statusText}`.trimEnd());
      }
      let got = 0;
      for await (const chunk of res.body ?? []) got += chunk.byteLength;
      if (got !== size) throw new Error(`${path} sent ${got} bytes, the weights are ${size}`);
      return res.headers.get('x-cache-status');
    } catch (err) {
      // An abort's reason says why (the timeout); fetch's own "fetch failed" says nothing, its cause does.
      if (abort.signal.aborted && abort.signal.reason instanceof Error) throw abort.signal.reason;
      if (err instanceof Error && err.cause instanceof Error) throw new Error(`${err.message}: ${err.cause.message}`);
      throw err;
    } finally {
      clearTimeout(timer);
      if (this.#abort === abort) this.#abort = null;
    }
  }
}
