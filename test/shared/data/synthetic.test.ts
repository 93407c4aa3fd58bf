import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../../shared/data/dataset.js';
import {
  blobs,
  cosSinTurns,
  normalish,
  regression,
  spirals,
  syntheticDatasets,
} from '../../../shared/data/synthetic.js';
import { DataError } from '../../../shared/errors.js';
import { Rng } from '../../../shared/rng.js';

function expectShape(ds: Dataset, n: number, d: number): void {
  expect(ds.numSamples).toBe(n);
  expect(ds.numFeatures).toBe(d);
  expect(ds.features.length).toBe(n * d);
  expect(ds.labelWidth).toBe(1);
  expect(ds.labels.length).toBe(n);
  expect(ds.features.every(Number.isFinite)).toBe(true);
  expect(ds.labels.every(Number.isFinite)).toBe(true);
}

function classCounts(ds: Dataset): number[] {
  const counts = new Array<number>(ds.numClasses).fill(0);
  for (const label of ds.labels) counts[label]++;
  return counts;
}

describe('cosSinTurns', () => {
  it('matches Math.cos/sin within 1e-14 over several turns', () => {
    for (let t = -3; t <= 3; t += 0.0137) {
      const [c, s] = cosSinTurns(t);
      expect(Math.abs(c - Math.cos(2 * Math.PI * t))).toBeLessThan(1e-14);
      expect(Math.abs(s - Math.sin(2 * Math.PI * t))).toBeLessThan(1e-14);
    }
  });
});

describe('normalish', () => {
  it('has mean ≈ 0 and variance ≈ 1', () => {
    const rng = new Rng(1);
    let sum = 0;
    let sumSq = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const x = normalish(rng);
      sum += x;
      sumSq += x * x;
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.03);
    expect(Math.abs(sumSq / n - 1)).toBeLessThan(0.03);
  });
});

describe('synthetic datasets', () => {
  it.each(['spirals', 'blobs', 'regression'] as const)('%s is a function of (n, seed)', (name) => {
    const make = syntheticDatasets[name];
    const a = make(300, 11);
    expect(a.name).toBe(name);
    expect(make(300, 11)).toEqual(a);
    expect(make(300, 12).features).not.toEqual(a.features);
  });

  it('spirals: 2 balanced classes in 2-D, points within radius ~1', () => {
    const ds = spirals(401, 1);
    expectShape(ds, 401, 2);
    expect(ds.kind).toBe('classification');
    expect(ds.numClasses).toBe(2);
    expect(classCounts(ds)).toEqual([201, 200]);
    for (let i = 0; i < ds.numSamples; i++) {
      expect(Math.hypot(ds.features[2 * i], ds.features[2 * i + 1])).toBeLessThan(1.3);
    }
  });

  it('spirals: class 1 is class 0 turned by half a turn', () => {
    // Negating every class 1 point should land it on the class 0 arm (up to noise and sampling gaps).
    const ds = spirals(2000, 9);
    const arm0: [number, number][] = [];
    for (let i = 0; i < ds.numSamples; i += 2) arm0.push([ds.features[2 * i], ds.features[2 * i + 1]]);
    let worst = 0;
    for (let i = 1; i < ds.numSamples; i += 2) {
      const x = -ds.features[2 * i];
      const y = -ds.features[2 * i + 1];
      worst = Math.max(worst, Math.min(...arm0.map(([ax, ay]) => Math.hypot(x - ax, y - ay))));
    }
    expect(worst).toBeLessThan(0.2);
  });

  it('blobs: defaults to 3 classes in 2-D; options change both', () => {
    const ds = blobs(300, 2);
    expectShape(ds, 300, 2);
    expect(ds.numClasses).toBe(3);
    expect(classCounts(ds)).toEqual([100, 100, 100]);
    const big = blobs(100, 2, { numClasses: 5, numFeatures: 7 });
    expectShape(big, 100, 7);
    expect(big.numClasses).toBe(5);
    expect(classCounts(big)).toEqual([20, 20, 20, 20, 20]);
  });

  it('blobs: points of one class lie within ~6 of their class mean', () => {
    const ds = blobs(3000, 4);
    for (let cls = 0; cls < 3; cls++) {
      const rows = [...ds.labels.keys()].filter((i) => ds.labels[i] === cls);
      const mean = [0, 1].map((j) => rows.reduce((s, i) => s + ds.features[2 * i + j], 0) / rows.length);
      for (const i of rows)
        for (const j of [0, 1]) expect(Math.abs(ds.features[2 * i + j] - mean[j])).toBeLessThan(6.2);
    }
  });

  it('regression: 4 features, one target, kind regression', () => {
    const ds = regression(250, 3);
    expectShape(ds, 250, 4);
    expect(ds.kind).toBe('regression');
    expect(ds.numClasses).toBe(0);
    expect(ds.classNames).toEqual([]);
    expectShape(regression(10, 3, { numFeatures: 9 }), 10, 9);
  });

  it('regression: a least-squares linear fit leaves residuals of std ≈ 0.1', () => {
    const ds = regression(2000, 8);
    const d = ds.numFeatures + 1; // features plus a constant column for the bias
    // Normal equations A w = b with A = XᵀX, b = Xᵀy, solved by Gaussian elimination.
    const a = Array.from({ length: d }, () => new Array<number>(d + 1).fill(0));
    const row = (i: number): number[] => [...ds.features.subarray(i * 4, i * 4 + 4), 1];
    for (let i = 0; i < ds.numSamples; i++) {
      const x = row(i);
      for (let p = 0; p < d; p++) {
        for (let q = 0; q < d; q++) a[p][q] += x[p] * x[q];
        a[p][d] += x[p] * ds.labels[i];
      }
    }
    for (let p = 0; p < d; p++) {
      for (let r = p + 1; r < d; r++) {
        const f = a[r][p] / a[p][p];
        for (let q = p; q <= d; q++) a[r][q] -= f * a[p][q];
      }
    }
    const w = new Array<number>(d).fill(0);
    for (let p = d - 1; p >= 0; p--) {
      let s = a[p][d];
      for (let q = p + 1; q < d; q++) s -= a[p][q] * w[q];
      w[p] = s / a[p][p];
    }
    let sumSq = 0;
    for (let i = 0; i < ds.numSamples; i++) {
      const x = row(i);
      const r = ds.labels[i] - x.reduce((s, v, k) => s + v * w[k], 0);
      sumSq += r * r;
    }
    expect(Math.sqrt(sumSq / ds.numSamples)).toBeCloseTo(0.1, 2);
  });

  it('rejects non-positive or fractional sizes', () => {
    expect(() => spirals(0, 1)).toThrow(new DataError('spirals: number of samples must be a positive integer, got 0'));
    expect(() => blobs(10, 1, { numClasses: 2.5 })).toThrow(
      new DataError('blobs: number of classes must be a positive integer, got 2.5'),
    );
    expect(() => regression(10, 1, { numFeatures: -1 })).toThrow(DataError);
  });
});
