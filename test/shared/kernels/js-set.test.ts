// shared/kernels/{matmul,naive,activations,loss}.ts: the tiled matmul kernels against
// their naive twins (bit-equal where the operation order is the same, a stated
// tolerance where it is not), accumulation semantics, activations against their
// textbook formulas, and the loss heads against a double-precision reference built
// on Math.exp/Math.log (allowed here as a reference, never in the kernels).

import { describe, it, expect } from 'vitest';
import { matmulBackward, matmulForward } from '../../../shared/kernels/matmul.js';
import { matmulBackwardNaive, matmulForwardNaive } from '../../../shared/kernels/naive.js';
import {
  reluBackward,
  reluForward,
  sigmoidBackward,
  sigmoidForward,
  tanhBackward,
  tanhForward,
} from '../../../shared/kernels/activations.js';
import { meanSquaredError, softmaxCrossEntropy } from '../../../shared/kernels/loss.js';
import { deriveRng, type Rng } from '../../../shared/rng.js';

const SEED = 0x6b31;

/** n float32 values uniform in [-scale, scale). */
function randomArray(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.nextFloat() - 1) * scale;
  return a;
}

/** null when a and b hold the same bits, else a description of the first difference. */
function bitDiff(a: Float32Array, b: Float32Array): string | null {
  if (a.length !== b.length) return `lengths differ: ${a.length} vs ${b.length}`;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i]) return `index ${i}: ${a[i]} (0x${ua[i].toString(16)}) vs ${b[i]} (0x${ub[i].toString(16)})`;
  }
  return null;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Every (B, C, OC) in 1..9, so every tile remainder is hit, plus a few realistic shapes. */
const SMALL_SHAPES: [number, number, number][] = [];
for (let B = 1; B <= 9; B++) for (let C = 1; C <= 9; C++) for (let OC = 1; OC <= 9; OC++) SMALL_SHAPES.push([B, C, OC]);
const LARGE_SHAPES: [number, number, number][] = [
  [16, 784, 128],
  [17, 33, 10],
  [32, 128, 10],
  [3, 1, 5],
  [1, 300, 7],
];
const SHAPES = [...SMALL_SHAPES, ...LARGE_SHAPES];

interface MatmulCase {
  readonly B: number;
  readonly C: number;
  readonly OC: number;
  /** (B, C) */ readonly inp: Float32Array;
  /** (OC, C) */ readonly weight: Float32Array;
  /** (OC) */ readonly bias: Float32Array;
  /** (B, OC) */ readonly dout: Float32Array;
}

function matmulCase([B, C, OC]: [number, number, number]): MatmulCase {
  const rng = deriveRng(SEED, 'matmul', B, C, OC);
  return {
    B,
    C,
    OC,
    inp: randomArray(rng, B * C, 2),
    weight: randomArray(rng, OC * C, 0.5),
    bias: randomArray(rng, OC, 0.5),
    dout: randomArray(rng, B * OC, 1),
  };
}

describe('matmulForward', () => {
  it('is bit-equal to matmulForwardNaive for every shape in 1..9³ and larger ones', () => {
    for (const shape of SHAPES) {
      const { B, C, OC, inp, weight, bias } = matmulCase(shape);
      const fast = new Float32Array(B * OC).fill(NaN);
      const naive = new Float32Array(B * OC).fill(NaN);
      matmulForward(fast, inp, weight, bias, B, C, OC);
      matmulForwardNaive(naive, inp, weight, bias, B, C, OC);
      expect(bitDiff(fast, naive), `shape B=${B} C=${C} OC=${OC}`).toBeNull();
    }
  });

  it('computes inp·weightᵀ + bias (naive twin within 1e-6 of a float64 reference, relative to max |out|)', () => {
    for (const shape of [
      [5, 7, 3],
      [17, 33, 10],
    ] as [number, number, number][]) {
      const { B, C, OC, inp, weight, bias } = matmulCase(shape);
      const out = new Float32Array(B * OC);
      matmulForwardNaive(out, inp, weight, bias, B, C, OC);
      const ref = new Float64Array(B * OC);
      for (let b = 0; b < B; b++) {
        for (let o = 0; o < OC; o++) {
          let s = bias[o];
          for (let c = 0; c < C; c++) s += inp[b * C + c] * weight[o * C + c];
          ref[b * OC + o] = s;
        }
      }
      expect(maxAbsDiff(out, ref)).toBeLessThanOrEqual(1e-6 * maxAbs(ref));
    }
  });

  it('writes only the (B, OC) prefix of out and reads only the (B, C) prefix of inp', () => {
    const { C, OC, inp, weight, bias } = matmulCase([6, 5, 4]);
    const B = 3; // use half the rows
    const out = new Float32Array(6 * OC).fill(-7);
    matmulForward(out, inp, weight, bias, B, C, OC);
    for (let i = B * OC; i < out.length; i++) expect(out[i]).toBe(-7);
    const outShort = new Float32Array(B * OC);
    matmulForwardNaive(outShort, inp.subarray(0, B * C), weight, bias, B, C, OC);
    expect(bitDiff(out.subarray(0, B * OC), outShort)).toBeNull();
  });
});

