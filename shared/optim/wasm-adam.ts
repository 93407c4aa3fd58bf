// Adam and AdamW on WebAssembly SIMD: the update of adam.ts bit for bit (adam_step in
// shared/optim/wasm/optim.wat computes in f64x2 lanes, operation for operation as the
// JS computes in doubles), the batch mean folded into it and the divergence check as a
// pass before it.
//
// The instance owns a fixed-size wasm memory (maximum = initial, so views never
// detach) holding the parameters (handed out as `params`), the two moments, the step's
// gradient sum (copied in: the executor's buffer lives elsewhere) and room for a
// caller's own parameter buffer (copied through). The step count and the powers of the
// betas live in JS (AdamClock), shared with the JS twin.

import { OPTIM_WASM_BASE64 } from './wasm/module.generated.js';
import { AdamClock, type AdamOptions, adamOptions, adamScalars, checkAdamState } from './adam.js';
import { checkStep, checkStepLr, type Optimizer } from './optimizer.js';

interface OptimExports {
  adam_step(
    params: number,
    m: number,
    v: number,
    sum: number,
    N: number,
    count: number,
    check: number,
    decay: number,
    l2: number,
    beta1: number,
    c1: number,
    beta2: number,
    c2: number,
    stepSize: number,
    bc2Sqrt: number,
    eps: number,
  ): number;
}

const PAGE = 65536;
/** Blocks start on 64-byte boundaries (a cache line; v128 needs only 16). */
const ALIGN = 64;
/** params, m, v, the gradient sum, the copy-through buffer. */
const BLOCKS = 5;

let compiled: WebAssembly.Module | null | undefined;

/** The compiled optimizer module, or null when this engine has no WebAssembly SIMD-128. */
function optimModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const text = atob(OPTIM_WASM_BASE64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    try {
      // Synchronous compilation is allowed in Node and in Web Workers.
      compiled = typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/** Whether WasmAdam can run here (WebAssembly with SIMD-128). */
export function wasmAdamAvailable(): boolean {
  return optimModule() !== null;
}

/**
 * Parameters up to which createOptimizer picks WasmAdam: its memory holds five copies,
 * 640 MiB here; beyond, the JS Adam takes over rather than risk a failed allocation.
 */
export const WASM_ADAM_MAX_PARAMS = 2 ** 25;

export class WasmAdam implements Optimizer {
  readonly options: AdamOptions;
  readonly params: Float32Array;
  readonly #size: number;
  readonly #k: OptimExports;
  readonly #clock: AdamClock;
  /** First and second moments (size each), zero until the first step. */
  readonly #m: Float32Array;
  readonly #v: Float32Array;
  /** The step's gradient sum, or the mean for step() (size). */
  readonly #sum: Float32Array;
  /** Where step and stepBatch work on a params array that is not `params` (size). */
  readonly #scratch: Float32Array;

  constructor(size: number, options: Partial<AdamOptions> = {}) {
    this.options = adamOptions(options);
    const module = optimModule();
    if (module === null) throw new Error('this JavaScript engine has no WebAssembly SIMD-128: use the JS Adam');
    this.#size = size;
    this.#clock = new AdamClock(this.options.beta1, this.options.beta2);
    const blockBytes = Math.ceil((size * 4) / ALIGN) * ALIGN;
    const pages = Math.max(1, Math.ceil((BLOCKS * blockBytes) / PAGE));
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.#k = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as OptimExports;
    const block = (i: number) => new Float32Array(memory.buffer, i * blockBytes, size);
    this.params = block(0);
    this.#m = block(1);
    this.#v = block(2);
    this.#sum = block(3);
    this.#scratch = block(4);
  }

  /** step(params, grads) is the step on grads as a sum over one sample: x / 1 = x exactly. */
  step(params: Float32Array, grads: Float32Array, lr = this.options.lr): void {
    checkStep('adam', this.#size, params, grads);
    checkStepLr('adam', lr);
    this.#sum.set(grads);
    this.#update(params, 1, false, lr);
  }

  stepBatch(params: Float32Array, gradSum: Float32Array, count: number, lr = this.options.lr): boolean {
    checkStep('adam', this.#size, params, gradSum, count);
    checkStepLr('adam', lr);
    this.#sum.set(gradSum);
    return this.#update(params, count, true, lr);
  }

  #update(params: Float32Array, count: number, check: boolean, lr: number): boolean {
    const own = params === this.params;
    const p = own ? params : this.#scratch;
    if (!own) p.set(params);
    this.#clock.advance();
    const s = adamScalars(this.options, lr, this.#clock);
    const done = this.#k.adam_step(
      p.byteOffset,
      this.#m.byteOffset,
      this.#v.byteOffset,
      this.#sum.byteOffset,
      this.#size,
      count,
      check ? 1 : 0,
      s.decay,
      s.l2,
      s.beta1,
      s.c1,
      s.beta2,
      s.c2,
      s.stepSize,
      s.bc2Sqrt,
      s.eps,
    );
    if (done === 0) {
      // Nothing was touched: the clock goes back with the rest.
      this.#clock.undo();
      return false;
    }
    if (!own) params.set(p);
    return true;
  }

  state(): Record<string, Float32Array> {
    if (this.#clock.t === 0) return {};
    return { m: this.#m.slice(), v: this.#v.slice(), step: this.#clock.toTensor() };
  }

  loadState(state: Record<string, Float32Array>): void {
    const t = checkAdamState(this.#size, state);
    this.#clock.reset(t);
    if (t === 0) {
      this.#m.fill(0);
      this.#v.fill(0);
      return;
    }
    this.#m.set(state.m);
    this.#v.set(state.v);
  }
}
