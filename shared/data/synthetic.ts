// Small generated datasets for demos and tests: two interleaved spirals, gaussian-like
// blobs, and a noisy linear regression. Each is a function of (numSamples, seed) alone:
// every draw comes from deriveRng(seed, 'synthetic', <name>, <purpose>), and only
// + - * / and Math.sqrt are used, so the bytes are the same on every JS engine.

import { DataError } from '../errors.js';
import { deriveRng, type Rng } from '../rng.js';
import type { Dataset } from './dataset.js';

/** Turns each spiral arm makes from the centre to radius 1. */
const SPIRAL_TURNS = 1.5;
/** Std of the noise added to each spiral coordinate (arms are 1 / (2 · turns) apart radially). */
const SPIRAL_NOISE = 0.03;
/** Blob centres are uniform in [-BLOB_BOX, BLOB_BOX]^d; points have unit std around them. */
const BLOB_BOX = 10;
/** Std of the noise added to the regression target. */
const REGRESSION_NOISE = 0.1;

/** Approximately standard normal: the sum of 12 uniforms minus 6 (mean 0, variance 1, range ±6). */
export function normalish(rng: Rng): number {
  let s = 0;
  for (let k = 0; k < 12; k++) s += rng.nextFloat();
  return s - 6;
}

/**
 * [cos, sin] of the angle 2π · turns, from a fixed-length Taylor series in + - * / only
 * (Math.sin/cos may differ between engines). The angle is first reduced to [-π, π], where
 * 24 terms leave a truncation error below 1e-17.
 */
export function cosSinTurns(turns: number): [number, number] {
  const x = 2 * Math.PI * (turns - Math.round(turns)); // in [-π, π]
  const x2 = x * x;
  let c = 0;
  let s = 0;
  let cosTerm = 1; // (-1)^k x^(2k) / (2k)!
  let sinTerm = x; // (-1)^k x^(2k+1) / (2k+1)!
  for (let k = 0; k < 24; k++) {
    c += cosTerm;
    s += sinTerm;
    cosTerm = (-cosTerm * x2) / ((2 * k + 1) * (2 * k + 2));
    sinTerm = (-sinTerm * x2) / ((2 * k + 2) * (2 * k + 3));
  }
  return [c, s];
}

function checkCount(what: string, name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new DataError(`${name}: ${what} must be a positive integer, got ${value}`);
  }
}

/**
 * Two interleaved spirals in 2-D, classes alternating by sample index (balanced).
 * A point at arm parameter u ∈ [0, 1) sits at radius u and angle 2π·1.5·u (+ π for
 * class 1), plus normal-ish noise of std 0.03 on each coordinate.
 */
export function spirals(numSamples: number, seed: number): Dataset {
  checkCount('number of samples', 'spirals', numSamples);
  const rng = deriveRng(seed, 'synthetic', 'spirals', 'points');
  const features = new Float32Array(numSamples * 2); // (numSamples, 2)
  const labels = new Float32Array(numSamples); // (numSamples, 1)
  for (let i = 0; i < numSamples; i++) {
    const cls = i % 2;
    const u = rng.nextFloat();
    const [c, s] = cosSinTurns(SPIRAL_TURNS * u + cls / 2);
    features[2 * i] = u * c + SPIRAL_NOISE * normalish(rng);
    features[2 * i + 1] = u * s + SPIRAL_NOISE * normalish(rng);
    labels[i] = cls;
  }
  return classification('spirals', numSamples, 2, features, labels, 2);
}

export interface BlobsOptions {
  /** Number of clusters, one class each. Default 3. */
  readonly numClasses?: number;
  /** Dimension of the points. Default 2. */
  readonly numFeatures?: number;
}

/**
 * k clusters with unit std around centres drawn uniformly from [-10, 10]^d (as
 * scikit-learn's make_blobs); classes alternate by sample index (balanced).
 */
export function blobs(numSamples: number, seed: number, options: BlobsOptions = {}): Dataset {
  const { numClasses = 3, numFeatures = 2 } = options;
  checkCount('number of samples', 'blobs', numSamples);
  checkCount('number of classes', 'blobs', numClasses);
  checkCount('number of features', 'blobs', numFeatures);
  const centreRng = deriveRng(seed, 'synthetic', 'blobs', 'centres');
  const centres = new Float64Array(numClasses * numFeatures); // (numClasses, numFeatures)
  for (let j = 0; j < centres.length; j++) centres[j] = BLOB_BOX * (2 * centreRng.nextFloat() - 1);

  const rng = deriveRng(seed, 'synthetic', 'blobs', 'points');
  const features = new Float32Array(numSamples * numFeatures); // (numSamples, numFeatures)
  const labels = new Float32Array(numSamples); // (numSamples, 1)
  for (let i = 0; i < numSamples; i++) {
    const cls = i % numClasses;
    for (let j = 0; j < numFeatures; j++) {
      features[i * numFeatures + j] = centres[cls * numFeatures + j] + normalish(rng);
    }
    labels[i] = cls;
  }
  return classification('blobs', numSamples, numFeatures, features, labels, numClasses);
}

export interface RegressionOptions {
  /** Number of input features. Default 4. */
  readonly numFeatures?: number;
}

/**
 * y = w·x + b + noise, with x and w normal-ish (std 1), b uniform in [-1, 1) and
 * noise of std 0.1. One target (labelWidth 1).
 */
export function regression(numSamples: number, seed: number, options: RegressionOptions = {}): Dataset {
  const { numFeatures = 4 } = options;
  checkCount('number of samples', 'regression', numSamples);
  checkCount('number of features', 'regression', numFeatures);
  const trueRng = deriveRng(seed, 'synthetic', 'regression', 'weights');
  const weights = new Float64Array(numFeatures); // (numFeatures)
  for (let j = 0; j < numFeatures; j++) weights[j] = normalish(trueRng);
  const bias = 2 * trueRng.nextFloat() - 1;

  const rng = deriveRng(seed, 'synthetic', 'regression', 'points');
  const features = new Float32Array(numSamples * numFeatures); // (numSamples, numFeatures)
  const labels = new Float32Array(numSamples); // (numSamples, 1)
  for (let i = 0; i < numSamples; i++) {
    let y = bias;
    for (let j = 0; j < numFeatures; j++) {
      features[i * numFeatures + j] = normalish(rng);
      // The stored f32 value, so the target is exactly linear in what the model sees.
      y += weights[j] * features[i * numFeatures + j];
    }
    labels[i] = y + REGRESSION_NOISE * normalish(rng);
  }
  return {
    name: 'regression',
    kind: 'regression',
    numSamples,
    numFeatures,
    features,
    labelWidth: 1,
    labels,
    numClasses: 0,
    classNames: [],
  };
}

function classification(
  name: string,
  numSamples: number,
  numFeatures: number,
  features: Float32Array,
  labels: Float32Array,
  numClasses: number,
): Dataset {
  return {
    name,
    kind: 'classification',
    numSamples,
    numFeatures,
    features,
    labelWidth: 1,
    labels,
    numClasses,
    classNames: [],
  };
}

export type SyntheticName = 'spirals' | 'blobs' | 'regression';

/** The generators by name, with default options (for `--dataset <name>`). */
export const syntheticDatasets: Record<SyntheticName, (n: number, seed: number) => Dataset> = {
  spirals: (n, seed) => spirals(n, seed),
  blobs: (n, seed) => blobs(n, seed),
  regression: (n, seed) => regression(n, seed),
};