describe('matmulBackward', () => {
  it('dinp and dbias bit-equal to the naive twin, dweight within 1e-5 relative to max |dweight|', () => {
    let worst = 0;
    for (const shape of SHAPES) {
      const { B, C, OC, inp, weight, dout } = matmulCase(shape);
      const rng = deriveRng(SEED, 'prefill', B, C, OC);
      // Prefilled gradients: both kernels must add to what is there.
      const dweight0 = randomArray(rng, OC * C, 0.25);
      const dbias0 = randomArray(rng, OC, 0.25);
      const fast = { dinp: new Float32Array(B * C).fill(NaN), dweight: dweight0.slice(), dbias: dbias0.slice() };
      const naive = { dinp: new Float32Array(B * C).fill(NaN), dweight: dweight0.slice(), dbias: dbias0.slice() };
      matmulBackward(fast.dinp, fast.dweight, fast.dbias, dout, inp, weight, B, C, OC);
      matmulBackwardNaive(naive.dinp, naive.dweight, naive.dbias, dout, inp, weight, B, C, OC);
      const where = `shape B=${B} C=${C} OC=${OC}`;
      expect(bitDiff(fast.dinp, naive.dinp), where).toBeNull();
      expect(bitDiff(fast.dbias, naive.dbias), where).toBeNull();
      const rel = maxAbsDiff(fast.dweight, naive.dweight) / maxAbs(naive.dweight);
      expect(rel, where).toBeLessThanOrEqual(1e-5);
      worst = Math.max(worst, rel);
    }
    // The weight gradient is not bit-equal by design (blocks of four samples); make
    // sure the tolerance is not vacuous either: the two do differ somewhere.
    expect(worst).toBeGreaterThan(0);
  });

  it('naive twin matches a float64 reference (dweight, dbias, dinp within 1e-6 relative to max |value|)', () => {
    const { B, C, OC, inp, weight, dout } = matmulCase([7, 9, 5]);
    const dinp = new Float32Array(B * C);
    const dweight = new Float32Array(OC * C);
    const dbias = new Float32Array(OC);
    matmulBackwardNaive(dinp, dweight, dbias, dout, inp, weight, B, C, OC);
    const rw = new Float64Array(OC * C);
    const rb = new Float64Array(OC);
    const ri = new Float64Array(B * C);
    for (let b = 0; b < B; b++) {
      for (let o = 0; o < OC; o++) {
        const d = dout[b * OC + o];
        rb[o] += d;
        for (let c = 0; c < C; c++) {
          rw[o * C + c] += d * inp[b * C + c];
          ri[b * C + c] += d * weight[o * C + c];
        }
      }
    }
    expect(maxAbsDiff(dweight, rw)).toBeLessThanOrEqual(1e-6 * maxAbs(rw));
    expect(maxAbsDiff(dbias, rb)).toBeLessThanOrEqual(1e-6 * maxAbs(rb));
    expect(maxAbsDiff(dinp, ri)).toBeLessThanOrEqual(1e-6 * maxAbs(ri));
  });

  it('accumulates (+=) into dweight and dbias, overwrites dinp (two calls ≈ 2× one within 1e-6 relative)', () => {
    for (const shape of [
      [9, 7, 5],
      [16, 784, 128],
      [17, 33, 10],
    ] as [number, number, number][]) {
      const { B, C, OC, inp, weight, dout } = matmulCase(shape);
      const once = { dinp: new Float32Array(B * C), dweight: new Float32Array(OC * C), dbias: new Float32Array(OC) };
      matmulBackward(once.dinp, once.dweight, once.dbias, dout, inp, weight, B, C, OC);
      const twice = { dinp: new Float32Array(B * C), dweight: new Float32Array(OC * C), dbias: new Float32Array(OC) };
      matmulBackward(twice.dinp, twice.dweight, twice.dbias, dout, inp, weight, B, C, OC);
      matmulBackward(twice.dinp, twice.dweight, twice.dbias, dout, inp, weight, B, C, OC);
      // dinp is written, not accumulated: a second call leaves the same bits.
      expect(bitDiff(twice.dinp, once.dinp)).toBeNull();
      const doubledW = once.dweight.map((v) => 2 * v);
      const doubledB = once.dbias.map((v) => 2 * v);
      expect(maxAbsDiff(twice.dweight, doubledW)).toBeLessThanOrEqual(1e-6 * maxAbs(doubledW));
      expect(maxAbsDiff(twice.dbias, doubledB)).toBeLessThanOrEqual(1e-6 * maxAbs(doubledB));
      expect(maxAbs(once.dweight)).toBeGreaterThan(0);
    }
  });

  it('dinp = null skips the input gradient and leaves dweight/dbias bit-identical', () => {
    for (const shape of [
      [1, 1, 1],
      [5, 6, 7],
      [17, 33, 10],
    ] as [number, number, number][]) {
      const { B, C, OC, inp, weight, dout } = matmulCase(shape);
      const withInp = { dinp: new Float32Array(B * C), dweight: new Float32Array(OC * C), dbias: new Float32Array(OC) };
      matmulBackward(withInp.dinp, withInp.dweight, withInp.dbias, dout, inp, weight, B, C, OC);
      const dweight = new Float32Array(OC * C);
      const dbias = new Float32Array(OC);
      expect(() => matmulBackward(null, dweight, dbias, dout, inp, weight, B, C, OC)).not.toThrow();
      expect(bitDiff(dweight, withInp.dweight)).toBeNull();
      expect(bitDiff(dbias, withInp.dbias)).toBeNull();
      const naiveW = new Float32Array(OC * C);
      const naiveB = new Float32Array(OC);
      matmulBackwardNaive(null, naiveW, naiveB, dout, inp, weight, B, C, OC);
      expect(bitDiff(naiveB, dbias)).toBeNull();
    }
  });
});

