import { beforeAll, describe, expect, it } from 'vitest';
import type { Dataset } from '../../../shared/data/dataset.js';
import { loadMnist, mnistSplit } from '../../../coordinator/data/mnist.js';

describe('loadMnist', () => {
  let ds: Dataset;
  beforeAll(() => {
    ds = loadMnist();
  });

  it('has 10,000 samples of 784 pixels and one label each', () => {
    expect(ds.name).toBe('mnist');
    expect(ds.kind).toBe('classification');
    expect(ds.numSamples).toBe(10_000);
    expect(ds.numFeatures).toBe(784);
    expect(ds.features.length).toBe(10_000 * 784);
    expect(ds.labelWidth).toBe(1);
    expect(ds.labels.length).toBe(10_000);
    expect(ds.numClasses).toBe(10);
    expect(ds.classNames).toEqual([]);
  });

  it('orders samples by digit, with roughly 1,000 of each', () => {
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < ds.numSamples; i++) {
      const label = ds.labels[i];
      expect(Number.isInteger(label)).toBe(true);
      if (i > 0) expect(label).toBeGreaterThanOrEqual(ds.labels[i - 1]);
      counts[label]++;
    }
    for (const c of counts) {
      expect(c).toBeGreaterThan(800);
      expect(c).toBeLessThan(1200);
    }
  });

  it('has pixel values in [0, 1], not all zero', () => {
    let min = Infinity;
    let max = -Infinity;
    for (const v of ds.features) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
  });
});

describe('mnistSplit', () => {
  it('is 8,000 train and 2,000 validation indices, disjoint, covering 0..9999, each sorted', () => {
    const { train, val } = mnistSplit(7);
    expect(train.length).toBe(8_000);
    expect(val.length).toBe(2_000);
    const seen = new Uint8Array(10_000);
    for (const side of [train, val]) {
      for (let k = 0; k < side.length; k++) {
        if (k > 0) expect(side[k]).toBeGreaterThan(side[k - 1]);
        seen[side[k]]++;
      }
    }
    expect(seen.every((c) => c === 1)).toBe(true);
  });

  it('is the same for the same seed and different for another', () => {
    expect(mnistSplit(7)).toEqual(mnistSplit(7));
    expect(mnistSplit(8).val).not.toEqual(mnistSplit(7).val);
  });
});
