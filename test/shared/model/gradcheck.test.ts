// shared/model/network.ts: Network.accumulateGradient checked parameter by parameter
// against central finite differences. The differences are taken on a float64 reference
// forward pass written here from the textbook definitions (Math.exp/log/tanh are fine
// in a test), so the numeric gradient is accurate to ~1e-9 and the tolerance measures
// only the network's float32 arithmetic. The reference itself is tied to the network
// by comparing its loss with Network.evaluate, and one check differentiates
// Network.evaluate directly in float32 with a coarse step.

import { describe, it, expect } from 'vitest';
import type { KernelSetName } from '../../../shared/kernels/kernel-set.js';
import { Network } from '../../../shared/model/network.js';
import { mlpSpec, validateSpec, type Activation, type ModelSpec } from '../../../shared/model/spec.js';
import { initParams } from '../../../shared/model/init.js';
import { deriveRng } from '../../../shared/rng.js';

const BATCH = 6;
/** Central-difference step on the float64 reference. */
const H = 1e-5;
/** |analytic − numeric| ≤ ATOL + RTOL·|numeric| for every parameter. */
const ATOL = 2e-6;
const RTOL = 1e-4;
/** Relu preactivations closer than this to 0 would make the check straddle a kink. */
const KINK_MARGIN = 1e-3;

interface Problem {
  readonly spec: ModelSpec;
  /** (paramCount) */ readonly params: Float32Array;
  /** (BATCH, inputSize) */ readonly x: Float32Array;
  /** (BATCH, labelWidth) */ readonly labels: Float32Array;
}

/** Loss sum of the batch in float64, and the smallest |preactivation| entering a relu. */
function referenceLoss(
  spec: ModelSpec,
  p: Float64Array,
  x: Float32Array,
  labels: Float32Array,
  B: number,
): { loss: number; reluMargin: number; correct: number } {
  let h: number[][] = [];
  for (let b = 0; b < B; b++) h.push(Array.from(x.subarray(b * spec.inputSize, (b + 1) * spec.inputSize)));
  let offset = 0; // weights [units, in] then bias [units], layer by layer
  let reluMargin = Infinity;
  for (const layer of spec.layers) {
    switch (layer.type) {
      case 'dense': {
        const inW = h[0].length;
        const w = offset;
        const bias = offset + layer.units * inW;
        offset = bias + layer.units;
        h = h.map((row) => {
          const out: number[] = [];
          for (let o = 0; o < layer.units; o++) {
            let s = p[bias + o];
            for (let c = 0; c < inW; c++) s += p[w + o * inW + c] * row[c];
            out.push(s);
          }
          return out;
        });
        break;
      }
      case 'relu':
        for (const row of h) for (const z of row) reluMargin = Math.min(reluMargin, Math.abs(z));
        h = h.map((row) => row.map((z) => Math.max(z, 0)));
        break;
      case 'sigmoid':
        h = h.map((row) => row.map((z) => 1 / (1 + Math.exp(-z))));
        break;
      case 'tanh':
        h = h.map((row) => row.map((z) => Math.tanh(z)));
        break;
    }
  }
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < B; b++) {
    const row = h[b];
    if (spec.loss === 'cross_entropy') {
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      loss += lse - row[labels[b]];
      if (row.indexOf(max) === labels[b]) correct++;
    } else {
      const T = row.length;
      loss += row.reduce((s, v, t) => s + (v - labels[b * T + t]) ** 2, 0) / T;
    }
  }
  return { loss, reluMargin, correct };
}

/**
 * A model with its initial weights, random nonzero biases (so every bias gradient is
 * exercised), inputs and labels; the first seed whose relu preactivations all keep
 * KINK_MARGIN away from 0 is taken, so the check never straddles a kink.
 */
