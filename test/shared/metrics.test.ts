// Evaluation metrics against hand computations: a three-class confusion matrix with a
// class never predicted (its precision 0, not NaN), and regression over two targets.

import { describe, expect, it } from 'vitest';
import { classificationMetrics, regressionMetrics } from '../../shared/metrics.js';

describe('metrics', () => {
  it('classification: confusion, accuracy, per-class precision/recall/F1; a class never predicted scores 0', () => {
    // One-hot logits predict: a, a, b, b, a. True: a, b, b, c, a.
    const hot = (k: number): number[] => [0, 1, 2].map((c) => (c === k ? 10 : 0));
    const logits = Float32Array.from([0, 0, 1, 1, 0].flatMap(hot));
    const labels = Float32Array.from([0, 1, 1, 2, 0]);
    const m = classificationMetrics(logits, labels, 5, ['a', 'b', 'c']);
    expect(m.confusion).toEqual([
      [2, 0, 0],
      [1, 1, 0],
      [0, 1, 0],
    ]);
    expect(m.accuracy).toBe(0.6);
    expect(m.classes).toEqual([
      { name: 'a', support: 2, precision: 2 / 3, recall: 1, f1: 0.8 },
      { name: 'b', support: 2, precision: 0.5, recall: 0.5, f1: 0.5 },
      { name: 'c', support: 1, precision: 0, recall: 0, f1: 0 },
    ]);
  });

  it('regression over two targets: MAE and RMSE over all values, R² averaged over targets', () => {
    // Target 0: perfect fit (R² 1). Target 1: predictions all at the mean (R² 0).
    const targets = Float32Array.from([1, 0, 2, 2, 3, 4]);
    const outputs = Float32Array.from([1, 2, 2, 2, 3, 2]);
    const m = regressionMetrics(outputs, targets, 3, 2);
    expect(m).toEqual({ task: 'regression', samples: 3, loss: 8 / 6, mae: 4 / 6, rmse: Math.sqrt(8 / 6), r2: 0.5 });
  });
});
