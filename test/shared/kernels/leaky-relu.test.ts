// Leaky ReLU in both kernel sets: bit-equal to the naive twins and to each other
// (one float32 product), PyTorch's rules at 0, NaN and the slope's float32 rounding,
// and backward against central differences.

import { describe, expect, it } from 'vitest';
import { createKernelSet, KERNEL_SET_NAMES } from '../../../shared/kernels/kernel-set.js';
import { leakyReluBackwardNaive, leakyReluForwardNaive } from '../../../shared/kernels/naive.js';
import { deriveRng } from '../../../shared/rng.js';
import { bitDiff, dotLoss, gridArray, numericGradient, put, randomArray } from './support.js';

const SEED = 0x1ea4;

describe('leaky ReLU kernels', () => {
  it('both sets are bit-equal to the naive twins (odd lengths, ±0, NaN, ±Inf, slopes)', () => {
    for (const slope of [0.01, 0.2, 1 / 3, 0]) {
      for (const N of [1, 3, 4, 7, 64, 1001]) {
        const rng = deriveRng(SEED, 'twin', N, slope);
        const x = randomArray(rng, N, 3);
        x[0] = -0;
        if (N > 3) x.set([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY], 1);
        const dy = randomArray(rng, N);
        const wantOut = new Float32Array(N),
          wantGrad = new Float32Array(N);
        leakyReluForwardNaive(wantOut, x, N, slope);
        leakyReluBackwardNaive(wantGrad, dy, x, N, slope);
        for (const name of KERNEL_SET_NAMES) {
          const k = createKernelSet(name, 4 * N + 256);
          const inp = put(k, x),
            out = k.alloc(N),
            dinp = k.alloc(N);
          k.leakyReluForward(out, inp, N, slope);
          k.leakyReluBackward(dinp, put(k, dy), inp, N, slope);
          expect(bitDiff(out, wantOut), `${name} N=${N} slope ${slope} forward`).toBeNull();
          expect(bitDiff(dinp, wantGrad), `${name} N=${N} slope ${slope} backward`).toBeNull();
        }
      }
    }
  });

  it('follows PyTorch: x·float32(slope) below 0, the slope side of the gradient at 0, NaN kept', () => {
    for (const name of KERNEL_SET_NAMES) {
      const k = createKernelSet(name, 256);
      const inp = put(k, new Float32Array([-3, 0, 2, Number.NaN]));
      const out = k.alloc(4),
        dinp = k.alloc(4);
      k.leakyReluForward(out, inp, 4, 0.01);
      expect(out[0]).toBe(Math.fround(-3 * Math.fround(0.01)));
      expect(out[1]).toBe(0);
      expect(out[2]).toBe(2);
      expect(out[3]).toBeNaN();
      k.leakyReluBackward(dinp, put(k, new Float32Array([1, 1, 1, 1])), inp, 4, 0.01);
      expect(Array.from(dinp.subarray(0, 3))).toEqual([Math.fround(0.01), Math.fround(0.01), 1]);
    }
  });

  it('backward matches central differences away from the kink', () => {
    for (const name of KERNEL_SET_NAMES) {
      const N = 200;
      const rng = deriveRng(SEED, 'fd', name);
      const k = createKernelSet(name, 4 * N + 256);
      const x = gridArray(rng, N, 2);
      for (let i = 0; i < N; i++) if (Math.abs(x[i]) < 2 ** -6) x[i] = 0.5;
      const inp = put(k, x),
        r = gridArray(rng, N),
        out = k.alloc(N),
        dinp = k.alloc(N);
      k.leakyReluBackward(dinp, put(k, r), inp, N, 0.01);
      const loss = (): number => {
        k.leakyReluForward(out, inp, N, 0.01);
        return dotLoss(r, out);
      };
      for (let i = 0; i < N; i++) {
        const num = numericGradient(inp, i, 2 ** -10, loss);
        expect(Math.abs(num - dinp[i]), `${name} [${i}]`).toBeLessThan(1e-5 + 1e-4 * Math.abs(num));
      }
    }
  });
});