function makeProblem(spec: ModelSpec, name: string): Problem {
  const labelWidth = spec.loss === 'cross_entropy' ? 1 : new Network(spec, 1).outputWidth;
  for (let attempt = 0; attempt < 50; attempt++) {
    const rng = deriveRng(0x9c4d, name, attempt);
    const params = initParams(spec, 1000 + attempt);
    // initParams leaves biases at 0; give them values so their gradients are not trivial.
    const layout = new Network(spec, 1).layout;
    for (const t of layout.tensors) {
      if (t.name.endsWith('.bias'))
        for (let k = 0; k < t.size; k++) params[t.offset + k] = (2 * rng.nextFloat() - 1) * 0.3;
    }
    const x = Float32Array.from({ length: BATCH * spec.inputSize }, () => (2 * rng.nextFloat() - 1) * 1.5);
    const outW = new Network(spec, 1).outputWidth;
    const labels =
      spec.loss === 'cross_entropy'
        ? Float32Array.from({ length: BATCH }, () => rng.nextInt(outW))
        : Float32Array.from({ length: BATCH * labelWidth }, () => (2 * rng.nextFloat() - 1) * 2);
    const { reluMargin } = referenceLoss(spec, Float64Array.from(params), x, labels, BATCH);
    if (reluMargin >= KINK_MARGIN) return { spec, params, x, labels };
  }
  throw new Error(`no seed keeps ${name}'s relu preactivations ${KINK_MARGIN} away from 0`);
}

function numericGradient({ spec, params, x, labels }: Problem): Float64Array {
  const p = Float64Array.from(params);
  const g = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const v = p[i];
    p[i] = v + H;
    const plus = referenceLoss(spec, p, x, labels, BATCH).loss;
    p[i] = v - H;
    const minus = referenceLoss(spec, p, x, labels, BATCH).loss;
    p[i] = v;
    g[i] = (plus - minus) / (2 * H);
  }
  return g;
}

function checkGradient(problem: Problem, kernels: KernelSetName): void {
  const { spec, params, x, labels } = problem;
  const net = new Network(spec, BATCH, kernels);
  const grads = new Float32Array(net.layout.totalSize);
  const stats = net.accumulateGradient(params, grads, x, labels, BATCH);
  const numeric = numericGradient(problem);
  const names = net.layout.tensors.flatMap((t) => Array.from({ length: t.size }, (_, k) => `${t.name}[${k}]`));
  expect(names.length).toBe(grads.length);
  for (let i = 0; i < grads.length; i++) {
    const tol = ATOL + RTOL * Math.abs(numeric[i]);
    expect(
      Math.abs(grads[i] - numeric[i]),
      `${names[i]}: analytic ${grads[i]}, numeric ${numeric[i]}`,
    ).toBeLessThanOrEqual(tol);
  }
  // Every tensor gets a gradient that is not identically zero (a skipped layer would be).
  for (const t of net.layout.tensors) {
    let m = 0;
    for (let k = 0; k < t.size; k++) m = Math.max(m, Math.abs(grads[t.offset + k]));
    expect(m, `${t.name} gradient`).toBeGreaterThan(1e-4);
  }
  // The loss statistics belong to the same function the reference differentiates.
  const ref = referenceLoss(spec, Float64Array.from(params), x, labels, BATCH);
  expect(Math.abs(stats.lossSum - ref.loss)).toBeLessThanOrEqual(1e-5 * Math.max(1, ref.loss));
  const evaluated = net.evaluate(params, x, labels, BATCH);
  expect(evaluated).toEqual(stats);
  if (spec.loss === 'cross_entropy') expect(stats.correct).toBe(ref.correct);
  else expect(stats.correct).toBe(0);
}

const ACTIVATIONS: Activation[] = ['relu', 'sigmoid', 'tanh'];

// Both kernel sets: wasm accumulates in float32 lanes, js in double; the same tolerance holds.
for (const kernels of ['js', 'wasm'] as const) {
  describe(`accumulateGradient (${kernels}) vs central differences (|Δ| <= ${ATOL} + ${RTOL}·|numeric|)`, () => {
    for (const activation of ACTIVATIONS) {
      it(`dense+${activation}, hidden 4,3, cross_entropy over 3 classes, every parameter`, () => {
        checkGradient(makeProblem(mlpSpec(5, [4, 3], 3, activation, 'cross_entropy'), `ce-${activation}`), kernels);
      });
      it(`dense+${activation}, hidden 4,3, mse with labelWidth 2, every parameter`, () => {
        checkGradient(makeProblem(mlpSpec(5, [4, 3], 2, activation, 'mse'), `mse-${activation}`), kernels);
      });
    }

    it('three hidden layers mixing relu, tanh and sigmoid, cross_entropy', () => {
      const spec = validateSpec({
        inputSize: 5,
        loss: 'cross_entropy',
        layers: [
          { type: 'dense', units: 4, init: 'he' },
          { type: 'relu' },
          { type: 'dense', units: 4, init: 'xavier' },
          { type: 'tanh' },
          { type: 'dense', units: 3, init: 'xavier' },
          { type: 'sigmoid' },
          { type: 'dense', units: 3, init: 'xavier' },
        ],
      });
      checkGradient(makeProblem(spec, 'mixed'), kernels);
    });

    it('a single dense layer (no hidden layers), cross_entropy and mse', () => {
      checkGradient(makeProblem(mlpSpec(5, [], 3, 'relu', 'cross_entropy'), 'linear-ce'), kernels);
      checkGradient(makeProblem(mlpSpec(5, [], 2, 'relu', 'mse'), 'linear-mse'), kernels);
    });
  });
}

