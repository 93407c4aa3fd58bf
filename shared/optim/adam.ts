// Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015) and AdamW
// (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019), with the
// update of torch.optim.Adam / torch.optim.AdamW (amsgrad off, maximize off), step t from 1:
//   AdamW:  p = p·(1 − lr·weightDecay)             (decoupled: the gradient never sees it)
//   Adam:   g = grad + weightDecay·p               (L2, as SGD's weight decay)
//   m = beta1·m + (1 − beta1)·g
//   v = beta2·v + (1 − beta2)·g²
//   p = p − (lr / (1 − beta1^t)) · m / (sqrt(v) / sqrt(1 − beta2^t) + eps)
// eps is added after the bias correction of sqrt(v), where PyTorch adds it.
//
// This is the plain-JS reference; WasmAdam (wasm-adam.ts) is its WebAssembly twin, the
// same bits (test/shared/optim/adam.test.ts compares them). Both compute each element in
// double from the float32 values and store float32 m, v and p, with the operations in
// the order written here; the per-step scalars come from one function (adamScalars), and
// the powers beta^t are running products, never Math.pow (not specified to the last bit):
// every operation involved, sqrt included, is correctly rounded in JS and WebAssembly alike.

import { ConfigError } from '../errors.js';
import { batchMean, checkStep, checkStepLr, type Optimizer } from './optimizer.js';

export interface AdamOptions {
  /** Learning rate, > 0: of every step unless the step is given its own (a schedule's). */
  readonly lr: number;
  /** Decay of the first-moment average, in [0, 1). */
  readonly beta1: number;
  /** Decay of the second-moment average, in [0, 1). */
  readonly beta2: number;
  /** Added to the bias-corrected sqrt(v) in the denominator, > 0. */
  readonly eps: number;
  /** ≥ 0: an L2 penalty added to the gradient (Adam), or the decoupled decay rate (AdamW). */
  readonly weightDecay: number;
  /** true: AdamW's decoupled weight decay; false: Adam's L2. */
  readonly decoupled: boolean;
}

/** PyTorch's defaults, weight decay included (AdamW's is 0.01 there; here it is asked for). */
export const ADAM_DEFAULTS: AdamOptions = {
  lr: 0.001,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
  decoupled: false,
};

/** The options merged over ADAM_DEFAULTS; a ConfigError naming the value when one is out of range. */
export function adamOptions(options: Partial<AdamOptions>): AdamOptions {
  const o = { ...ADAM_DEFAULTS, ...options };
  if (!(Number.isFinite(o.lr) && o.lr > 0))
    throw new ConfigError(`learning rate must be a positive number, got ${o.lr}`);
  if (!(o.beta1 >= 0 && o.beta1 < 1)) throw new ConfigError(`beta1 must be in [0, 1), got ${o.beta1}`);
  if (!(o.beta2 >= 0 && o.beta2 < 1)) throw new ConfigError(`beta2 must be in [0, 1), got ${o.beta2}`);
  // eps = 0 would make 0/0 of every weight whose gradient has always been 0.
  if (!(Number.isFinite(o.eps) && o.eps > 0)) throw new ConfigError(`eps must be a positive number, got ${o.eps}`);
  if (!(Number.isFinite(o.weightDecay) && o.weightDecay >= 0))
    throw new ConfigError(`weight decay must be ≥ 0, got ${o.weightDecay}`);
  // A schedule never exceeds lr, so this bounds every step's factor 1 − lr·weightDecay.
  if (o.decoupled && o.lr * o.weightDecay >= 1)
    throw new ConfigError(
      'adamw: lr × weight decay must be < 1 (each step scales the weights by 1 − lr × weight decay), ' +
        `got ${o.lr} × ${o.weightDecay}`,
    );
  return o;
}

/** The scalars of one step, in double; both twins use exactly these. */
export interface AdamScalars {
  /** Factor on p before the update: 1 − lr·weightDecay for AdamW, 1 for Adam (exact). */
  readonly decay: number;
  /** Factor of p added to the gradient: weightDecay for Adam, 0 for AdamW. */
  readonly l2: number;
  readonly beta1: number;
  /** 1 − beta1. */
  readonly c1: number;
  readonly beta2: number;
  /** 1 − beta2. */
  readonly c2: number;
  /** lr / (1 − beta1^t). */
  readonly stepSize: number;
  /** sqrt(1 − beta2^t). */
  readonly bc2Sqrt: number;
  readonly eps: number;
}

export function adamScalars(o: AdamOptions, lr: number, clock: AdamClock): AdamScalars {
  return {
    decay: o.decoupled ? 1 - lr * o.weightDecay : 1,
    l2: o.decoupled ? 0 : o.weightDecay,
    beta1: o.beta1,
    c1: 1 - o.beta1,
    beta2: o.beta2,
    c2: 1 - o.beta2,
    stepSize: lr / (1 - clock.beta1Power),
    bc2Sqrt: Math.sqrt(1 - clock.beta2Power),
    eps: o.eps,
  };
}

/** Largest step count a checkpoint stores: two float32 integers of 24 bits. */
const MAX_STEPS = 2 ** 48;

/**
 * The step count t and the powers beta1^t, beta2^t as running products. Restoring t
 * recomputes them by the same products, so a resumed run has the same bits.
 */
export class AdamClock {
  readonly #beta1: number;
  readonly #beta2: number;
  #t = 0;
  #beta1Power = 1;
  #beta2Power = 1;
  /** t and the powers before the last advance(), for undo(). */
  #before: [number, number, number] = [0, 1, 1];

