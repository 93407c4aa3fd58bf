// SGD on WebAssembly SIMD: the update of sgd.ts bit for bit (sgd_step in
// shared/kernels/wasm/kernels.wat computes in f64x2 lanes, operation for operation
// as the JS computes in doubles), the batch mean folded into it, and the divergence
// check as a pass before it; about four times faster than the JS (npm run
// bench:kernels), the f64 arithmetic that the bits require being the floor.
//
// The instance owns a fixed-size wasm memory holding the parameters (handed out as
// `params`, a view that never detaches), the momentum buffer, the gradient sum of the
// step (copied in: the executor's buffer lives elsewhere) and room for a caller's
// own parameter buffer (copied through). Not a kernel set: the kernels' arena belongs
// to a Network; this one to the optimizer, whatever kernel set the run computes with.

import { WasmKernels, wasmKernelsAvailable, type SgdRule } from '../kernels/wasm/kernels.js';
import { checkStep, checkStepLr, type Optimizer } from './optimizer.js';
import { checkSgdState, Sgd, sgdOptions, type SgdOptions } from './sgd.js';

/** Slack of the arena: each of its four blocks is rounded up to 64 bytes. */
const ARENA_SLACK_FLOATS = 4 * 16;

export class WasmSgd implements Optimizer {
  readonly options: SgdOptions;
  readonly params: Float32Array;
  readonly #size: number;
  readonly #k: WasmKernels;
  /** The momentum buffer (size); meaningful once #hasMomentum. */
  readonly #momentum: Float32Array;
  /** The step's gradient sum, or the mean for step() (size). */
  readonly #sum: Float32Array;
  /** Where step and stepBatch work on a params array that is not `params` (size). */
  readonly #scratch: Float32Array;
  /** Whether #momentum holds a buffer: false until the first momentum step (as Sgd's null). */
  #hasMomentum = false;

  constructor(size: number, options: Partial<SgdOptions> = {}) {
    this.options = sgdOptions(options);
    this.#size = size;
    this.#k = new WasmKernels(4 * size + ARENA_SLACK_FLOATS);
    this.params = this.#k.alloc(size);
    this.#momentum = this.#k.alloc(size);
    this.#sum = this.#k.alloc(size);
    this.#scratch = this.#k.alloc(size);
  }

  /** step(params, grads) is the step on grads as a sum over one sample: x / 1 = x exactly. */
  step(params: Float32Array, grads: Float32Array, lr = this.options.lr): void {
    checkStep('sgd', this.#size, params, grads);
    checkStepLr('sgd', lr);
    this.#sum.set(grads);
    this.#update(params, 1, lr);
  }

  stepBatch(params: Float32Array, gradSum: Float32Array, count: number, lr = this.options.lr): boolean {
    checkStep('sgd', this.#size, params, gradSum, count);
    checkStepLr('sgd', lr);
    this.#sum.set(gradSum);
    // count ≥ 1, so a mean is finite exactly when its sum is: the check needs no division.
    if (!this.#k.allFinite(this.#sum, this.#size)) return false;
    this.#update(params, count, lr);
    return true;
  }

  #update(params: Float32Array, count: number, lr: number): void {
    const own = params === this.params;
    const p = own ? params : this.#scratch;
    if (!own) p.set(params);
    const { momentum, nesterov, weightDecay } = this.options;
    let rule: SgdRule = 'plain';
    if (momentum !== 0) {
      if (this.#hasMomentum) rule = nesterov ? 'nesterov' : 'momentum';
      else rule = nesterov ? 'nesterovFirst' : 'momentumFirst';
    }
    this.#k.sgdStep(p, this.#momentum, this.#sum, this.#size, count, rule, lr, momentum, weightDecay);
    if (rule !== 'plain') this.#hasMomentum = true;
    if (!own) params.set(p);
  }

  state(): Record<string, Float32Array> {
    return this.#hasMomentum ? { momentum: this.#momentum.slice() } : {};
  }

  loadState(state: Record<string, Float32Array>): void {
    checkSgdState(this.#size, state);
    const m = state.momentum;
    if (m === undefined) {
      this.#hasMomentum = false;
      return;
    }
    this.#momentum.set(m);
    this.#hasMomentum = true;
  }
}

/**
 * Parameters up to which createSgd picks WasmSgd: its memory holds four copies, 1 GiB
 * here; beyond, the JS Sgd (no contiguous arena) takes over rather than risk a failed
 * allocation or wasm32's 4 GiB ceiling.
 */
export const WASM_SGD_MAX_PARAMS = 2 ** 26;

/**
 * The SGD that createOptimizer (create.ts) builds for `sgd`: WasmSgd where this engine
 * has WebAssembly SIMD and the model fits its memory, else the JS Sgd. They give the same bits
 * (test/shared/optim/wasm-sgd.test.ts), so the choice is not part of the run's configuration,
 * unlike the kernel set.
 */
export function createSgd(size: number, options: Partial<SgdOptions>): Optimizer {
  return size <= WASM_SGD_MAX_PARAMS && wasmKernelsAvailable() ? new WasmSgd(size, options) : new Sgd(size, options);
}
