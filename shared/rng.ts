// Seeded pseudo-random numbers. Every random choice in flocktrain (initial weights,
// data splits, epoch permutations, synthetic data) draws from a stream derived from
// the run's seed and a purpose, so a run is a function of its config and seed.
// Integer arithmetic only (Math.imul, shifts): identical on every JS engine.

/** A stream of uniform 32-bit integers (SplitMix32-style mixing over a Weyl sequence). */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform float in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n), without modulo bias (n ≤ 2^32). */
  nextInt(n: number): number {
    if (!(n > 0 && n <= 4294967296)) throw new RangeError(`nextInt: n must be in (0, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }
}

/** Derives an independent stream for one purpose: hash of (seed, ...path) through the mixer. */
export function deriveRng(seed: number, ...path: (number | string)[]): Rng {
  let h = new Rng(seed ^ 0x5bd1e995).nextUint32();
  for (const part of path) {
    const words =
      typeof part === 'number'
        ? [part >>> 0, Math.floor(part / 4294967296) >>> 0]
        : [...part].map((c) => c.codePointAt(0) ?? 0);
    for (const w of words) h = new Rng((h ^ Math.imul(w, 0x27d4eb2d)) >>> 0).nextUint32();
    h = new Rng(h ^ 0x165667b1).nextUint32();
  }
  return new Rng(h);
}

/** Fisher–Yates shuffle in place. */
export function shuffleInPlace(values: Uint32Array, rng: Rng): Uint32Array {
  for (let i = values.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = values[i];
    values[i] = values[j];
    values[j] = t;
  }
  return values;
}

/** A permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffleInPlace(p, rng);
}