  constructor(beta1: number, beta2: number) {
    this.#beta1 = beta1;
    this.#beta2 = beta2;
  }

  /** Steps taken. */
  get t(): number {
    return this.#t;
  }
  get beta1Power(): number {
    return this.#beta1Power;
  }
  get beta2Power(): number {
    return this.#beta2Power;
  }

  /** Moves to the next step: t + 1, and the powers one product further. */
  advance(): void {
    this.#before = [this.#t, this.#beta1Power, this.#beta2Power];
    this.#t++;
    this.#beta1Power *= this.#beta1;
    this.#beta2Power *= this.#beta2;
  }

  /** Back to where the last advance() started (a step that changed nothing). */
  undo(): void {
    [this.#t, this.#beta1Power, this.#beta2Power] = this.#before;
  }

  /** The clock a run has after t steps. */
  reset(t: number): void {
    this.#t = 0;
    this.#beta1Power = 1;
    this.#beta2Power = 1;
    // Products shrink to a fixed point (0, or a subnormal that rounds back to itself):
    // once there, further products change nothing, so the loop stops.
    while (
      this.#t < t &&
      (this.#beta1Power * this.#beta1 !== this.#beta1Power || this.#beta2Power * this.#beta2 !== this.#beta2Power)
    )
      this.advance();
    this.#t = t;
  }

  /** t as a checkpoint tensor: [t mod 2^24, ⌊t / 2^24⌋], both exact in float32. */
  toTensor(): Float32Array {
    return new Float32Array([this.#t % 2 ** 24, Math.floor(this.#t / 2 ** 24)]);
  }

  /** The t that toTensor stored; a RangeError for anything else. */
  static stepsOf(tensor: Float32Array): number {
    const [low, high] = tensor;
    if (
      tensor.length !== 2 ||
      !(Number.isInteger(low) && low >= 0 && low < 2 ** 24) ||
      !(Number.isInteger(high) && high >= 0 && high < 2 ** 24)
    )
      throw new RangeError(`adam state: step must be two integers in [0, 2^24), got [${tensor.join(', ')}]`);
    return high * 2 ** 24 + low;
  }
}

/**
 * Checks an Adam state record (m, v, step; or {} before the first step) against the
 * parameter count and returns its step count (0 for {}).
 */
export function checkAdamState(size: number, state: Record<string, Float32Array>): number {
  const names = Object.keys(state).sort();
  if (names.length === 0) return 0;
  if (names.join() !== 'm,step,v')
    throw new RangeError(`adam state: expected tensors m, v and step, got ${names.join(', ')}`);
  for (const name of ['m', 'v'])
    if (state[name].length !== size)
      throw new RangeError(`adam state: ${name} has ${state[name].length} values, expected ${size}`);
  const t = AdamClock.stepsOf(state.step);
  if (t === 0 || t > MAX_STEPS) throw new RangeError(`adam state: step must be in [1, 2^48], got ${t}`);
  return t;
}

export class Adam implements Optimizer {
  readonly options: AdamOptions;
  readonly #size: number;
  readonly #clock: AdamClock;
  #params: Float32Array | null = null;
  /** First and second moments (size each); allocated at the first step. */
  #m: Float32Array | null = null;
  #v: Float32Array | null = null;
  /** The batch mean of stepBatch (size). */
  #mean: Float32Array | null = null;

  constructor(size: number, options: Partial<AdamOptions> = {}) {
    this.options = adamOptions(options);
    this.#size = size;
    this.#clock = new AdamClock(this.options.beta1, this.options.beta2);
  }

  get params(): Float32Array {
    this.#params ??= new Float32Array(this.#size);
    return this.#params;
  }

  stepBatch(params: Float32Array, gradSum: Float32Array, count: number, lr = this.options.lr): boolean {
    checkStep('adam', this.#size, params, gradSum, count);
    this.#mean ??= new Float32Array(this.#size);
    if (!batchMean(this.#mean, gradSum, count)) return false;
    this.step(params, this.#mean, lr);
    return true;
  }

  step(params: Float32Array, grads: Float32Array, lr = this.options.lr): void {
    checkStep('adam', this.#size, params, grads);
    checkStepLr('adam', lr);
    this.#m ??= new Float32Array(this.#size);
    this.#v ??= new Float32Array(this.#size);
    const m = this.#m;
    const v = this.#v;
    this.#clock.advance();
    const { decay, l2, beta1, c1, beta2, c2, stepSize, bc2Sqrt, eps } = adamScalars(this.options, lr, this.#clock);
    // mi and vi are the float32 values stored, so a resumed run reads the same numbers.
    for (let i = 0; i < params.length; i++) {
      const p = params[i] * decay;
      const g = grads[i] + l2 * p;
      const mi = Math.fround(beta1 * m[i] + c1 * g);
      const vi = Math.fround(beta2 * v[i] + c2 * g * g);
      m[i] = mi;
      v[i] = vi;
      params[i] = p - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
    }
  }

  state(): Record<string, Float32Array> {
    if (this.#clock.t === 0 || this.#m === null || this.#v === null) return {};
    return { m: this.#m.slice(), v: this.#v.slice(), step: this.#clock.toTensor() };
  }

  loadState(state: Record<string, Float32Array>): void {
    const t = checkAdamState(this.#size, state);
    this.#clock.reset(t);
    if (t === 0) {
      this.#m = this.#v = null;
      return;
    }
    this.#m = state.m.slice();
    this.#v = state.v.slice();
  }
}
