// shared/optim/wasm-sgd.ts (sgd_step and all_finite in kernels.wat) against its JS
// twin, shared/optim/sgd.ts: bit-equal parameters and momentum after every step, for
// every rule (plain, momentum's first step, momentum, Nesterov's first step, Nesterov),
// with and without weight decay, hyperparameters that float32 cannot represent (0.1,
// 1/3, 0.9), batch counts that are not powers of two, lengths that are not multiples
// of 4 (the scalar tail) and values from signed zeros and subnormals to 1e30. Then the
// divergence check: a non-finite mean anywhere changes nothing, in either twin.

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../shared/errors.js';
import { Sgd, type SgdOptions } from '../../../shared/optim/sgd.js';
import { createSgd, WASM_SGD_MAX_PARAMS, WasmSgd } from '../../../shared/optim/wasm-sgd.js';
import { deriveRng, type Rng } from '../../../shared/rng.js';

const SEED = 0x5d6;

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.slice().buffer);
}

/** ±(1 + m)·2^e rounded to float32, e uniform in [minExp, maxExp] (below −126: subnormal). */
function randomFloat(rng: Rng, minExp: number, maxExp: number): number {
  const e = minExp + rng.nextInt(maxExp - minExp + 1);
  const sign = rng.nextUint32() & 1 ? -1 : 1;
  return Math.fround(sign * (1 + rng.nextFloat()) * 2 ** e);
}

/** A gradient sum over `count` samples: mostly ordinary, some ±0, subnormal or huge. */
function randomSum(rng: Rng, n: number, count: number): Float32Array {
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

function randomParams(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.nextFloat();
    if (u < 0.05) a[i] = rng.nextUint32() & 1 ? -0 : 0;
    else if (u < 0.08) a[i] = randomFloat(rng, -149, -120);
    else a[i] = randomFloat(rng, -14, 1);
  }
  return a;
}

const CASES: [string, Partial<SgdOptions>][] = [
  ['plain', { lr: 0.1 }],
  ['plain + weight decay', { lr: 0.05, weightDecay: 0.01 }],
  ['plain, lr 1/3 + weight decay', { lr: 1 / 3, weightDecay: 5e-4 }],
  ['momentum', { lr: 0.1, momentum: 0.9 }],
  ['momentum + weight decay', { lr: 0.03, momentum: 0.5, weightDecay: 1e-3 }],
  ['momentum 0.99, lr 0.7 + weight decay', { lr: 0.7, momentum: 0.99, weightDecay: 0.1 }],
  ['nesterov', { lr: 0.1, momentum: 0.9, nesterov: true }],
  ['nesterov + weight decay', { lr: 0.2, momentum: 0.7, nesterov: true, weightDecay: 0.05 }],
  ['nesterov, small lr', { lr: 1e-3, momentum: 0.3, nesterov: true }],
];
const LENGTHS = [1, 2, 3, 4, 5, 7, 16, 17, 63, 101, 1030];
/** Sample counts of successive steps: 1 (the sum is the mean), odd, a power of two, the maximum. */
const COUNTS = [64, 1, 3, 1000, 7, 2 ** 24, 96, 5, 100_000, 64, 13, 2];