describe('activations', () => {
  const rng = deriveRng(SEED, 'activations');
  const special = [0, -0, 1e-8, -1e-8, 0.5, -0.5, 3, -3, 20, -20, 50, -50, 100, -100, 1000, -1000];
  const inp = Float32Array.from([...special, ...randomArray(rng, 500, 8)]);
  const N = inp.length;
  const dout = randomArray(rng, N, 2);

  const f32 = new Float32Array(1);
  const i32 = new Int32Array(f32.buffer);
  /** The float32 rounding of x as an integer that grows with the value; ±0 both map to 0. */
  function orderedFloat32(x: number): number {
    f32[0] = x;
    return i32[0] < 0 ? -(i32[0] & 0x7fffffff) : i32[0];
  }

  /** Each value within `ulps` float32 ulps of the float32 rounding of the (double) reference. */
  function expectNearF32(actual: Float32Array, ref: (i: number) => number, ulps: number, what: string): void {
    for (let i = 0; i < actual.length; i++) {
      const r = ref(i);
      const d = Math.abs(orderedFloat32(actual[i]) - orderedFloat32(r));
      expect(d, `${what} at input ${inp[i]}: got ${actual[i]}, want ${r}`).toBeLessThanOrEqual(ulps);
    }
  }

  it('relu forward = max(x, 0), backward passes dout where the output is positive', () => {
    const out = new Float32Array(N);
    reluForward(out, inp, N);
    // biome-ignore lint/complexity/useMathMinMax: NaN and -0 map to 0, unlike Math.max
    for (let i = 0; i < N; i++) expect(out[i]).toBe(inp[i] > 0 ? inp[i] : 0);
    const dinp = new Float32Array(N).fill(NaN);
    reluBackward(dinp, dout, out, N);
    for (let i = 0; i < N; i++) expect(dinp[i]).toBe(inp[i] > 0 ? dout[i] : 0);
  });

  it('sigmoid within 1 f32 ulp of 1/(1+e^-x), backward within 2^-23·|dout| of dout·e^-x/(1+e^-x)², |x| <= 4', () => {
    const out = new Float32Array(N);
    sigmoidForward(out, inp, N);
    expectNearF32(out, (i) => 1 / (1 + Math.exp(-inp[i])), 1, 'sigmoid');
    for (const v of out) expect(v >= 0 && v <= 1).toBe(true);
    const dinp = new Float32Array(N).fill(NaN);
    sigmoidBackward(dinp, dout, out, N);
    // Exactly the formula on the stored output, and close to the true derivative
    // where the float32 output still resolves 1 − y (|x| ≤ 4).
    for (let i = 0; i < N; i++) {
      expect(dinp[i]).toBe(Math.fround(dout[i] * out[i] * (1 - out[i])));
      expect(Number.isFinite(dinp[i])).toBe(true);
    }
    const small = [...inp.keys()].filter((i) => Math.abs(inp[i]) <= 4);
    const dSmall = Float32Array.from(small, (i) => dinp[i]);
    for (const [k, i] of small.entries()) {
      const e = Math.exp(-inp[i]);
      const ref = (dout[i] * e) / ((1 + e) * (1 + e));
      expect(Math.abs(dSmall[k] - ref), `sigmoid' at ${inp[i]}`).toBeLessThanOrEqual(2 ** -23 * Math.abs(dout[i]));
    }
  });

  it('tanh within 1 float32 ulp of Math.tanh; backward within 3e-7·|dout| of dout/cosh²(x) for |x| ≤ 4', () => {
    const out = new Float32Array(N);
    tanhForward(out, inp, N);
    expectNearF32(out, (i) => Math.tanh(inp[i]), 1, 'tanh');
    expect(Object.is(out[1], -0)).toBe(true); // odd: tanh(−0) = −0
    const dinp = new Float32Array(N).fill(NaN);
    tanhBackward(dinp, dout, out, N);
    for (let i = 0; i < N; i++) expect(dinp[i]).toBe(Math.fround(dout[i] * (1 - out[i] * out[i])));
    for (let i = 0; i < N; i++) {
      if (Math.abs(inp[i]) > 4) continue;
      const ch = Math.cosh(inp[i]);
      const ref = dout[i] / (ch * ch);
      expect(Math.abs(dinp[i] - ref), `tanh' at ${inp[i]}`).toBeLessThanOrEqual(3e-7 * Math.abs(dout[i]));
    }
  });
});

