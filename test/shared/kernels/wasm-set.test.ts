// shared/kernels/wasm (the WebAssembly SIMD kernel set) against the naive JS twins of
// shared/kernels/naive.ts. The wasm set accumulates in float32 lanes where the twins
// accumulate in double, so matmuls are compared within a stated tolerance; ReLU is
// bit-equal. Then determinism: the same inputs give the same bits twice, whatever was
// computed before, and a shard's gradient does not depend on the shards before it.

import { describe, it, expect } from 'vitest';
import { createKernelSet, jsKernels, kernelSetAvailable, type KernelSet } from '../../../shared/kernels/kernel-set.js';
import { WasmKernels } from '../../../shared/kernels/wasm/kernels.js';
import { matmulBackwardNaive, matmulForwardNaive } from '../../../shared/kernels/naive.js';
import { mlpSpec } from '../../../shared/model/spec.js';
import { initParams } from '../../../shared/model/init.js';
import { Network } from '../../../shared/model/network.js';
import { ShardComputer } from '../../../worker/compute.js';
import { syntheticDatasets } from '../../../shared/data/synthetic.js';
import { deriveRng, type Rng } from '../../../shared/rng.js';
import { combineInto, type PartialGradient } from '../../../shared/gradient.js';
import { coverNodes, reduceNode } from '../../../shared/tree.js';

const SEED = 0x3a5d;
const U = 2 ** -24; // unit roundoff of float32

function randomArray(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.nextFloat() - 1) * scale;
  return a;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** A copy of `src` in the kernel set's memory. */
function put(k: KernelSet, src: Float32Array): Float32Array {
  const a = k.alloc(src.length);
  a.set(src);
  return a;
}

/** Every (B, C, OC) in 1..9 plus shapes around the tile sizes (4×2, 4×8) and the MNIST MLP's. */
const SHAPES: [number, number, number][] = [];
for (let B = 1; B <= 9; B++) for (let C = 1; C <= 9; C++) for (let OC = 1; OC <= 9; OC++) SHAPES.push([B, C, OC]);
SHAPES.push(
  [16, 784, 128],
  [16, 128, 10],
  [17, 33, 10],
  [5, 17, 13],
  [64, 784, 128],
  [3, 1, 5],
  [1, 300, 7],
  [13, 131, 11],
);

/**
 * The tolerance: each wasm element is a float32 sum of n products (plus a bias or a
 * prefilled value), so |wasm − exact| ≤ (n + 2)·u·Σ|terms| (the classical bound for
 * recursive summation; lanes only lower it), and the naive twin is within ½ulp of exact.
 */
function within(fast: number, naive: number, n: number, absSum: number): boolean {
  return Math.abs(fast - naive) <= (n + 2) * U * absSum + Math.abs(naive) * U;
}

