// A partial gradient: the sum of per-sample gradients over some samples, with the
// matching loss sum and counts. Shards, tree nodes and whole steps are all partial
// gradients; the batch mean is taken only once, by the coordinator, after reduction.

export interface PartialGradient {
  /** (paramCount): Σ over samples of ∂loss/∂params. */
  readonly grad: Float32Array;
  /** Σ over samples of the per-sample loss. */
  readonly lossSum: number;
  readonly count: number;
  /** Correct argmax predictions, classification only. */
  readonly correct: number;
}

/** left + right, elementwise in float32, into left's buffer (the caller owns both). */
export function combineInto(left: PartialGradient, right: PartialGradient): PartialGradient {
  const a = left.grad;
  const b = right.grad;
  for (let i = 0; i < a.length; i++) a[i] += b[i];
  return {
    grad: a,
    lossSum: left.lossSum + right.lossSum,
    count: left.count + right.count,
    correct: left.correct + right.correct,
  };
}
