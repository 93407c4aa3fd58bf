// The optimizer interface the trainer sees: it owns its state and updates the flat
// parameter buffer in place from the flat mean gradient. State is exposed as flat
// buffers so checkpoints can save and restore it exactly.

export interface Optimizer {
  /**
   * A zeroed buffer for the parameters (P), where step and stepBatch update them
   * with no copy: for WasmSgd a view of its WebAssembly memory (fixed-size, so the
   * view never detaches). Any other Float32Array of P floats works too, copied in
   * and out around the update.
   */
  readonly params: Float32Array;
  /** params −= update(grads); grads is the mean gradient over the batch. */
  step(params: Float32Array, grads: Float32Array): void;
  /**
   * The trainer's step: the batch mean grads[i] = gradSum[i] / count, each rounded to
   * float32, then step(params, grads). When a mean is not finite it changes nothing
   * (params and state stay as they were) and returns false. count: an integer in [1, 2^24].
   */
  stepBatch(params: Float32Array, gradSum: Float32Array, count: number): boolean;
  /** Named flat state buffers (e.g. momentum), for checkpoints. */
  state(): Record<string, Float32Array>;
  /** Restores what state() returned; throws on a size mismatch. */
  loadState(state: Record<string, Float32Array>): void;
}
