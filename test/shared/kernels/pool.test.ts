// Max and average pooling in both kernel sets against the straight loops of naive.ts
// (bit-equal: the same comparisons and the same double sums), the tie and NaN rules
// users rely on (the first maximum wins and gets the gradient; a NaN wins), overlapping
// windows accumulating, and central differences for both backward passes.

import { describe, expect, it } from 'vitest';
import { createKernelSet, KERNEL_SET_NAMES } from '../../../shared/kernels/kernel-set.js';
import {
  avgpool2dBackwardNaive,
  avgpool2dForwardNaive,
  maxpool2dBackwardNaive,
  maxpool2dForwardNaive,
} from '../../../shared/kernels/naive.js';
import { poolOutSize } from '../../../shared/kernels/pool.js';
import { deriveRng } from '../../../shared/rng.js';
import { bitDiff, dotLoss, gridArray, numericGradient, put, randomArray } from './support.js';

const SEED = 0x9001;

/** [B, C, H, W, K, S]: PyTorch's usual 2/2, overlapping 3/2 and 3/1, leftover rows and columns, K = H. */
const SHAPES: [number, number, number, number, number, number][] = [
  [2, 3, 8, 8, 2, 2],
  [1, 2, 7, 9, 3, 2],
  [2, 1, 6, 5, 3, 1],
  [1, 4, 5, 7, 2, 2],
  [3, 2, 4, 4, 4, 1],
  [1, 1, 1, 1, 1, 1],
  [64, 16, 24, 24, 2, 2],
  [2, 2, 6, 22, 2, 2],
  [1, 2, 9, 19, 2, 2],
];

