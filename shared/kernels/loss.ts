// Loss heads. Each computes, for B samples, the per-sample losses summed (in double,
// in sample order), the gradient of that *sum* with respect to the network output
// (the coordinator divides by the batch size once, after reduction), and for
// classification the number of correct argmax predictions.

import { exp, log } from './transcendental.js';

export interface LossStats {
  /** Σ over samples of the per-sample loss. */
  lossSum: number;
  /** Correct argmax predictions (classification); 0 for regression. */
  correct: number;
}

/**
 * Softmax + cross-entropy on logits, numerically stable (max subtracted).
 * dlogits (B, K) may alias nothing; logits (B, K); labels (B) class indices.
 * dlogits[b, k] = softmax(logits[b])[k] − [k = label].
 */
export function softmaxCrossEntropy(
  dlogits: Float32Array | null,
  logits: Float32Array,
  labels: Float32Array,
  B: number,
  K: number,
): LossStats {
  let lossSum = 0;
  let correct = 0;
  for (let b = 0; b < B; b++) {
    const row = b * K;
    const label = labels[b];
    let max = logits[row];
    let argmax = 0;
    for (let k = 1; k < K; k++) {
      if (logits[row + k] > max) {
        max = logits[row + k];
        argmax = k;
      }
    }
    if (argmax === label) correct++;
    let sum = 0;
    for (let k = 0; k < K; k++) sum += exp(logits[row + k] - max);
    const logSum = log(sum);
    lossSum += logSum - (logits[row + label] - max);
    if (dlogits !== null) {
      for (let k = 0; k < K; k++) {
        const p = exp(logits[row + k] - max) / sum;
        dlogits[row + k] = k === label ? p - 1 : p;
      }
    }
  }
  return { lossSum, correct };
}

/**
 * Mean squared error per sample (mean over the T outputs, as PyTorch's MSELoss),
 * summed over samples. dout (B, T) = 2·(out − target)/T; out (B, T); targets (B, T).
 */
export function meanSquaredError(
  dout: Float32Array | null,
  out: Float32Array,
  targets: Float32Array,
  B: number,
  T: number,
): LossStats {
  let lossSum = 0;
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      const diff = out[i] - targets[i];
      s += diff * diff;
      if (dout !== null) dout[i] = (2 * diff) / T;
    }
    lossSum += s / T;
  }
  return { lossSum, correct: 0 };
}