/** Double-precision softmax cross-entropy of one row via log-sum-exp. */
function refCrossEntropy(row: ArrayLike<number>, label: number): { loss: number; probs: number[] } {
  let max = -Infinity;
  for (let k = 0; k < row.length; k++) max = Math.max(max, row[k]);
  let sum = 0;
  for (let k = 0; k < row.length; k++) sum += Math.exp(row[k] - max);
  const lse = max + Math.log(sum);
  const probs = Array.from(row, (v) => Math.exp(v - lse));
  return { loss: lse - row[label], probs };
}

describe('softmaxCrossEntropy', () => {
  it('loss sum within 1e-12 relative of a float64 log-sum-exp reference, dlogits within 1e-7 absolute', () => {
    for (const [B, K] of [
      [1, 1],
      [7, 2],
      [7, 3],
      [13, 10],
      [4, 100],
    ]) {
      const rng = deriveRng(SEED, 'ce', B, K);
      const logits = randomArray(rng, B * K, 6);
      const labels = Float32Array.from({ length: B }, () => rng.nextInt(K));
      const dlogits = new Float32Array(B * K).fill(NaN);
      const stats = softmaxCrossEntropy(dlogits, logits, labels, B, K);
      let refSum = 0;
      let refCorrect = 0;
      for (let b = 0; b < B; b++) {
        const row = logits.subarray(b * K, b * K + K);
        const { loss, probs } = refCrossEntropy(row, labels[b]);
        refSum += loss;
        let arg = 0;
        for (let k = 1; k < K; k++) if (row[k] > row[arg]) arg = k;
        if (arg === labels[b]) refCorrect++;
        let rowSum = 0;
        for (let k = 0; k < K; k++) {
          const want = probs[k] - (k === labels[b] ? 1 : 0);
          expect(Math.abs(dlogits[b * K + k] - want), `B=${B} K=${K} [${b},${k}]`).toBeLessThanOrEqual(1e-7);
          rowSum += dlogits[b * K + k];
        }
        // softmax sums to 1 and one 1 is subtracted: each gradient row sums to ~0.
        expect(Math.abs(rowSum)).toBeLessThanOrEqual(1e-6);
      }
      expect(Math.abs(stats.lossSum - refSum)).toBeLessThanOrEqual(1e-12 * Math.max(1, refSum));
      expect(stats.correct).toBe(refCorrect);
      // Without a gradient buffer the statistics are the same.
      expect(softmaxCrossEntropy(null, logits, labels, B, K)).toEqual(stats);
    }
  });

  it('stays finite on huge logits (±1e4) and matches the reference there', () => {
    const K = 4;
    const logits = Float32Array.from([
      1e4,
      -1e4,
      0,
      1e4 - 1, // near-tie at the top
      -1e4,
      -1e4,
      -1e4,
      -1e4, // all equal and very negative
      1e4,
      1e4,
      -1e4,
      5, // exact tie between 0 and 1
      -1e4,
      3,
      1e4,
      -5,
    ]);
    const labels = Float32Array.from([1, 2, 1, 2]);
    const B = labels.length;
    const dlogits = new Float32Array(B * K);
    const stats = softmaxCrossEntropy(dlogits, logits, labels, B, K);
    expect(Number.isFinite(stats.lossSum)).toBe(true);
    for (const v of dlogits) expect(Number.isFinite(v)).toBe(true);
    let refSum = 0;
    for (let b = 0; b < B; b++) refSum += refCrossEntropy(logits.subarray(b * K, b * K + K), labels[b]).loss;
    expect(Math.abs(stats.lossSum - refSum)).toBeLessThanOrEqual(1e-12 * refSum);
    expect(refSum).toBeGreaterThan(2e4); // row 0 pays ~2e4 for label 1: nothing was clamped
    // Row 1: uniform softmax, loss log 4. Row 2: tie, label 1 gets p = 1/2.
    expect(dlogits[1 * K + 2]).toBeCloseTo(0.25 - 1, 7);
    expect(dlogits[2 * K + 0]).toBeCloseTo(0.5, 7);
    expect(dlogits[2 * K + 1]).toBeCloseTo(-0.5, 7);
    // Argmax takes the first maximum on ties (as torch.argmax): rows 1 and 2 predict 0,
    // row 3 predicts 2 (correct); row 0 predicts 0 (wrong).
    expect(stats.correct).toBe(1);
  });

  it('counts correct argmax predictions, first index winning ties', () => {
    const K = 3;
    const logits = Float32Array.from([
      0.1,
      0.9,
      0.2, // argmax 1
      2,
      2,
      1, // tie → 0
      -1,
      -2,
      -0.5, // argmax 2
      0,
      0,
      0, // tie → 0
    ]);
    expect(softmaxCrossEntropy(null, logits, Float32Array.from([1, 0, 2, 0]), 4, K).correct).toBe(4);
    expect(softmaxCrossEntropy(null, logits, Float32Array.from([1, 1, 2, 1]), 4, K).correct).toBe(2);
    expect(softmaxCrossEntropy(null, logits, Float32Array.from([0, 2, 1, 2]), 4, K).correct).toBe(0);
  });
});

