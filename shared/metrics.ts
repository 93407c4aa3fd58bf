// Evaluation metrics from a model's outputs and the true labels: for classification
// the mean cross-entropy, accuracy, a confusion matrix and per-class precision, recall
// and F1; for regression the MSE loss, MAE, RMSE and R². Sums run in double in sample
// order. A ratio with a zero denominator (a class never predicted or never present) is
// 0, as scikit-learn reports it with zero_division=0. Platform-neutral.

import { softmaxCrossEntropy } from './kernels/loss.js';

export interface ClassMetrics {
  readonly name: string;
  /** Samples whose true class this is. */
  readonly support: number;
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
}

export interface ClassificationMetrics {
  readonly task: 'classification';
  readonly samples: number;
  /** Mean cross-entropy. */
  readonly loss: number;
  readonly accuracy: number;
  /** (K, K): confusion[t][p] counts samples of true class t predicted as p. */
  readonly confusion: readonly (readonly number[])[];
  readonly classes: readonly ClassMetrics[];
}

export interface RegressionMetrics {
  readonly task: 'regression';
  readonly samples: number;
  /** Mean squared error (the mse loss). */
  readonly loss: number;
  readonly mae: number;
  readonly rmse: number;
  /** 1 − SS_res/SS_tot; 0 when every target is equal (SS_tot = 0). */
  readonly r2: number;
}

export type Metrics = ClassificationMetrics | RegressionMetrics;

function ratio(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

/** logits (n, K), labels (n) class indices, names (K). */
export function classificationMetrics(
  logits: Float32Array,
  labels: Float32Array,
  n: number,
  names: readonly string[],
): ClassificationMetrics {
  const K = names.length;
  const { lossSum } = softmaxCrossEntropy(null, logits, labels, n, K);
  const confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = i * K;
    let best = 0;
    for (let k = 1; k < K; k++) if (logits[row + k] > logits[row + best]) best = k;
    const truth = labels[i];
    confusion[truth][best]++;
    if (best === truth) correct++;
  }
  const classes = names.map((name, c) => {
    const tp = confusion[c][c];
    const support = confusion[c].reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let t = 0; t < K; t++) predicted += confusion[t][c];
    const precision = ratio(tp, predicted);
    const recall = ratio(tp, support);
    return { name, support, precision, recall, f1: ratio(2 * precision * recall, precision + recall) };
  });
  return { task: 'classification', samples: n, loss: lossSum / n, accuracy: correct / n, confusion, classes };
}

/**
 * outputs and targets (n, T). MAE and RMSE are over all n·T values; R² is the mean over
 * the T targets of each one's R² (scikit-learn's uniform_average).
 */
export function regressionMetrics(outputs: Float32Array, targets: Float32Array, n: number, T = 1): RegressionMetrics {
  let abs = 0;
  let sq = 0;
  let r2Sum = 0;
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += targets[i * T + t];
    mean /= n;
    let res = 0;
    let tot = 0;
    for (let i = 0; i < n; i++) {
      const diff = outputs[i * T + t] - targets[i * T + t];
      abs += Math.abs(diff);
      res += diff * diff;
      const dev = targets[i * T + t] - mean;
      tot += dev * dev;
    }
    sq += res;
    r2Sum += tot === 0 ? 0 : 1 - res / tot;
  }
  const mse = sq / (n * T);
  return { task: 'regression', samples: n, loss: mse, mae: abs / (n * T), rmse: Math.sqrt(mse), r2: r2Sum / T };
}
