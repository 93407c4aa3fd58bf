// The optimizer interface the trainer sees: it owns its state and updates the flat
// parameter buffer in place from the flat mean gradient. State is exposed as flat
// buffers so checkpoints can save and restore it exactly.

export interface Optimizer {
  /** params -= update(grads); grads is the mean gradient over the batch. */
  step(params: Float32Array, grads: Float32Array): void;
  /** Named flat state buffers (e.g. momentum), for checkpoints. */
  state(): Record<string, Float32Array>;
  /** Restores what state() returned; throws on a size mismatch. */
  loadState(state: Record<string, Float32Array>): void;
}
