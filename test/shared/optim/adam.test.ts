// shared/optim/wasm-adam.ts (adam_step in optim.wat) against its JS twin,
// shared/optim/adam.ts: bit-equal parameters, moments and step count after every step,
// for Adam and AdamW, with weight decay on and off, hyperparameters float32 cannot
// represent, a learning rate that changes every step (as a schedule's does), sample
// counts that are not powers of two, lengths that are not multiples of 4 (the scalar
// tail) and values from signed zeros and subnormals to 1e30. Then the divergence check,
// resuming from either twin's state, and the hyperparameter checks.

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../shared/errors.js';
import { Adam, AdamClock, type AdamOptions } from '../../../shared/optim/adam.js';
import { createOptimizer } from '../../../shared/optim/create.js';
import type { Optimizer } from '../../../shared/optim/optimizer.js';
import { Sgd } from '../../../shared/optim/sgd.js';
import { WASM_ADAM_MAX_PARAMS, WasmAdam } from '../../../shared/optim/wasm-adam.js';
import { WasmSgd } from '../../../shared/optim/wasm-sgd.js';
import { deriveRng } from '../../../shared/rng.js';
import { bits, randomParams, randomSum } from './random.js';

const SEED = 0xada;

const CASES: [string, Partial<AdamOptions>][] = [
  ['adam', { lr: 1e-3 }],
  ['adam + L2 weight decay', { lr: 0.01, weightDecay: 0.01 }],
  ['adam, betas 1/3 and 0.9, eps 1e-3', { lr: 1 / 3, beta1: 1 / 3, beta2: 0.9, eps: 1e-3, weightDecay: 5e-4 }],
  ['adam, beta1 0 (RMSprop with bias correction)', { lr: 0.1, beta1: 0, beta2: 0.99 }],
  ['adamw', { lr: 1e-3, decoupled: true }],
  ['adamw + decoupled weight decay', { lr: 0.01, weightDecay: 0.1, decoupled: true }],
  ['adamw, lr 0.7, beta2 0', { lr: 0.7, beta2: 0, weightDecay: 1, decoupled: true }],
];
const LENGTHS = [1, 2, 3, 4, 5, 7, 16, 17, 63, 101, 1030];
/** Sample counts of successive steps: 1 (the sum is the mean), odd, a power of two, the maximum. */
const COUNTS = [64, 1, 3, 1000, 7, 2 ** 24, 96, 5, 100_000, 64, 13, 2, 64, 64, 9, 33];
/** The learning rate of step s, as a fraction of the options' lr: a ramp, then a decay. */
const lrAt = (lr: number, s: number) => (lr * (s < 4 ? s + 1 : 12 - s / 2)) / 6;

function expectSameState(a: Optimizer, b: Optimizer, where: string): void {
  const sa = a.state();
  const sb = b.state();
  expect(Object.keys(sb).sort(), where).toEqual(Object.keys(sa).sort());
  for (const name of Object.keys(sa)) expect(bits(sb[name]), `${where} ${name}`).toEqual(bits(sa[name]));
}