describe('Network.accumulateGradient semantics', () => {
  it('adds into grads (+=): prefilled G gives G + gradient within 1e-6 relative to max |value|', () => {
    const problem = makeProblem(mlpSpec(5, [4, 3], 3, 'tanh', 'cross_entropy'), 'accumulate');
    const net = new Network(problem.spec, BATCH);
    const fresh = new Float32Array(net.layout.totalSize);
    net.accumulateGradient(problem.params, fresh, problem.x, problem.labels, BATCH);
    const rng = deriveRng(0x9c4d, 'prefill');
    const prefill = Float32Array.from(fresh, () => 2 * rng.nextFloat() - 1);
    const grads = prefill.slice();
    net.accumulateGradient(problem.params, grads, problem.x, problem.labels, BATCH);
    let scale = 0;
    for (let i = 0; i < grads.length; i++) scale = Math.max(scale, Math.abs(prefill[i] + fresh[i]));
    for (let i = 0; i < grads.length; i++) {
      expect(Math.abs(grads[i] - (prefill[i] + fresh[i]))).toBeLessThanOrEqual(1e-6 * scale);
    }
  });

  it("the gradient of a batch is the sum of its samples' gradients (within 1e-6 relative to max |value|)", () => {
    const problem = makeProblem(mlpSpec(5, [4, 3], 2, 'sigmoid', 'mse'), 'additive');
    const net = new Network(problem.spec, BATCH);
    const whole = new Float32Array(net.layout.totalSize);
    net.accumulateGradient(problem.params, whole, problem.x, problem.labels, BATCH);
    const summed = new Float32Array(net.layout.totalSize);
    const F = problem.spec.inputSize;
    for (let b = 0; b < BATCH; b++) {
      net.accumulateGradient(
        problem.params,
        summed,
        problem.x.subarray(b * F, b * F + F),
        problem.labels.subarray(b * 2, b * 2 + 2),
        1,
      );
    }
    let scale = 0;
    for (const v of whole) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < whole.length; i++) expect(Math.abs(whole[i] - summed[i])).toBeLessThanOrEqual(1e-6 * scale);
  });
});

describe('Network.evaluate differentiated directly in float32', () => {
  // No float64 reference in the loop: perturb the float32 parameters, run the network's
  // own forward pass. With h = 1e-2 the float32 rounding noise (~1e-7·loss/h) and the
  // O(h²) truncation both stay near 1e-4, so the tolerance is coarse but still far
  // below the size of any real gradient error.
  it('matches accumulateGradient within 5e-4 + 2e-3·|numeric| (tanh, hidden 4,3, cross_entropy, h = 1e-2)', () => {
    const problem = makeProblem(mlpSpec(5, [4, 3], 3, 'tanh', 'cross_entropy'), 'direct');
    const net = new Network(problem.spec, BATCH);
    const grads = new Float32Array(net.layout.totalSize);
    net.accumulateGradient(problem.params, grads, problem.x, problem.labels, BATCH);
    const h = 1e-2;
    const p = problem.params.slice();
    for (let i = 0; i < p.length; i++) {
      const v = p[i];
      p[i] = v + h;
      const plusH = p[i] - v; // the step actually taken after float32 rounding
      const plus = net.evaluate(p, problem.x, problem.labels, BATCH).lossSum;
      p[i] = v - h;
      const minusH = v - p[i];
      const minus = net.evaluate(p, problem.x, problem.labels, BATCH).lossSum;
      p[i] = v;
      const numeric = (plus - minus) / (plusH + minusH);
      expect(Math.abs(grads[i] - numeric), `param ${i}`).toBeLessThanOrEqual(5e-4 + 2e-3 * Math.abs(numeric));
    }
  });
});
