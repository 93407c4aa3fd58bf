// Helpers shared by the kernel tests: seeded arrays, bit comparison, copies into a
// kernel set's memory, the float32 summation bound, and a central-difference gradient.

import type { KernelSet } from '../../../shared/kernels/kernel-set.js';
import type { Rng } from '../../../shared/rng.js';

/** Unit roundoff of float32. */
export const U = 2 ** -24;

/** n float32 values uniform in [-scale, scale). */
export function randomArray(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.nextFloat() - 1) * scale;
  return a;
}

/** n values k/1024 for integers |k| ≤ 1024·scale: exact in float32, and so is x ± 2^-10·m for small m. */
export function gridArray(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.round((2 * rng.nextFloat() - 1) * scale * 1024) / 1024;
  return a;
}

/** null when a and b hold the same bits, else the first difference. */
export function bitDiff(a: Float32Array, b: Float32Array): string | null {
  if (a.length !== b.length) return `lengths ${a.length} vs ${b.length}`;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return `[${i}]: ${a[i]} vs ${b[i]}`;
  return null;
}

/** A copy of src in the kernel set's memory. */
export function put(k: Pick<KernelSet, 'alloc'>, src: Float32Array): Float32Array {
  const a = k.alloc(src.length);
  a.set(src);
  return a;
}

/** Absolute values, elementwise. */
export function abs(a: Float32Array): Float32Array {
  return a.map(Math.abs);
}

/**
 * Whether a float32 sum of n terms (`fast`) is within the classical recursive-summation
 * bound of the reference (`naive`, a double sum rounded once): (n + 2)·u·Σ|terms| plus
 * the reference's own half ulp. Any order of summation, lanes included, meets it.
 */
export function within(fast: number, naive: number, n: number, absSum: number): boolean {
  return Math.abs(fast - naive) <= (n + 2) * U * absSum + Math.abs(naive) * U;
}

/**
 * Central difference (L(x + h) − L(x − h)) / 2h of `loss` in x[i], restoring x[i].
 * With x[i] and h on a power-of-two grid both perturbations are exact in float32.
 */
export function numericGradient(x: Float32Array, i: number, h: number, loss: () => number): number {
  const x0 = x[i];
  x[i] = x0 + h;
  const up = loss();
  x[i] = x0 - h;
  const down = loss();
  x[i] = x0;
  return (up - down) / (2 * h);
}

/** Σ r[i]·y[i] in double: the test loss whose gradient with respect to y is r. */
export function dotLoss(r: Float32Array, y: Float32Array): number {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i] * y[i];
  return s;
}
