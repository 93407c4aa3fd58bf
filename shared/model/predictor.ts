// Outputs of a trained model for rows already preprocessed (shared/data/preprocess.ts):
// the network's forward pass in batches, and for classification the softmax
// probabilities with our own exp, so every engine gives the same digits. Platform-neutral.

import type { KernelSetName } from '../kernels/kernel-set.js';
import { exp } from '../kernels/transcendental.js';
import { Network } from './network.js';
import type { ModelSpec } from './spec.js';

const BATCH = 256;

/** The raw outputs (n, outputSize): logits for cross_entropy models, values for mse. */
export function forwardRows(
  spec: ModelSpec,
  params: Float32Array,
  features: Float32Array,
  n: number,
  kernels: KernelSetName = 'js',
): Float32Array {
  const net = new Network(spec, Math.max(1, Math.min(BATCH, n)), kernels);
  const K = net.outputWidth;
  const d = spec.inputSize;
  const out = new Float32Array(n * K); // (n, K)
  for (let start = 0; start < n; start += BATCH) {
    const b = Math.min(BATCH, n - start);
    out.set(net.forward(params, features.subarray(start * d, (start + b) * d), b), start * K);
  }
  return out;
}

/** Row-wise softmax of logits (n, K) in double, max subtracted: probabilities (n, K). */
export function softmaxRows(logits: Float32Array, n: number, K: number): Float64Array {
  const p = new Float64Array(n * K); // (n, K)
  for (let i = 0; i < n; i++) {
    const row = i * K;
    let max = logits[row];
    for (let k = 1; k < K; k++) if (logits[row + k] > max) max = logits[row + k];
    let sum = 0;
    for (let k = 0; k < K; k++) sum += p[row + k] = exp(logits[row + k] - max);
    for (let k = 0; k < K; k++) p[row + k] /= sum;
  }
  return p;
}

/** Index of the largest value of each row (the first on ties, as the loss counts it correct): (n). */
export function argmaxRows(values: Float32Array, n: number, K: number): Uint32Array {
  const best = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const row = i * K;
    for (let k = 1; k < K; k++) if (values[row + k] > values[row + best[i]]) best[i] = k;
  }
  return best;
}