describe('meanSquaredError', () => {
  it('loss = Σ_b mean_t (out - target)², dout = 2(out - target)/T within 1e-12, 1e-7 relative; correct = 0', () => {
    for (const [B, T] of [
      [1, 1],
      [5, 2],
      [6, 3],
    ]) {
      const rng = deriveRng(SEED, 'mse', B, T);
      const out = randomArray(rng, B * T, 3);
      const targets = randomArray(rng, B * T, 3);
      const dout = new Float32Array(B * T).fill(NaN);
      const stats = meanSquaredError(dout, out, targets, B, T);
      let ref = 0;
      for (let b = 0; b < B; b++) {
        let s = 0;
        for (let t = 0; t < T; t++) s += (out[b * T + t] - targets[b * T + t]) ** 2;
        ref += s / T;
      }
      expect(Math.abs(stats.lossSum - ref)).toBeLessThanOrEqual(1e-12 * ref);
      expect(stats.correct).toBe(0);
      for (let i = 0; i < B * T; i++) {
        const want = (2 * (out[i] - targets[i])) / T;
        expect(Math.abs(dout[i] - want)).toBeLessThanOrEqual(1e-7 * Math.abs(want));
      }
      expect(meanSquaredError(null, out, targets, B, T)).toEqual(stats);
    }
  });

  it('is zero with a zero gradient when the output equals the target', () => {
    const out = Float32Array.from([1.5, -2, 0.25, 7]);
    const dout = new Float32Array(4).fill(NaN);
    expect(meanSquaredError(dout, out, out.slice(), 2, 2)).toEqual({ lossSum: 0, correct: 0 });
    for (const v of dout) expect(v).toBe(0);
  });
});
