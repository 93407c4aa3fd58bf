// Dropout in both kernel sets: the mask is a pure function of (seed, step, sample,
// feature) — the same for a sample whatever batch, position or worker computes it —
// drops about p of the values, scales the rest by float32(1 / float32(1 − p)) as
// PyTorch does, gives the same bits in both sets and the naive twin, and backward is
// the derivative of forward for its (fixed) mask.

import { describe, expect, it } from 'vitest';
import { dropoutLayerSeed, dropoutMaskValue } from '../../../shared/kernels/dropout.js';
import { createKernelSet, KERNEL_SET_NAMES } from '../../../shared/kernels/kernel-set.js';
import { dropoutBackwardNaive, dropoutForwardNaive } from '../../../shared/kernels/naive.js';
import { deriveRng } from '../../../shared/rng.js';
import { bitDiff, dotLoss, gridArray, numericGradient, put, randomArray } from './support.js';

const SEED = 0xd209;

describe('dropout kernels', () => {
  it('both sets are bit-equal to the naive twin, forward and backward', () => {
    const B = 5,
      N = 37;
    const rng = deriveRng(SEED, 'twin');
    const x = randomArray(rng, B * N, 3);
    x[3] = Number.NaN;
    const dy = randomArray(rng, B * N);
    const samples = new Uint32Array([7, 0, 4_000_000_000, 12, 7]);
    for (const p of [0, 0.1, 0.5, 0.9, 1]) {
      const want = new Float32Array(B * N),
        wantGrad = new Float32Array(B * N);
      dropoutForwardNaive(want, x, B, N, p, 1234, 56, samples);
      dropoutBackwardNaive(wantGrad, dy, B, N, p, 1234, 56, samples);
      for (const name of KERNEL_SET_NAMES) {
        const k = createKernelSet(name, 4 * B * N + 256);
        const out = k.alloc(B * N),
          dinp = k.alloc(B * N);
        k.dropoutForward(out, put(k, x), B, N, p, 1234, 56, samples);
        k.dropoutBackward(dinp, put(k, dy), B, N, p, 1234, 56, samples);
        expect(bitDiff(out, want), `${name} p=${p}`).toBeNull();
        expect(bitDiff(dinp, wantGrad), `${name} p=${p} backward`).toBeNull();
      }
    }
  });

  it('a sample gets the same mask at any position in any batch; seed, step and sample each change it', () => {
    const N = 256;
    const k = createKernelSet('js', 0);
    const ones = new Float32Array(4 * N).fill(1);
    const a = new Float32Array(4 * N),
      b = new Float32Array(N);
    k.dropoutForward(a, ones, 4, N, 0.5, 99, 3, new Int32Array([10, 11, 42, 13]));
    k.dropoutForward(b, ones, 1, N, 0.5, 99, 3, new Int32Array([42]));
    expect(bitDiff(a.subarray(2 * N, 3 * N), b)).toBeNull();
    const differs = (seed: number, step: number, sample: number): boolean => {
      const c = new Float32Array(N);
      k.dropoutForward(c, ones, 1, N, 0.5, seed, step, [sample]);
      return bitDiff(c, b) !== null;
    };
    expect(differs(100, 3, 42)).toBe(true);
    expect(differs(99, 4, 42)).toBe(true);
    expect(differs(99, 3, 43)).toBe(true);
    expect(dropoutLayerSeed(99, 0)).not.toBe(dropoutLayerSeed(99, 1));
  });

  it('drops close to p of the values and scales the rest as PyTorch does', () => {
    for (const p of [0.1, 0.25, 0.5, 0.8]) {
      const B = 64,
        N = 512;
      const ones = new Float32Array(B * N).fill(1);
      const out = new Float32Array(B * N);
      const samples = Int32Array.from({ length: B }, (_, i) => i);
      createKernelSet('js', 0).dropoutForward(out, ones, B, N, p, 7, 1, samples);
      const scale = Math.fround(1 / Math.fround(1 - p));
      let dropped = 0,
        other = 0;
      for (const v of out) {
        if (v === 0) dropped++;
        else if (v !== scale) other++;
      }
      expect(other, `p=${p}: kept values not equal to ${scale}`).toBe(0);
      // 32,768 Bernoulli draws: 5 standard deviations is under 0.014.
      expect(Math.abs(dropped / out.length - p), `p=${p}`).toBeLessThan(0.014);
    }
    expect(dropoutMaskValue(0, 1, 2, 3, 4)).toBe(1);
    expect(dropoutMaskValue(1, 1, 2, 3, 4)).toBe(0);
  });

  it('backward matches central differences of forward for its mask', () => {
    for (const name of KERNEL_SET_NAMES) {
      const B = 3,
        N = 40;
      const rng = deriveRng(SEED, 'fd', name);
      const k = createKernelSet(name, 4 * B * N + 256);
      const samples = [5, 9, 2];
      const inp = put(k, gridArray(rng, B * N)),
        r = gridArray(rng, B * N),
        out = k.alloc(B * N),
        dinp = k.alloc(B * N);
      k.dropoutBackward(dinp, put(k, r), B, N, 0.3, 11, 4, samples);
      const loss = (): number => {
        k.dropoutForward(out, inp, B, N, 0.3, 11, 4, samples);
        return dotLoss(r, out);
      };
      for (let i = 0; i < B * N; i++) {
        const num = numericGradient(inp, i, 2 ** -6, loss);
        expect(Math.abs(num - dinp[i]), `${name} [${i}]`).toBeLessThan(1e-5 + 1e-4 * Math.abs(num));
      }
    }
  });
});
