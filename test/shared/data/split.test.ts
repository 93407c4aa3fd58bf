import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../../shared/data/dataset.js';
import { splitIndices, standardize } from '../../../shared/data/split.js';
import { blobs } from '../../../shared/data/synthetic.js';
import { DataError } from '../../../shared/errors.js';

describe('splitIndices', () => {
  it('puts round(n · f) samples in validation and the rest in training, disjoint and sorted', () => {
    const { train, val } = splitIndices(101, 0.25, 3);
    expect(val.length).toBe(25);
    expect(train.length).toBe(76);
    const all = [...train, ...val].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 101 }, (_, i) => i));
    for (const side of [train, val]) for (let k = 1; k < side.length; k++) expect(side[k]).toBeGreaterThan(side[k - 1]);
  });

  it('depends only on the seed', () => {
    expect(splitIndices(1000, 0.1, 42)).toEqual(splitIndices(1000, 0.1, 42));
    expect(splitIndices(1000, 0.1, 43).val).not.toEqual(splitIndices(1000, 0.1, 42).val);
  });

  it('allows an empty validation set', () => {
    const { train, val } = splitIndices(10, 0, 1);
    expect(val.length).toBe(0);
    expect([...train]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('rejects a fraction outside [0, 1) and a split with no training samples', () => {
    expect(() => splitIndices(10, 1, 1)).toThrow(new DataError('split: validation fraction must be in [0, 1), got 1'));
    expect(() => splitIndices(10, -0.1, 1)).toThrow('got -0.1');
    expect(() => splitIndices(10, NaN, 1)).toThrow('got NaN');
    expect(() => splitIndices(1, 0.6, 1)).toThrow(
      new DataError('split: validation fraction 0.6 of 1 samples leaves no training samples'),
    );
    expect(() => splitIndices(1.5, 0.1, 1)).toThrow(DataError);
  });
});

/** Column means and population stds of the given rows, in double. */
function columnStats(features: Float32Array, d: number, rows: Uint32Array): { mean: number[]; std: number[] } {
  const mean = new Array<number>(d).fill(0);
  const std = new Array<number>(d).fill(0);
  for (const i of rows) for (let j = 0; j < d; j++) mean[j] += features[i * d + j] / rows.length;
  for (const i of rows) for (let j = 0; j < d; j++) std[j] += (features[i * d + j] - mean[j]) ** 2 / rows.length;
  return { mean, std: std.map(Math.sqrt) };
}

describe('standardize', () => {
  const ds = blobs(500, 5, { numClasses: 4, numFeatures: 3 });
  const { train, val } = splitIndices(ds.numSamples, 0.2, 5);

  it('gives training columns mean 0 and std 1 (±1e-5)', () => {
    const out = standardize(ds, train);
    const { mean, std } = columnStats(out.features, 3, train);
    for (let j = 0; j < 3; j++) {
      expect(Math.abs(mean[j])).toBeLessThan(1e-5);
      expect(Math.abs(std[j] - 1)).toBeLessThan(1e-5);
    }
    expect(out.labels).toBe(ds.labels);
    expect({ ...out, features: null }).toEqual({ ...ds, features: null });
  });

  it('is deterministic and leaves the input untouched', () => {
    const before = ds.features.slice();
    expect(standardize(ds, train).features).toEqual(standardize(ds, train).features);
    expect(ds.features).toEqual(before);
  });

  it('takes statistics from training rows only', () => {
    const changed = ds.features.slice();
    for (const i of val) changed[i * 3] += 1000;
    const a = standardize(ds, train).features;
    const b = standardize({ ...ds, features: changed }, train).features;
    for (const i of train) expect(b.subarray(i * 3, i * 3 + 3)).toEqual(a.subarray(i * 3, i * 3 + 3));
  });

  it('divides a constant column by 1', () => {
    const flat: Dataset = {
      ...ds,
      numFeatures: 1,
      numSamples: 3,
      features: new Float32Array([2, 2, 5]),
      labels: new Float32Array(3),
    };
    expect([...standardize(flat, new Uint32Array([0, 1])).features]).toEqual([0, 0, 3]);
  });

  it('rejects an empty or out-of-range training set', () => {
    expect(() => standardize(ds, new Uint32Array(0))).toThrow(
      new DataError('standardize: "blobs" has no training rows to take statistics from'),
    );
    expect(() => standardize(ds, new Uint32Array([500]))).toThrow(
      new DataError('standardize: training index 500 out of range for 500 samples'),
    );
  });
});
