// Tokens and the people guessing them. Tokens are generated when the user gives none,
// refused when too short to resist guessing, and compared in constant time so the
// comparison leaks nothing about how much of a guess was right; besides the main one,
// named tokens come from a file and can be revoked while the run goes on. Failed
// guesses are throttled per network address: each failure doubles how long the next
// token from that address waits before it is even checked. Also the origins whose
// pages may open a worker WebSocket, as browsers spell them.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from '../shared/errors.js';

/** Shortest token a user may choose: 16 characters, against online guessing at any rate the throttle allows. */
export const MIN_TOKEN_LENGTH = 16;

export function generateToken(): string {
  return randomBytes(16).toString('hex');
}

/** `token` if it is long enough; a ConfigError naming `flag` otherwise. */
export function checkedToken(token: string, flag: string): string {
  if (token.length < MIN_TOKEN_LENGTH)
    throw new ConfigError(
      `${flag} must be at least ${MIN_TOKEN_LENGTH} characters (got ${token.length}); leave it out for a random one`,
    );
  return token;
}

export function tokensMatch(expected: string, presented: string): boolean {
  // Hash both sides first: timingSafeEqual needs equal lengths, and the length of a
  // guess must not shortcut the comparison either.
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(presented).digest();
  return timingSafeEqual(a, b);
}

/** Anything that says whose a presented token is. */
export interface TokenCheck {
  /** The name of the token `presented` is, or null when it is none of them. */
  match(presented: string): string | null;
}

/** The name the main token (--token, or the random one) goes by in logs. */
export const MAIN_TOKEN_NAME = 'main';

/**
 * The tokens that let a worker in: the main one, plus named ones (--tokens FILE) that
 * can be replaced while the run goes on. Every candidate is compared, in constant time
 * each, so the time taken does not tell which one came close.
 */
export class TokenBook implements TokenCheck {
  readonly #main: string;
  #named: ReadonlyMap<string, string>;

  /** `named`: name → token. */
  constructor(main: string, named: ReadonlyMap<string, string> = new Map()) {
    this.#main = main;
    this.#named = named;
  }

  match(presented: string): string | null {
    let found: string | null = tokensMatch(this.#main, presented) ? MAIN_TOKEN_NAME : null;
    for (const [name, token] of this.#named) if (tokensMatch(token, presented)) found ??= name;
    return found;
  }

  /** Replaces the named tokens; returns the names no longer there (revoked). */
  replace(named: ReadonlyMap<string, string>): string[] {
    const revoked = [...this.#named].filter(([name, token]) => named.get(name) !== token).map(([name]) => name);
    this.#named = named;
    return revoked;
  }
}

/** Accepts exactly one token, under the main token's name. */
export function singleToken(token: string): TokenCheck {
  return new TokenBook(token);
}

/**
 * Parses a tokens file: one `name token` per line, blank lines and `#` comments
 * ignored. Names are 1–64 letters, digits, `.`, `_` or `-`; tokens at least 16
 * characters; neither may repeat. A ConfigError names the line otherwise.
 */
export function parseTokenFile(text: string, file: string): Map<string, string> {
  const named = new Map<string, string>();
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${file}:${i + 1}`;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) throw new ConfigError(`${where}: expected "name token", got ${parts.length} words`);
    const [name, token] = parts;
    if (!/^[\w.-]{1,64}$/.test(name) || name === MAIN_TOKEN_NAME)
      throw new ConfigError(
        `${where}: a name is 1-64 letters, digits, '.', '_' or '-' (and not "${MAIN_TOKEN_NAME}"), ` +
          `got ${JSON.stringify(name.slice(0, 70))}`,
      );
    if (token.length < MIN_TOKEN_LENGTH)
      throw new ConfigError(`${where}: the token of ${name} must be at least ${MIN_TOKEN_LENGTH} characters`);
    if (named.has(name)) throw new ConfigError(`${where}: ${name} is named twice`);
    if (seen.has(token)) throw new ConfigError(`${where}: the token of ${name} is another name's too`);
    named.set(name, token);
    seen.add(token);
  });
  return named;
}

/**
 * The unit connections are counted and guesses throttled by: an IPv4 address (also
 * when IPv4-mapped), or an IPv6 /64, the block one host usually holds.
 */
export function addressKey(address: string): string {
  const plain = address.split('%')[0]; // an IPv6 zone id names an interface, not a host
  if (plain.startsWith('::ffff:') && isIPv4(plain.slice(7))) return plain.slice(7);
  if (!isIPv6(plain)) return plain;
  const [head, tail] = plain.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().padStart(4, '0'))
    .join(':')}::/64`;
}

export interface ThrottleOptions {
  /** Wait after the first failure, in ms; it doubles with every further one. */
  readonly baseMs: number;
  /** Longest wait, in ms. */
  readonly maxMs: number;
  /** An address with no failure for this long starts afresh. */
  readonly forgetMs: number;
  /** Addresses remembered at most; the longest-quiet ones are forgotten first. */
  readonly maxAddresses: number;
}

interface Failures {
  count: number;
  /** Date.now() of the last failure. */
  last: number;
}

/**
 * Failed tokens per address. A token from an address with n failures waits until
 * base·2^(n−1) ms after its last failure before it is checked; guesses sent in
 * parallel all wait for the same moment, fail together and push the wait to the
 * ceiling, so an address gets at most (its connection cap) guesses per maxMs.
 */
export class FailedTokenThrottle {
  readonly #options: ThrottleOptions;
  readonly #now: () => number;
  /** In order of last failure (re-inserted on each), so the first entry is the longest quiet. */
  readonly #failures = new Map<string, Failures>();

  constructor(options: ThrottleOptions, now: () => number = Date.now) {
    this.#options = options;
    this.#now = now;
  }

  /** ms a token presented from `key` must wait before it is checked (0: check now). */
  delayMs(key: string): number {
    const f = this.#failures.get(key);
    if (f === undefined) return 0;
    const now = this.#now();
    if (now - f.last > this.#options.forgetMs) {
      this.#failures.delete(key);
      return 0;
    }
    const wait = Math.min(this.#options.maxMs, this.#options.baseMs * 2 ** Math.min(f.count - 1, 30));
    return Math.max(0, f.last + wait - now);
  }

  failed(key: string): void {
    const f = this.#failures.get(key) ?? { count: 0, last: 0 };
    f.count++;
    f.last = this.#now();
    this.#failures.delete(key);
    this.#failures.set(key, f);
    if (this.#failures.size > this.#options.maxAddresses) {
      const oldest = this.#failures.keys().next().value;
      if (oldest !== undefined) this.#failures.delete(oldest);
    }
  }

  succeeded(key: string): void {
    this.#failures.delete(key);
  }

  /** Runs `check` once the address's wait is over (at once when there is none). */
  afterDelay(key: string, check: () => void): void {
    const wait = this.delayMs(key);
    if (wait === 0) check();
    else setTimeout(check, wait).unref();
  }
}

/**
 * An origin as a browser sends it in an Origin header (lower case, default port left out);
 * a ConfigError if it is not one.
 */
export function normalizedOrigin(text: string): string {
  const url = URL.canParse(text) ? new URL(text) : null;
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin === 'null')
    throw new ConfigError(`--allow-origin: expected an origin like https://example.org, got ${JSON.stringify(text)}`);
  return url.origin;
}