describe('WasmSgd', () => {
  it('is what createSgd picks in this Node (WebAssembly SIMD-128), up to WASM_SGD_MAX_PARAMS', () => {
    expect(createSgd(8, { lr: 0.1 })).toBeInstanceOf(WasmSgd);
    // Sgd allocates lazily: asking for a huge one costs nothing.
    expect(createSgd(WASM_SGD_MAX_PARAMS + 1, { lr: 0.1 })).toBeInstanceOf(Sgd);
  });

  for (const [name, options] of CASES) {
    it(`${name}: params and momentum bit-equal to Sgd over ${COUNTS.length} steps, every length`, () => {
      for (const n of LENGTHS) {
        const rng = deriveRng(SEED, name, n);
        const js = new Sgd(n, options);
        const wasm = new WasmSgd(n, options);
        // A third twin steps a plain Float32Array: the copy-through path.
        const copied = new WasmSgd(n, options);
        const p = randomParams(rng, n);
        const pCopied = p.slice();
        wasm.params.set(p);
        for (const [step, count] of COUNTS.entries()) {
          const sum = randomSum(rng, n, count);
          expect(js.stepBatch(p, sum, count)).toBe(true);
          expect(wasm.stepBatch(wasm.params, sum, count)).toBe(true);
          expect(copied.stepBatch(pCopied, sum, count)).toBe(true);
          const where = `n=${n} step ${step} count ${count}`;
          expect(bits(wasm.params), where).toEqual(bits(p));
          expect(bits(pCopied), where).toEqual(bits(p));
          const jsState = js.state();
          const wasmState = wasm.state();
          expect(Object.keys(wasmState), where).toEqual(Object.keys(jsState));
          if (jsState.momentum) expect(bits(wasmState.momentum), where).toEqual(bits(jsState.momentum));
        }
      }
    });
  }

  it('step(params, mean) is Sgd.step bit for bit, and stepBatch is step on the float32 mean', () => {
    const n = 103;
    for (const [name, options] of CASES) {
      const rng = deriveRng(SEED, 'step', name);
      const js = new Sgd(n, options),
        wasm = new WasmSgd(n, options),
        batched = new WasmSgd(n, options);
      const p = randomParams(rng, n),
        q = p.slice();
      batched.params.set(p);
      for (let step = 0; step < 4; step++) {
        const sum = randomSum(rng, n, 10);
        const mean = sum.map((v) => v / 10); // Float32Array.map stores each quotient as float32
        js.step(p, mean);
        wasm.step(q, mean);
        batched.stepBatch(batched.params, sum, 10);
        expect(bits(q), `${name} step ${step}`).toEqual(bits(p));
        expect(bits(batched.params), `${name} step ${step}`).toEqual(bits(p));
      }
    }
  });

  it('continues bit-identically from the state of either twin (checkpoints are interchangeable)', () => {
    const n = 37;
    const o = { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 };
    const rng = deriveRng(SEED, 'state');
    const sums = [0, 1, 2, 3].map(() => randomSum(rng, n, 8));
    const js = new Sgd(n, o);
    const p = randomParams(rng, n);
    expect(js.state()).toEqual({});
    js.stepBatch(p, sums[0], 8);
    js.stepBatch(p, sums[1], 8);

    const wasm = new WasmSgd(n, o);
    expect(wasm.state()).toEqual({});
    wasm.loadState(js.state());
    wasm.params.set(p);
    for (const sum of sums.slice(2)) {
      js.stepBatch(p, sum, 8);
      wasm.stepBatch(wasm.params, sum, 8);
    }
    expect(bits(wasm.params)).toEqual(bits(p));

    const back = new Sgd(n, o);
    back.loadState(wasm.state());
    const q = wasm.params.slice();
    back.stepBatch(q, sums[0], 8);
    js.stepBatch(p, sums[0], 8);
    expect(bits(q)).toEqual(bits(p));

    // An empty state restarts momentum (the next step is a first step), as in Sgd.
    wasm.loadState({});
    expect(wasm.state()).toEqual({});
    expect(() => wasm.loadState({ momentum: new Float32Array(n + 1) })).toThrow(RangeError);
  });

  it('a non-finite mean anywhere (quads, each accumulator, the tail) leaves params and momentum (both twins)', () => {
    for (const n of [5, 37, 1030]) {
      const positions = [
        ...new Set([0, 1, 3, 4, 15, 16, 17, 31, 32, 47, 48, 63, n - 5, n - 2, n - 1].filter((i) => i >= 0 && i < n)),
      ];
      for (const bad of [NaN, Infinity, -Infinity]) {
        for (const at of positions) {
          const rng = deriveRng(SEED, 'diverge', n, at);
          const o = { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 };
          const js = new Sgd(n, o),
            wasm = new WasmSgd(n, o);
          const p = randomParams(rng, n);
          wasm.params.set(p);
          for (const count of [64, 64]) {
            const sum = randomSum(rng, n, count);
            js.stepBatch(p, sum, count);
            wasm.stepBatch(wasm.params, sum, count);
          }
          const before = bits(wasm.params),
            momentumBefore = bits(wasm.state().momentum);
          const poisoned = randomSum(rng, n, 64);
          poisoned[at] = bad;
          const where = `n=${n} ${bad} at ${at}`;
          expect(wasm.stepBatch(wasm.params, poisoned, 64), where).toBe(false);
          expect(js.stepBatch(p, poisoned, 64), where).toBe(false);
          expect(bits(wasm.params), where).toEqual(before);
          expect(bits(wasm.state().momentum), where).toEqual(momentumBefore);
          expect(bits(p), where).toEqual(before);
          // And the next good step goes on as if the bad one never came.
          const sum = randomSum(rng, n, 64);
          js.stepBatch(p, sum, 64);
          wasm.stepBatch(wasm.params, sum, 64);
          expect(bits(wasm.params), where).toEqual(bits(p));
        }
      }
    }
  });

  it('a huge but finite sum is not a divergence, and overflow to ±Inf in the update matches the twin', () => {
    const n = 9;
    const js = new Sgd(n, { lr: 1, momentum: 0.9 }),
      wasm = new WasmSgd(n, { lr: 1, momentum: 0.9 });
    const p = new Float32Array(n).fill(3e38);
    wasm.params.set(p);
    const sum = new Float32Array(n).fill(-3.4e38);
    // One step: 3e38 + 3.4e38 overflows float32. (A second would compute 0·Inf = NaN, whose
    // payload WebAssembly leaves unspecified; the next forward pass diverges there anyway.)
    expect(js.stepBatch(p, sum, 1)).toBe(true);
    expect(wasm.stepBatch(wasm.params, sum, 1)).toBe(true);
    expect(bits(wasm.params)).toEqual(bits(p));
    expect(p[0]).toBe(Infinity);
  });

  it('params is a view of wasm memory, updated in place and never detached', () => {
    const wasm = new WasmSgd(1000, { lr: 0.1, momentum: 0.9 });
    const view = wasm.params;
    const buffer = view.buffer;
    expect(buffer).not.toBeInstanceOf(SharedArrayBuffer);
    view.fill(1);
    for (let i = 0; i < 50; i++) wasm.stepBatch(view, new Float32Array(1000).fill(64), 64);
    expect(wasm.params).toBe(view);
    expect(view.buffer).toBe(buffer);
    expect(view.byteLength).toBe(4000);
    expect(view[999]).not.toBe(1);
  });

  it('refuses bad shapes, counts and hyperparameters as Sgd does', () => {
    const wasm = new WasmSgd(8, { lr: 0.1 });
    const js = new Sgd(8, { lr: 0.1 });
    for (const opt of [wasm, js]) {
      expect(() => opt.stepBatch(opt.params, new Float32Array(7), 1)).toThrow(/expected 8 parameters/);
      expect(() => opt.step(new Float32Array(9), new Float32Array(8))).toThrow(RangeError);
      for (const count of [0, -1, 1.5, NaN, 2 ** 24 + 1])
        expect(() => opt.stepBatch(opt.params, new Float32Array(8), count)).toThrow(/sample count/);
    }
    for (const bad of [{ lr: 0 }, { lr: NaN }, { momentum: 1 }, { weightDecay: -1 }, { nesterov: true, momentum: 0 }]) {
      expect(() => new WasmSgd(4, bad)).toThrow(ConfigError);
    }
  });
});
