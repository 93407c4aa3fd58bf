// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight
// decay, with the exact update rule of torch.optim.SGD (dampening 0):
//   g = grad + weightDecay·p
//   buf = g on the first step, then momentum·buf + g
//   g = nesterov ? g + momentum·buf : buf
//   p = p − lr·g
// Reference: Sutskever et al., "On the importance of initialization and momentum in
// deep learning" (ICML 2013), as formulated in the PyTorch documentation.
//
// This is the plain-JS reference. WasmSgd (wasm-sgd.ts) is its WebAssembly twin, the
// same bits about four times faster, and what the trainer uses wherever WebAssembly
// SIMD is available: any change to the arithmetic here must be made there too
// (test/shared/optim/wasm-sgd.test.ts compares the two bit for bit).

import { DEFAULTS } from '../defaults.js';
import { ConfigError } from '../errors.js';
import { batchMean, checkStep, checkStepLr, type Optimizer } from './optimizer.js';

export interface SgdOptions {
  /** Learning rate, > 0: of every step unless the step is given its own (a schedule's). */
  readonly lr: number;
  /** Momentum factor in [0, 1); 0 disables momentum. */
  readonly momentum: number;
  /** Use Nesterov momentum (requires momentum > 0). */
  readonly nesterov: boolean;
  /** L2 penalty added to the gradient, ≥ 0. */
  readonly weightDecay: number;
}

const { lr, momentum, nesterov, weightDecay } = DEFAULTS.training;
export const SGD_DEFAULTS: SgdOptions = { lr, momentum, nesterov, weightDecay };

/** The options merged over SGD_DEFAULTS; a ConfigError naming the value when one is out of range. */
export function sgdOptions(options: Partial<SgdOptions>): SgdOptions {
  const o = { ...SGD_DEFAULTS, ...options };
  if (!(Number.isFinite(o.lr) && o.lr > 0))
    throw new ConfigError(`learning rate must be a positive number, got ${o.lr}`);
  if (!(o.momentum >= 0 && o.momentum < 1)) throw new ConfigError(`momentum must be in [0, 1), got ${o.momentum}`);
  if (!(Number.isFinite(o.weightDecay) && o.weightDecay >= 0))
    throw new ConfigError(`weight decay must be ≥ 0, got ${o.weightDecay}`);
  if (o.nesterov && o.momentum === 0) throw new ConfigError('nesterov momentum needs --momentum > 0');
  return o;
}

export class Sgd implements Optimizer {
  readonly options: SgdOptions;
  readonly #size: number;
  #params: Float32Array | null = null;
  #momentum: Float32Array | null = null;
  /** The batch mean of stepBatch (size). */
  #mean: Float32Array | null = null;

  constructor(size: number, options: Partial<SgdOptions> = {}) {
    this.options = sgdOptions(options);
    this.#size = size;
  }

  get params(): Float32Array {
    this.#params ??= new Float32Array(this.#size);
    return this.#params;
  }

  stepBatch(params: Float32Array, gradSum: Float32Array, count: number, lr = this.options.lr): boolean {
    checkStep('sgd', this.#size, params, gradSum, count);
    this.#mean ??= new Float32Array(this.#size);
    if (!batchMean(this.#mean, gradSum, count)) return false;
    this.step(params, this.#mean, lr);
    return true;
  }

  step(params: Float32Array, grads: Float32Array, lr = this.options.lr): void {
    checkStep('sgd', this.#size, params, grads);
    checkStepLr('sgd', lr);
    const { momentum, nesterov, weightDecay } = this.options;
    if (momentum === 0) {
      for (let i = 0; i < params.length; i++) params[i] -= lr * (grads[i] + weightDecay * params[i]);
      return;
    }
    // One loop per case, branch-free inside (about twice as fast as one loop with the
    // tests inside). b is Math.fround of the new buffer value: exactly the float32
    // stored in buf, so a resumed run reads the same number.
    const n = params.length;
    let buf = this.#momentum;
    if (buf === null) {
      buf = this.#momentum = new Float32Array(this.#size);
      for (let i = 0; i < n; i++) {
        const p = params[i];
        const g = grads[i] + weightDecay * p;
        const b = Math.fround(g);
        buf[i] = b;
        params[i] = p - lr * (nesterov ? g + momentum * b : b);
      }
    } else if (nesterov) {
      for (let i = 0; i < n; i++) {
        const p = params[i];
        const g = grads[i] + weightDecay * p;
        const b = Math.fround(momentum * buf[i] + g);
        buf[i] = b;
        params[i] = p - lr * (g + momentum * b);
      }
    } else {
      for (let i = 0; i < n; i++) {
        const p = params[i];
        const g = grads[i] + weightDecay * p;
        const b = Math.fround(momentum * buf[i] + g);
        buf[i] = b;
        params[i] = p - lr * b;
      }
    }
  }

  state(): Record<string, Float32Array> {
    return this.#momentum === null ? {} : { momentum: this.#momentum.slice() };
  }

  loadState(state: Record<string, Float32Array>): void {
    checkSgdState(this.#size, state);
    const m = state.momentum;
    if (m === undefined) {
      this.#momentum = null;
      return;
    }
    this.#momentum = m.slice();
  }
}

/** Throws unless state is {} or { momentum } with `size` values. */
export function checkSgdState(size: number, state: Record<string, Float32Array>): void {
  const names = Object.keys(state);
  if (names.some((name) => name !== 'momentum'))
    throw new RangeError(`sgd state: expected at most a momentum tensor, got ${names.join(', ')}`);
  const m = state.momentum;
  if (m !== undefined && m.length !== size)
    throw new RangeError(`sgd state: momentum has ${m.length} values, expected ${size}`);
}
