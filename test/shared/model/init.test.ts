// shared/model/init.ts: the initial weights are a function of (spec, seed) alone,
// bit for bit, so two runs with the same config and seed start from the same point,
// whatever the worker count. Weights fall within the He or Xavier bound the layer
// names and fill it, biases are 0, and each layer draws from its own stream.

import { describe, it, expect } from 'vitest';
import { initParams } from '../../../shared/model/init.js';
import { mlpSpec, paramLayout } from '../../../shared/model/spec.js';
import { bits, SEED } from '../../support/determinism.js';

describe('initParams', () => {
  const spec = mlpSpec(20, [30, 16], 10, 'relu', 'cross_entropy'); // he, he, xavier
  const tanhSpec = mlpSpec(20, [30], 10, 'tanh', 'mse'); // xavier, xavier

  it('is a function of (spec, seed): identical bits for the same seed, different for another', () => {
    const a = initParams(spec, 5);
    expect(bits(initParams(spec, 5))).toEqual(bits(a));
    const b = initParams(spec, 6);
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i] && a[i] !== 0) same++;
    expect(same).toBe(0);
  });

  it('draws weights uniformly within ±√(6/fan_in) (he) or ±√(6/(fan_in+fan_out)) (xavier); biases are 0', () => {
    for (const s of [spec, tanhSpec]) {
      const params = initParams(s, SEED);
      const layout = paramLayout(s);
      s.layers.forEach((layer, i) => {
        if (layer.type !== 'dense') return;
        const w = layout.tensors.find((t) => t.name === `${i}.weight`)!;
        const bias = layout.tensors.find((t) => t.name === `${i}.bias`)!;
        const [fanOut, fanIn] = w.shape;
        const bound = layer.init === 'he' ? Math.sqrt(6 / fanIn) : Math.sqrt(6 / (fanIn + fanOut));
        const values = params.subarray(w.offset, w.offset + w.size);
        let max = 0;
        let sum = 0;
        for (const v of values) {
          max = Math.max(max, Math.abs(v));
          sum += v;
        }
        // Rounding to float32 is monotonic, so no stored weight exceeds the rounded bound.
        expect(max, `layer ${i} (${layer.init})`).toBeLessThanOrEqual(Math.fround(bound));
        // Fills the range (so the other init's bound, ≥ 18% off here, would fail) and is centred.
        expect(max, `layer ${i} (${layer.init})`).toBeGreaterThan(0.95 * bound);
        expect(Math.abs(sum / values.length)).toBeLessThan(0.1 * bound);
        for (const v of params.subarray(bias.offset, bias.offset + bias.size)) expect(v).toBe(0);
      });
    }
  });

  it('gives each layer its own stream (two same-shape layers get different weights)', () => {
    const twin = mlpSpec(8, [8], 8, 'tanh', 'mse'); // layers 0 and 2 are both 8×8 xavier
    const params = initParams(twin, 3);
    const layout = paramLayout(twin);
    const w0 = layout.tensors.find((t) => t.name === '0.weight')!;
    const w2 = layout.tensors.find((t) => t.name === '2.weight')!;
    expect(params.subarray(w0.offset, w0.offset + w0.size)).not.toEqual(
      params.subarray(w2.offset, w2.offset + w2.size),
    );
  });
});