describe('WasmAdam', () => {
  it("is createOptimizer's pick for adam and adamw in this Node (WebAssembly SIMD-128) to WASM_ADAM_MAX_PARAMS", () => {
    expect(createOptimizer(8, { optimizer: 'adam' })).toBeInstanceOf(WasmAdam);
    const adamw = createOptimizer(8, { optimizer: 'adamw', weightDecay: 0.01 });
    expect(adamw).toBeInstanceOf(WasmAdam);
    expect((adamw as WasmAdam).options).toMatchObject({ decoupled: true, weightDecay: 0.01, lr: 0.001 });
    expect((createOptimizer(8, { optimizer: 'adam' }) as WasmAdam).options.decoupled).toBe(false);
    // Adam allocates lazily: asking for a huge one costs nothing.
    expect(createOptimizer(WASM_ADAM_MAX_PARAMS + 1, { optimizer: 'adam' })).toBeInstanceOf(Adam);
    expect(createOptimizer(8, {})).toBeInstanceOf(WasmSgd);
    expect(createOptimizer(8, { optimizer: 'sgd', momentum: 0.5 })).toBeInstanceOf(WasmSgd);
  });

  for (const [name, options] of CASES) {
    it(`${name}: params, m, v and step bit-equal to Adam over ${COUNTS.length} steps, every length`, () => {
      for (const n of LENGTHS) {
        const rng = deriveRng(SEED, name, n);
        const js = new Adam(n, options);
        const wasm = new WasmAdam(n, options);
        // A third twin steps a plain Float32Array: the copy-through path.
        const copied = new WasmAdam(n, options);
        const p = randomParams(rng, n);
        const pCopied = p.slice();
        wasm.params.set(p);
        for (const [step, count] of COUNTS.entries()) {
          const sum = randomSum(rng, n, count);
          const lr = lrAt(js.options.lr, step);
          expect(js.stepBatch(p, sum, count, lr)).toBe(true);
          expect(wasm.stepBatch(wasm.params, sum, count, lr)).toBe(true);
          expect(copied.stepBatch(pCopied, sum, count, lr)).toBe(true);
          const where = `n=${n} step ${step} count ${count}`;
          expect(bits(wasm.params), where).toEqual(bits(p));
          expect(bits(pCopied), where).toEqual(bits(p));
          expectSameState(js, wasm, where);
        }
        expect(AdamClock.stepsOf(wasm.state().step)).toBe(COUNTS.length);
      }
    });
  }

  it('step(params, mean) is Adam.step bit for bit, and stepBatch is step on the float32 mean', () => {
    const n = 103;
    for (const [name, options] of CASES) {
      const rng = deriveRng(SEED, 'step', name);
      const js = new Adam(n, options),
        wasm = new WasmAdam(n, options),
        batched = new WasmAdam(n, options);
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

  for (const decoupled of [false, true]) {
    it(`${decoupled ? 'adamw' : 'adam'}: saving and going on from either twin gives the bits of not stopping`, () => {
      const n = 37;
      const o = { lr: 0.01, beta1: 0.8, beta2: 0.95, weightDecay: 0.05, decoupled };
      const rng = deriveRng(SEED, 'resume', String(decoupled));
      const sums = Array.from({ length: 12 }, () => randomSum(rng, n, 8));
      const init = randomParams(rng, n);
      const straight = new Adam(n, o);
      const p = init.slice();
      for (const sum of sums) straight.stepBatch(p, sum, 8);

      for (const [first, second] of [
        [Adam, WasmAdam],
        [WasmAdam, Adam],
        [WasmAdam, WasmAdam],
      ] as const) {
        const a = new first(n, o);
        expect(a.state()).toEqual({});
        const q = init.slice();
        for (const sum of sums.slice(0, 5)) a.stepBatch(q, sum, 8);
        const saved = a.state();
        expect(Object.keys(saved).sort()).toEqual(['m', 'step', 'v']);
        expect(Array.from(saved.step)).toEqual([5, 0]);
        const b = new second(n, o);
        b.loadState(saved);
        for (const sum of sums.slice(5)) b.stepBatch(q, sum, 8);
        expect(bits(q), `${first.name} → ${second.name}`).toEqual(bits(p));
        expectSameState(straight, b, `${first.name} → ${second.name}`);
      }
    });
  }

  it('loadState({}) starts over; a state of another optimizer or size is refused', () => {
    const n = 6;
    for (const make of [() => new Adam(n), () => new WasmAdam(n)]) {
      const fresh = make();
      const used = make();
      const rng = deriveRng(SEED, 'reset');
      const p = randomParams(rng, n),
        q = p.slice();
      const sum = randomSum(rng, n, 4);
      used.stepBatch(q, randomSum(rng, n, 4), 4);
      used.loadState({});
      expect(used.state()).toEqual({});
      q.set(p);
      used.stepBatch(q, sum, 4);
      fresh.stepBatch(p, sum, 4);
      expect(bits(q)).toEqual(bits(p));

      const good = used.state();
      expect(() => used.loadState({ momentum: new Float32Array(n) })).toThrow(
        /expected tensors m, v and step, got momentum/,
      );
      expect(() => used.loadState({ ...good, m: new Float32Array(n + 1) })).toThrow(/m has 7 values, expected 6/);
      expect(() => used.loadState({ m: good.m, v: good.v })).toThrow(RangeError);
      expect(() => used.loadState({ ...good, step: new Float32Array([1.5, 0]) })).toThrow(/step must be two integers/);
      expect(() => used.loadState({ ...good, step: new Float32Array([0, 0]) })).toThrow(/step must be in/);
    }
    // And SGD refuses Adam's state rather than silently dropping it.
    const adamState = { m: new Float32Array(n), v: new Float32Array(n), step: new Float32Array([1, 0]) };
    expect(() => new Sgd(n, { momentum: 0.9 }).loadState(adamState)).toThrow(/sgd state: expected at most a momentum/);
    expect(() => new WasmSgd(n, { momentum: 0.9 }).loadState(adamState)).toThrow(/sgd state/);
  });

  it('step counts past 2^24 survive the state, and the powers of the betas are the running products', () => {
    const clock = new AdamClock(0.9, 0.999);
    for (let i = 0; i < 1000; i++) clock.advance();
    let b1 = 1,
      b2 = 1;
    for (let i = 0; i < 1000; i++) {
      b1 *= 0.9;
      b2 *= 0.999;
    }
    expect([clock.beta1Power, clock.beta2Power]).toEqual([b1, b2]);
    const restored = new AdamClock(0.9, 0.999);
    restored.reset(AdamClock.stepsOf(clock.toTensor()));
    expect([restored.t, restored.beta1Power, restored.beta2Power]).toEqual([1000, b1, b2]);
    const big = 2 ** 24 * 3 + 12345;
    restored.reset(big);
    expect(AdamClock.stepsOf(restored.toTensor())).toBe(big);
    // The bits of the running products after that many steps: their fixed point.
    for (let i = 0; i < 1_000_000; i++) clock.advance();
    expect([restored.beta1Power, restored.beta2Power]).toEqual([clock.beta1Power, clock.beta2Power]);
  });

  it('a non-finite mean anywhere changes neither params, moments nor the step count, in both twins', () => {
    for (const n of [5, 37, 1030]) {
      const positions = [...new Set([0, 1, 3, 4, 5, 16, 17, n - 2, n - 1].filter((i) => i >= 0 && i < n))];
      for (const bad of [NaN, Infinity, -Infinity]) {
        for (const at of positions) {
          const rng = deriveRng(SEED, 'diverge', n, at);
          const o = { lr: 0.01, weightDecay: 1e-4 };
          const js = new Adam(n, o),
            wasm = new WasmAdam(n, o);
          const p = randomParams(rng, n);
          wasm.params.set(p);
          for (const count of [64, 64]) {
            const sum = randomSum(rng, n, count);
            js.stepBatch(p, sum, count);
            wasm.stepBatch(wasm.params, sum, count);
          }
          const before = bits(wasm.params);
          const stateBefore = wasm.state();
          const poisoned = randomSum(rng, n, 64);
          poisoned[at] = bad;
          const where = `n=${n} ${bad} at ${at}`;
          expect(wasm.stepBatch(wasm.params, poisoned, 64), where).toBe(false);
          expect(js.stepBatch(p, poisoned, 64), where).toBe(false);
          expect(bits(wasm.params), where).toEqual(before);
          expect(bits(p), where).toEqual(before);
          for (const name of ['m', 'v', 'step'])
            expect(bits(wasm.state()[name]), `${where} ${name}`).toEqual(bits(stateBefore[name]));
          expectSameState(js, wasm, where);
          // And the next good step goes on as if the bad one never came.
          const sum = randomSum(rng, n, 64);
          js.stepBatch(p, sum, 64);
          wasm.stepBatch(wasm.params, sum, 64);
          expect(bits(wasm.params), where).toEqual(bits(p));
          expectSameState(js, wasm, where);
        }
      }
    }
  });

  it('params is a view of wasm memory, updated in place and never detached', () => {
    const wasm = new WasmAdam(1000, { lr: 0.1 });
    const view = wasm.params;
    const buffer = view.buffer;
    view.fill(1);
    for (let i = 0; i < 50; i++) wasm.stepBatch(view, new Float32Array(1000).fill(64), 64);
    expect(wasm.params).toBe(view);
    expect(view.buffer).toBe(buffer);
    expect(view.byteLength).toBe(4000);
    // 50 steps of about lr each against a constant gradient.
    expect(view[999]).toBeCloseTo(1 - 50 * 0.1, 3);
  });

  it('refuses bad shapes, counts and learning rates at each step', () => {
    for (const opt of [new WasmAdam(8), new Adam(8)]) {
      expect(() => opt.stepBatch(opt.params, new Float32Array(7), 1)).toThrow(/adam: expected 8 parameters/);
      expect(() => opt.step(new Float32Array(9), new Float32Array(8))).toThrow(RangeError);
      for (const count of [0, -1, 1.5, NaN, 2 ** 24 + 1])
        expect(() => opt.stepBatch(opt.params, new Float32Array(8), count)).toThrow(/sample count/);
      for (const lr of [-0.1, NaN, Infinity])
        expect(() => opt.stepBatch(opt.params, new Float32Array(8), 1, lr)).toThrow(/learning rate must be finite/);
      expect(opt.state()).toEqual({});
    }
  });
});

describe('Adam hyperparameters', () => {
  const bad: [Partial<AdamOptions>, RegExp][] = [
    [{ lr: 0 }, /learning rate must be a positive number, got 0/],
    [{ lr: NaN }, /learning rate must be a positive number, got NaN/],
    [{ beta1: 1 }, /beta1 must be in \[0, 1\), got 1/],
    [{ beta1: -0.1 }, /beta1 must be in \[0, 1\), got -0.1/],
    [{ beta2: 1.5 }, /beta2 must be in \[0, 1\), got 1.5/],
    [{ beta2: NaN }, /beta2 must be in \[0, 1\), got NaN/],
    [{ eps: 0 }, /eps must be a positive number, got 0/],
    [{ eps: Infinity }, /eps must be a positive number, got Infinity/],
    [{ weightDecay: -1e-4 }, /weight decay must be ≥ 0, got -0.0001/],
    [{ lr: 0.1, weightDecay: 10, decoupled: true }, /adamw: lr × weight decay must be < 1 .* got 0.1 × 10/],
  ];
  for (const [options, message] of bad) {
    it(`refuses ${JSON.stringify(options).replace(/null/g, 'NaN')} with the value in a one-line ConfigError`, () => {
      for (const make of [() => new Adam(4, options), () => new WasmAdam(4, options)]) {
        expect(make).toThrow(ConfigError);
        expect(make).toThrow(message);
      }
    });
  }

  it('takes the edges of each range, and the factory refuses what does not apply', () => {
    expect(() => new Adam(4, { beta1: 0, beta2: 0, eps: 1e-30, weightDecay: 0 })).not.toThrow();
    expect(() => new Adam(4, { lr: 0.1, weightDecay: 9.99, decoupled: true })).not.toThrow();
    // L2 weight decay has no such bound: it scales the gradient, which Adam normalizes.
    expect(() => new Adam(4, { lr: 0.1, weightDecay: 10 })).not.toThrow();
    expect(() => createOptimizer(4, { optimizer: 'adam', nesterov: true, momentum: 0.9 })).toThrow(
      /nesterov momentum is SGD's; adam has beta1 instead/,
    );
    expect(() => createOptimizer(4, { optimizer: 'rmsprop' as 'sgd' })).toThrow(
      /optimizer must be one of sgd, adam, adamw, got rmsprop/,
    );
    expect(() => createOptimizer(4, { optimizer: 'adamw', beta2: 1 })).toThrow(ConfigError);
    expect(() => createOptimizer(4, { optimizer: 'sgd', momentum: 1 })).toThrow(/momentum must be in \[0, 1\), got 1/);
  });
});
