// Seeded inputs for the optimizer tests: parameters and gradient sums that reach the
// corners of float32 (signed zeros, subnormals, huge values), and bit views to compare.

import type { Rng } from '../../../shared/rng.js';

export function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.slice().buffer);
}

/** ±(1 + m)·2^e rounded to float32, e uniform in [minExp, maxExp] (below −126: subnormal). */
export function randomFloat(rng: Rng, minExp: number, maxExp: number): number {
  const e = minExp + rng.nextInt(maxExp - minExp + 1);
  const sign = rng.nextUint32() & 1 ? -1 : 1;
  return Math.fround(sign * (1 + rng.nextFloat()) * 2 ** e);
}

/** A gradient sum over `count` samples: mostly ordinary, some ±0, subnormal or huge. */
export function randomSum(rng: Rng, n: number, count: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.nextFloat();
    if (u < 0.08) a[i] = rng.nextUint32() & 1 ? -0 : 0;
    else if (u < 0.13) a[i] = randomFloat(rng, -149, -120);
    else if (u < 0.15) a[i] = randomFloat(rng, 60, 100);
    else a[i] = randomFloat(rng, -24, 2) * count;
  }
  return a;
}

export function randomParams(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.nextFloat();
    if (u < 0.05) a[i] = rng.nextUint32() & 1 ? -0 : 0;
    else if (u < 0.08) a[i] = randomFloat(rng, -149, -120);
    else a[i] = randomFloat(rng, -14, 1);
  }
  return a;
}

/** Uniform in [−1, 1), as float32. */
export function uniform(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * rng.nextFloat() - 1;
  return a;
}