describe('wasm kernel set', () => {
  it('is available in this Node (WebAssembly SIMD-128)', () => {
    expect(kernelSetAvailable('wasm')).toBe(true);
  });

  it('matmulForward is within the float32 summation bound of the naive twin, every shape', () => {
    let differs = 0;
    for (const [B, C, OC] of SHAPES) {
      const ks = createKernelSet('wasm', 2 * (B * C + OC * C + 2 * B * OC + OC) + 1024);
      const rng = deriveRng(SEED, 'fwd', B, C, OC);
      const inp = put(ks, randomArray(rng, B * C, 2)),
        weight = put(ks, randomArray(rng, OC * C, 0.5)),
        bias = put(ks, randomArray(rng, OC, 0.5));
      const out = ks.alloc(B * OC).fill(NaN);
      ks.matmulForward(out, inp, weight, bias, B, C, OC);
      const naive = new Float32Array(B * OC);
      matmulForwardNaive(naive, inp, weight, bias, B, C, OC);
      for (let b = 0; b < B; b++) {
        for (let o = 0; o < OC; o++) {
          let abs = Math.abs(bias[o]);
          for (let c = 0; c < C; c++) abs += Math.abs(inp[b * C + c] * weight[o * C + c]);
          const i = b * OC + o;
          expect(
            within(out[i], naive[i], C, abs),
            `B=${B} C=${C} OC=${OC} out[${b},${o}]: ${out[i]} vs ${naive[i]}`,
          ).toBe(true);
          if (out[i] !== naive[i]) differs++;
        }
      }
    }
    // Different accumulation order: the bound must not be vacuous (they do differ).
    expect(differs).toBeGreaterThan(0);
  });

  it('matmulBackward (dweight +=, dbias +=, dinp =) is within the bound of the naive twin, every shape', () => {
    for (const [B, C, OC] of SHAPES) {
      const ks = createKernelSet('wasm', 3 * (B * C + 2 * OC * C + B * OC + 2 * OC) + 1024);
      const rng = deriveRng(SEED, 'bwd', B, C, OC);
      const inp = put(ks, randomArray(rng, B * C, 2)),
        weight = put(ks, randomArray(rng, OC * C, 0.5)),
        dout = put(ks, randomArray(rng, B * OC, 1));
      const dw0 = randomArray(rng, OC * C, 0.25),
        db0 = randomArray(rng, OC, 0.25);
      const dweight = put(ks, dw0),
        dbias = put(ks, db0),
        dinp = ks.alloc(B * C).fill(NaN);
      ks.matmulBackward(dinp, dweight, dbias, dout, inp, weight, B, C, OC);
      const nw = dw0.slice(),
        nb = db0.slice(),
        ni = new Float32Array(B * C);
      matmulBackwardNaive(ni, nw, nb, dout, inp, weight, B, C, OC);
      const where = `B=${B} C=${C} OC=${OC}`;
      for (let o = 0; o < OC; o++) {
        let absB = Math.abs(db0[o]);
        for (let b = 0; b < B; b++) absB += Math.abs(dout[b * OC + o]);
        expect(within(dbias[o], nb[o], B, absB), `${where} dbias[${o}]`).toBe(true);
        for (let c = 0; c < C; c++) {
          let abs = Math.abs(dw0[o * C + c]);
          for (let b = 0; b < B; b++) abs += Math.abs(dout[b * OC + o] * inp[b * C + c]);
          expect(within(dweight[o * C + c], nw[o * C + c], B, abs), `${where} dweight[${o},${c}]`).toBe(true);
        }
      }
      for (let b = 0; b < B; b++) {
        for (let c = 0; c < C; c++) {
          let abs = 0;
          for (let o = 0; o < OC; o++) abs += Math.abs(dout[b * OC + o] * weight[o * C + c]);
          expect(within(dinp[b * C + c], ni[b * C + c], OC, abs), `${where} dinp[${b},${c}]`).toBe(true);
        }
      }
    }
  });

  it('dinp = null leaves dweight and dbias bit-identical to a call with dinp', () => {
    for (const [B, C, OC] of [
      [16, 784, 128],
      [5, 9, 7],
      [1, 1, 1],
    ] as [number, number, number][]) {
      const ks = createKernelSet('wasm', 4 * (B * C + OC * C + B * OC + OC) + 1024);
      const rng = deriveRng(SEED, 'null', B, C, OC);
      const inp = put(ks, randomArray(rng, B * C)),
        weight = put(ks, randomArray(rng, OC * C)),
        dout = put(ks, randomArray(rng, B * OC));
      const w1 = ks.alloc(OC * C),
        b1 = ks.alloc(OC),
        w2 = ks.alloc(OC * C),
        b2 = ks.alloc(OC);
      ks.matmulBackward(ks.alloc(B * C), w1, b1, dout, inp, weight, B, C, OC);
      ks.matmulBackward(null, w2, b2, dout, inp, weight, B, C, OC);
      expect(sameBits(w1, w2) && sameBits(b1, b2)).toBe(true);
    }
  });

  it('accumulate = false overwrites dweight and dbias with the bits of zeroing first (both sets, ±0 included)', () => {
    for (const [B, C, OC] of [
      [16, 784, 128],
      [16, 128, 10],
      [5, 9, 7],
      [1, 1, 1],
      [3, 8, 4],
    ] as [number, number, number][]) {
      for (const name of ['wasm', 'js'] as const) {
        const ks = createKernelSet(name, 4 * (B * C + 2 * OC * C + B * OC + 2 * OC) + 1024);
        const rng = deriveRng(SEED, 'overwrite', B, C, OC);
        const inp = randomArray(rng, B * C),
          weight = randomArray(rng, OC * C),
          dout = randomArray(rng, B * OC);
        // Exact zeros of both signs, so that some sums are −0 (0 + −0 is +0: the modes must agree).
        for (let i = 0; i < inp.length; i += 3) inp[i] = i % 2 === 0 ? 0 : -0;
        for (let i = 0; i < dout.length; i += 5) dout[i] = -0;
        const [pInp, pWeight, pDout] = [put(ks, inp), put(ks, weight), put(ks, dout)];
        const zeroW = ks.alloc(OC * C),
          zeroB = ks.alloc(OC);
        ks.matmulBackward(null, zeroW, zeroB, pDout, pInp, pWeight, B, C, OC, true);
        const junkW = put(ks, randomArray(rng, OC * C, 1e6)),
          junkB = put(ks, randomArray(rng, OC, 1e6));
        junkW[0] = Number.NaN;
        ks.matmulBackward(null, junkW, junkB, pDout, pInp, pWeight, B, C, OC, false);
        expect(sameBits(junkW, zeroW) && sameBits(junkB, zeroB), `${name} ${B}×${C}·${OC}`).toBe(true);
      }
    }
  });

  it('ReLU forward and backward are bit-equal to the JS kernels (NaN, ±0, odd lengths)', () => {
    const ks = createKernelSet('wasm', 1 << 16);
    for (const N of [1, 3, 4, 7, 64, 1001]) {
      const rng = deriveRng(SEED, 'relu', N);
      const x = randomArray(rng, N, 3);
      x[0] = -0;
      if (N > 2) x[2] = NaN;
      const dout = randomArray(rng, N);
      const inp = put(ks, x),
        out = ks.alloc(N),
        dinp = ks.alloc(N),
        d = put(ks, dout);
      ks.reluForward(out, inp, N);
      const jsOut = new Float32Array(N);
      jsKernels.reluForward(jsOut, x, N);
      expect(sameBits(out, jsOut), `forward N=${N}`).toBe(true);
      ks.reluBackward(dinp, d, out, N);
      const jsDinp = new Float32Array(N);
      jsKernels.reluBackward(jsDinp, dout, jsOut, N);
      expect(sameBits(dinp, jsDinp), `backward N=${N}`).toBe(true);
    }
  });

  it('sigmoid and tanh, forward and backward, bit-equal the JS kernels on 400,000 inputs and the edge cases', () => {
    // Seeded inputs across the ranges that matter (tiny, around the branch points, the
    // saturation, huge), plus every special value; the JS kernels use transcendental.ts.
    const specials = [
      0,
      -0,
      1,
      -1,
      0.5,
      -0.5,
      0.34657359,
      -0.34657359,
      20,
      -20,
      20.000002,
      -20.000002,
      88.7,
      -88.7,
      103.9,
      -103.9,
      709.7,
      -745.2,
      1e-30,
      -1e-30,
      1.4e-45,
      -1.4e-45,
      3.4e38,
      -3.4e38,
      Infinity,
      -Infinity,
      NaN,
    ];
    const rng = deriveRng(SEED, 'transcendental');
    const N = 400_000;
    const x = new Float32Array(N + specials.length);
    for (let i = 0; i < N; i++) {
      const scale = [1e-6, 0.1, 1, 4, 30, 120][i % 6];
      x[i] = (2 * rng.nextFloat() - 1) * scale;
    }
    x.set(specials, N);
    const n = x.length;
    const dout = randomArray(rng, n, 2);
    const ks = createKernelSet('wasm', 6 * n + 1024);
    const wx = put(ks, x),
      wd = put(ks, dout),
      wout = ks.alloc(n),
      wdinp = ks.alloc(n);
    const jout = new Float32Array(n),
      jdinp = new Float32Array(n);
    const same = (a: Float32Array, b: Float32Array, what: string): void => {
      const ua = new Uint32Array(a.buffer, a.byteOffset, a.length),
        ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
      for (let i = 0; i < a.length; i++) {
        if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
          expect.fail(
            `${what} at x = ${x[i]}: wasm ${a[i]} (0x${ua[i].toString(16)}) vs js ${b[i]} (0x${ub[i].toString(16)})`,
          );
        }
      }
    };
    for (const [name, fwd, bwd] of [
      ['sigmoid', 'sigmoidForward', 'sigmoidBackward'],
      ['tanh', 'tanhForward', 'tanhBackward'],
    ] as const) {
      ks[fwd](wout, wx, n);
      jsKernels[fwd](jout, x, n);
      same(wout, jout, `${name} forward`);
      ks[bwd](wdinp, wd, wout, n);
      jsKernels[bwd](jdinp, dout, jout, n);
      same(wdinp, jdinp, `${name} backward`);
    }
  });

  it('refuses buffers outside its arena and shapes larger than the views, and never grows', () => {
    const ks = createKernelSet('wasm', 1024);
    const inside = ks.alloc(16);
    expect(() => ks.reluForward(inside, new Float32Array(16), 16)).toThrow(/not a view of the kernel arena/);
    expect(() => ks.reluForward(inside, ks.alloc(8), 16)).toThrow(/holds 8 floats, the shape needs 16/);
    expect(() => ks.alloc(1 << 20)).toThrow(/arena/);
    const wk = new WasmKernels(100);
    expect(wk.memory.buffer.byteLength).toBe(65536); // one page at least
    expect(() => wk.memory.grow(1)).toThrow(); // maximum = initial
  });
});

