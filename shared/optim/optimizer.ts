// The optimizer interface the trainer sees: it owns its state and updates the flat
// parameter buffer in place from the flat mean gradient. State is exposed as flat
// buffers so checkpoints can save and restore it exactly. Also the argument checks
// every optimizer makes at each step.

export interface Optimizer {
  /**
   * A zeroed buffer for the parameters (P), where step and stepBatch update them
   * with no copy: for the wasm twins a view of their WebAssembly memory (fixed-size,
   * so the view never detaches). Any other Float32Array of P floats works too, copied
   * in and out around the update.
   */
  readonly params: Float32Array;
  /**
   * params −= update(grads); grads is the mean gradient over the batch. lr: this step's
   * learning rate (a schedule's), finite and ≥ 0; default: the constructor's.
   */
  step(params: Float32Array, grads: Float32Array, lr?: number): void;
  /**
   * The trainer's step: the batch mean grads[i] = gradSum[i] / count, each rounded to
   * float32, then step(params, grads, lr). When a mean is not finite it changes nothing
   * (params and state stay as they were) and returns false. count: an integer in [1, 2^24].
   */
  stepBatch(params: Float32Array, gradSum: Float32Array, count: number, lr?: number): boolean;
  /** Named flat state buffers (e.g. momentum), for checkpoints; names are lowercase letters. */
  state(): Record<string, Float32Array>;
  /** Restores what state() returned; throws on a size mismatch or a tensor it does not know. */
  loadState(state: Record<string, Float32Array>): void;
}

/** Throws unless params and grads hold `size` floats and count is an integer in [1, 2^24]. */
export function checkStep(what: string, size: number, params: Float32Array, grads: Float32Array, count = 1): void {
  if (params.length !== size || grads.length !== size) {
    throw new RangeError(`${what}: expected ${size} parameters, got ${params.length} params and ${grads.length} grads`);
  }
  if (!(Number.isInteger(count) && count >= 1 && count <= 2 ** 24))
    throw new RangeError(`${what}: the sample count must be an integer in [1, 2^24], got ${count}`);
}

/**
 * out (n) = gradSum / count, elementwise in float32 (the bits every optimizer's JS twin
 * steps with); false when a value is NaN or ±Infinity (out is then not to be used).
 */
export function batchMean(out: Float32Array, gradSum: Float32Array, count: number): boolean {
  // v * 0 is ±0 for finite v and NaN otherwise: one test after the loop, no branch in it.
  let poison = 0;
  for (let i = 0; i < out.length; i++) {
    const v = gradSum[i] / count;
    out[i] = v;
    poison += v * 0;
  }
  return poison === 0;
}

/** Throws unless a step's learning rate is finite and ≥ 0 (a schedule may end at 0). */
export function checkStepLr(what: string, lr: number): void {
  if (!(lr >= 0 && lr < Infinity))
    throw new RangeError(`${what}: the step's learning rate must be finite and ≥ 0, got ${lr}`);
}