describe('pooling kernels', () => {
  it('both sets are bit-equal to the naive twins, forward and backward, max and avg', () => {
    for (const [B, C, H, W, K, S] of SHAPES) {
      const N = B * C * H * W;
      const M = B * C * poolOutSize(H, K, S) * poolOutSize(W, K, S);
      const rng = deriveRng(SEED, 'twin', B, C, H, W, K, S);
      // Coarse values so that ties occur.
      const x = gridArray(rng, N).map((v) => Math.round(v * 4) / 4);
      const dy = randomArray(rng, M);
      const want = {
        max: new Float32Array(M),
        maxGrad: new Float32Array(N),
        avg: new Float32Array(M),
        avgGrad: new Float32Array(N),
      };
      maxpool2dForwardNaive(want.max, x, B, C, H, W, K, S);
      maxpool2dBackwardNaive(want.maxGrad, dy, x, B, C, H, W, K, S);
      avgpool2dForwardNaive(want.avg, x, B, C, H, W, K, S);
      avgpool2dBackwardNaive(want.avgGrad, dy, B, C, H, W, K, S);
      for (const name of KERNEL_SET_NAMES) {
        const k = createKernelSet(name, 3 * N + 3 * M + 1024);
        const inp = put(k, x),
          dout = put(k, dy),
          out = k.alloc(M),
          dinp = k.alloc(N).fill(Number.NaN);
        const where = `${name} ${B}×${C}×${H}×${W} k${K} s${S}`;
        k.maxpool2dForward(out, inp, B, C, H, W, K, S);
        expect(bitDiff(out, want.max), `${where} max`).toBeNull();
        k.maxpool2dBackward(dinp, dout, inp, B, C, H, W, K, S);
        expect(bitDiff(dinp, want.maxGrad), `${where} max backward`).toBeNull();
        k.avgpool2dForward(out, inp, B, C, H, W, K, S);
        expect(bitDiff(out, want.avg), `${where} avg`).toBeNull();
        dinp.fill(Number.NaN);
        k.avgpool2dBackward(dinp, dout, B, C, H, W, K, S);
        expect(bitDiff(dinp, want.avgGrad), `${where} avg backward`).toBeNull();
      }
    }
  });

  it('max pooling: the first maximum in row-major window order wins and alone gets the gradient; NaN wins', () => {
    for (const name of KERNEL_SET_NAMES) {
      const k = createKernelSet(name, 1024);
      // One 1×1×3×3 image, K = 3: ties at positions 2 and 4 (row-major), then NaN at 5 and 7.
      const inp = put(k, new Float32Array([1, 0, 5, -1, 5, 2, 3, 5, 0]));
      const out = k.alloc(1),
        dinp = k.alloc(9),
        dout = put(k, new Float32Array([7]));
      k.maxpool2dForward(out, inp, 1, 1, 3, 3, 3, 3);
      expect(out[0]).toBe(5);
      k.maxpool2dBackward(dinp, dout, inp, 1, 1, 3, 3, 3, 3);
      expect(Array.from(dinp), name).toEqual([0, 0, 7, 0, 0, 0, 0, 0, 0]);
      inp[5] = Number.NaN;
      inp[7] = Number.NaN;
      k.maxpool2dForward(out, inp, 1, 1, 3, 3, 3, 3);
      expect(out[0]).toBeNaN();
      k.maxpool2dBackward(dinp, dout, inp, 1, 1, 3, 3, 3, 3);
      expect(Array.from(dinp), `${name} NaN`).toEqual([0, 0, 0, 0, 0, 7, 0, 0, 0]);
      // A NaN first in the window stays the winner over larger numbers after it.
      inp.set([Number.NaN, 9, 9, 9, 9, 9, 9, 9, 9]);
      k.maxpool2dBackward(dinp, dout, inp, 1, 1, 3, 3, 3, 3);
      expect(dinp[0], `${name} leading NaN`).toBe(7);
    }
  });

  it('the same rules hold four windows at a time (K = S = 2): −0 before +0 wins, NaN wins', () => {
    for (const name of KERNEL_SET_NAMES) {
      const k = createKernelSet(name, 1024);
      // One 1×1×2×8 image, four 2×2 windows: a tie, a −0/+0 tie, NaN second, NaN first.
      const inp = put(
        k,
        new Float32Array([1, 5, -0, 0, 3, Number.NaN, Number.NaN, 7, 5, 2, 0, -0, Number.NaN, 9, 8, 9]),
      );
      const out = k.alloc(4),
        dinp = k.alloc(16).fill(Number.NaN),
        dout = put(k, new Float32Array([1, 2, 3, 4]));
      k.maxpool2dForward(out, inp, 1, 1, 2, 8, 2, 2);
      expect(out[0]).toBe(5);
      expect(Object.is(out[1], -0), `${name}: −0 first`).toBe(true);
      expect(out[2]).toBeNaN();
      expect(out[3]).toBeNaN();
      k.maxpool2dBackward(dinp, dout, inp, 1, 1, 2, 8, 2, 2);
      expect(Array.from(dinp), name).toEqual([0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
  });

  it('overlapping windows add their gradients into a shared winner', () => {
    for (const name of KERNEL_SET_NAMES) {
      const k = createKernelSet(name, 1024);
      // 1×1×1×4 would need K = 1; use 3×3 with K = 2, S = 1: the centre 9 wins all four windows.
      const inp = put(k, new Float32Array([1, 2, 3, 4, 9, 5, 6, 7, 8]));
      const dout = put(k, new Float32Array([1, 2, 3, 4])),
        dinp = k.alloc(9);
      k.maxpool2dBackward(dinp, dout, inp, 1, 1, 3, 3, 2, 1);
      expect(Array.from(dinp), name).toEqual([0, 0, 0, 0, 10, 0, 0, 0, 0]);
      k.avgpool2dBackward(dinp, dout, 1, 1, 3, 3, 2, 1);
      expect(Array.from(dinp), name).toEqual([0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1]);
    }
  });

  it('backward passes match central differences of the forward passes', () => {
    const H_STEP = 2 ** -9;
    for (const [B, C, H, W, K, S] of SHAPES.slice(0, 5)) {
      const N = B * C * H * W;
      const M = B * C * poolOutSize(H, K, S) * poolOutSize(W, K, S);
      for (const name of KERNEL_SET_NAMES) {
        const k = createKernelSet(name, 3 * N + 3 * M + 1024);
        const rng = deriveRng(SEED, 'fd', name, H, W, K);
        // Distinct values 2^-6 apart, so a 2^-9 step never changes a window's winner.
        const order = Array.from({ length: N }, (_, i) => i);
        for (let i = N - 1; i > 0; i--) {
          const j = Math.floor(rng.nextFloat() * (i + 1));
          [order[i], order[j]] = [order[j], order[i]];
        }
        const inp = put(k, new Float32Array(order.map((v) => (v - N / 2) / 64)));
        const r = gridArray(rng, M);
        const out = k.alloc(M),
          dinp = k.alloc(N);
        for (const kind of ['max', 'avg'] as const) {
          const loss = (): number => {
            if (kind === 'max') k.maxpool2dForward(out, inp, B, C, H, W, K, S);
            else k.avgpool2dForward(out, inp, B, C, H, W, K, S);
            return dotLoss(r, out);
          };
          if (kind === 'max') k.maxpool2dBackward(dinp, put(k, r), inp, B, C, H, W, K, S);
          else k.avgpool2dBackward(dinp, put(k, r), B, C, H, W, K, S);
          for (let i = 0; i < N; i++) {
            const num = numericGradient(inp, i, H_STEP, loss);
            if (Math.abs(num - dinp[i]) > 1e-4 + 1e-4 * Math.abs(num))
              expect.fail(`${name} ${kind} ${B}×${C}×${H}×${W} k${K} s${S} dinp[${i}]: ${dinp[i]} vs ${num}`);
          }
        }
      }
    }
  });
});
