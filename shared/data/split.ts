// Train/validation partitioning and feature standardization. Both are functions of
// (data, seed) only: the split draws one permutation from the run's 'split' stream,
// and the standardization statistics come from training rows alone, so validation
// numbers never leak into what the model sees.

import { DataError } from '../errors.js';
import { deriveRng, permutation } from '../rng.js';
import type { Dataset, Split } from './dataset.js';

/**
 * Splits 0..numSamples-1 into train and validation indices.
 *
 * A permutation from deriveRng(seed, 'split'): its first n - v entries are the training
 * set, its last v = round(n · valFraction) entries the validation set, each side then
 * sorted ascending (the epoch order is drawn separately). valFraction 0 gives an empty
 * validation set.
 */
export function splitIndices(numSamples: number, valFraction: number, seed: number): Split {
  if (!Number.isSafeInteger(numSamples) || numSamples < 0) {
    throw new DataError(`split: number of samples must be a non-negative integer, got ${numSamples}`);
  }
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new DataError(`split: validation fraction must be in [0, 1), got ${valFraction}`);
  }
  const numVal = Math.round(numSamples * valFraction);
  const numTrain = numSamples - numVal;
  if (numTrain === 0 && numSamples > 0) {
    throw new DataError(
      `split: validation fraction ${valFraction} of ${numSamples} samples leaves no training samples`,
    );
  }
  const perm = permutation(numSamples, deriveRng(seed, 'split'));
  // slice() copies, so sorting one side leaves the permutation and the other side intact.
  return {
    train: perm.slice(0, numTrain).sort(),
    val: perm.slice(numTrain).sort(),
  };
}

/** Per-column statistics of standardization: x' = (x - mean) / std, in double, rounded to f32. */
export interface Standardization {
  /** (numFeatures) */
  readonly mean: readonly number[];
  /** (numFeatures) population std, or 1 for a constant column. */
  readonly std: readonly number[];
}

/**
 * Mean and population std per column over the rows in `trainIdx` only. Accumulated in
 * double, in the order of `trainIdx` (two passes: mean, then squared deviations), so the
 * result does not depend on the engine. A constant column (std 0) gets std 1.
 */
export function featureStats(ds: Dataset, trainIdx: Uint32Array): Standardization {
  const n = trainIdx.length;
  const d = ds.numFeatures;
  if (n === 0) throw new DataError(`standardize: "${ds.name}" has no training rows to take statistics from`);
  for (const i of trainIdx) {
    if (i >= ds.numSamples) {
      throw new DataError(`standardize: training index ${i} out of range for ${ds.numSamples} samples`);
    }
  }
  const x = ds.features; // (numSamples, d)
  const mean = new Float64Array(d); // (d)
  for (const i of trainIdx) {
    const row = i * d;
    for (let j = 0; j < d; j++) mean[j] += x[row + j];
  }
  for (let j = 0; j < d; j++) mean[j] /= n;

  const divisor = new Float64Array(d); // (d)
  for (const i of trainIdx) {
    const row = i * d;
    for (let j = 0; j < d; j++) {
      const dev = x[row + j] - mean[j];
      divisor[j] += dev * dev;
    }
  }
  for (let j = 0; j < d; j++) {
    const std = Math.sqrt(divisor[j] / n);
    divisor[j] = std > 0 ? std : 1;
  }
  return { mean: [...mean], std: [...divisor] };
}

/**
 * Standardizes rows (rows, mean.length) of `x` into `out` in place of features:
 * the one formula of training and prediction.
 */
export function applyStandardization(out: Float32Array, x: Float32Array, s: Standardization): void {
  const d = s.mean.length;
  for (let row = 0; row < x.length; row += d)
    for (let j = 0; j < d; j++) out[row + j] = (x[row + j] - s.mean[j]) / s.std[j];
}

/**
 * Returns a copy of `ds` whose features are standardized with featureStats over the rows
 * in `trainIdx`, so validation numbers never leak into what the model sees. Labels are
 * shared with `ds`, not copied.
 */
export function standardize(ds: Dataset, trainIdx: Uint32Array, stats = featureStats(ds, trainIdx)): Dataset {
  const out = new Float32Array(ds.features.length); // (numSamples, d)
  applyStandardization(out, ds.features, stats);
  // Standardized values are not the stored bytes' levels: the result is stored as f32.
  const { bytes: _, ...rest } = ds;
  return { ...rest, features: out };
}