describe('wasm kernel set: determinism', () => {
  const data = syntheticDatasets.blobs(200, 7);
  const params = initParams(mlpSpec(data.numFeatures, [24, 9], data.numClasses, 'relu', 'cross_entropy'), 3);

  it('gives the same bits twice, and the same shard gradient whatever was computed before', () => {
    const s = mlpSpec(data.numFeatures, [24, 9], data.numClasses, 'relu', 'cross_entropy');
    const shard = Uint32Array.from([5, 17, 3, 99, 42, 8, 150, 1, 77, 63, 12]);
    const fresh = new ShardComputer(s, data, 16, 'wasm').computeShard(params, shard);
    const busy = new ShardComputer(s, data, 16, 'wasm');
    busy.computeShard(params, Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]));
    busy.computeShard(
      params.map((v) => v * 1.5),
      Uint32Array.from([180, 181]),
    );
    const again = busy.computeShard(params, shard);
    const twice = busy.computeShard(params, shard);
    expect(sameBits(fresh.grad, again.grad)).toBe(true);
    expect(sameBits(again.grad, twice.grad)).toBe(true);
    expect(fresh.lossSum).toBe(again.lossSum);
  });

  it('differs from the js set (the reason the set is part of the run), yet agrees closely', () => {
    const s = mlpSpec(data.numFeatures, [24, 9], data.numClasses, 'relu', 'cross_entropy');
    const shard = Uint32Array.from([5, 17, 3, 99, 42, 8, 150, 1, 77, 63, 12]);
    const w = new ShardComputer(s, data, 16, 'wasm').computeShard(params, shard);
    const j = new ShardComputer(s, data, 16, 'js').computeShard(params, shard);
    let maxDiff = 0,
      maxAbs = 0;
    for (let i = 0; i < w.grad.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(w.grad[i] - j.grad[i]));
      maxAbs = Math.max(maxAbs, Math.abs(j.grad[i]));
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-5 * maxAbs);
    expect(Math.abs(w.lossSum - j.lossSum)).toBeLessThanOrEqual(1e-5 * Math.abs(j.lossSum));
  });

  it('a Network with the wasm set stages outside buffers: results equal those of arena buffers', () => {
    const s = mlpSpec(data.numFeatures, [24, 9], data.numClasses, 'relu', 'cross_entropy');
    const net = new Network(s, 8, 'wasm');
    expect(net.kernels).toBe('wasm');
    const x = data.features.slice(0, 8 * data.numFeatures),
      y = data.labels.slice(0, 8);
    const g1 = new Float32Array(params.length),
      g2 = new Float32Array(params.length);
    net.accumulateGradient(params, g1, x, y, 8);
    net.inputBuffer.set(x);
    const staged = net.stageParams(params);
    net.computeGradient(staged, g2, net.inputBuffer, y, 8);
    expect(sameBits(g1, g2)).toBe(true);
  });

  it("ShardComputer.computeNodes (leaves reduced in kernel memory and past its slots) = combineInto's sums", () => {
    const s = mlpSpec(data.numFeatures, [24, 9], data.numClasses, 'relu', 'cross_entropy');
    // 13 shards, all but shard 5 held: ragged nodes within the 4 working slots;
    // 16 shards, all held: the root needs 5 slots at once, so the last leaf spills.
    for (const [kernels, numShards, missing] of [
      ['js', 13, 5],
      ['wasm', 13, 5],
      ['js', 16, -1],
      ['wasm', 16, -1],
    ] as const) {
      const shards = Array.from({ length: numShards }, (_, id) => ({
        id,
        indices: Uint32Array.from({ length: 1 + (id % 4) }, (_, i) => (id * 11 + i * 7) % 200),
      }));
      const held = shards.filter((sh) => sh.id !== missing);
      const computer = new ShardComputer(s, data, 16, kernels);
      computer.computeNodes(params, [shards[0]], numShards); // something before: must not matter
      const got = computer.computeNodes(params, held, numShards);
      const ref = new ShardComputer(s, data, 16, kernels);
      const leaves = new Map<number, PartialGradient>(held.map((sh) => [sh.id, ref.computeShard(params, sh.indices)]));
      const want = coverNodes(
        held.map((sh) => sh.id),
        numShards,
      ).map((node) => reduceNode(node, numShards, (n) => (n.size === 1 ? leaves.get(n.lo) : undefined), combineInto));
      expect(got.map((g) => `${g.node.lo}/${g.node.size}`)).toEqual(
        coverNodes(
          held.map((sh) => sh.id),
          numShards,
        ).map((n) => `${n.lo}/${n.size}`),
      );
      expect(got).toHaveLength(want.length);
      got.forEach((g, i) => {
        expect(sameBits(g.partial.grad, want[i].grad), `${kernels} node ${i}`).toBe(true);
        expect(g.partial.lossSum).toBe(want[i].lossSum);
        expect(g.partial.count).toBe(want[i].count);
      });
    }
  });

  it('addInto is bit-equal to the JS float32 add', () => {
    const ks = createKernelSet('wasm', 1 << 16);
    for (const N of [1, 5, 8, 1003]) {
      const rng = deriveRng(SEED, 'add', N);
      const a = randomArray(rng, N, 1e3),
        b = randomArray(rng, N, 1e-3);
      const wa = put(ks, a),
        wb = put(ks, b);
      ks.addInto(wa, wb, N);
      jsKernels.addInto(a, b, N);
      expect(sameBits(wa, a), `N=${N}`).toBe(true);
    }
  });
});
