// Forward and backward passes of a model spec over a batch of at most `maxBatch`
// samples, with one kernel set (js or wasm; see shared/kernels/kernel-set.ts: the
// two give different bits, a run uses one). Activation buffers are allocated once
// here, from the kernel set's memory, and reused for every batch, so a training step
// allocates nothing. Parameters and gradients are the flat buffers laid out by
// paramLayout(spec); this file only walks the layers in order. Buffers the kernels
// cannot address (a wasm set sees only its own arena) are staged through arena
// copies: `stageParams` and `inputBuffer` let callers do that once, not per batch.

import { createKernelSet, jsKernels, type KernelSet, type KernelSetName } from '../kernels/kernel-set.js';
import type { LossStats } from '../kernels/loss.js';
import { layerWidths, paramLayout, type ModelSpec, type ParamLayout } from './spec.js';

interface DenseOffsets {
  readonly weight: number;
  readonly bias: number;
}

export class Network {
  readonly spec: ModelSpec;
  readonly layout: ParamLayout;
  readonly maxBatch: number;
  readonly #widths: number[];
  /** Per layer, where its weight and bias start in the flat buffer (dense layers only). */
  readonly #dense: (DenseOffsets | null)[];
  /** acts[i] (maxBatch, widths[i]): output of layer i. */
  readonly #acts: Float32Array[];
  /** grads[i] (maxBatch, widths[i]): gradient of the loss sum w.r.t. acts[i]. */
  readonly #dacts: Float32Array[];
  readonly #k: KernelSet;
  /** (paramCount) each: staging copies of parameters and gradients for the kernels (js: unused). */
  readonly #stagedParams: Float32Array;
  readonly #stagedGrads: Float32Array;
  /** (maxBatch, inputSize): where callers may gather inputs so that no staging copy is needed. */
  readonly inputBuffer: Float32Array;

  /** (paramCount) each: gradient buffers in kernel memory, for callers that reduce gradients (ShardComputer). */
  readonly gradientSlots: readonly Float32Array[];

  /** `gradientSlots` extra gradient buffers are reserved in the kernel set's memory. */
  constructor(spec: ModelSpec, maxBatch: number, kernels: KernelSetName = 'js', gradientSlots = 0) {
    this.spec = spec;
    this.layout = paramLayout(spec);
    this.maxBatch = maxBatch;
    this.#widths = layerWidths(spec);
    const byName = new Map(this.layout.tensors.map((t) => [t.name, t.offset]));
    this.#dense = spec.layers.map((layer, i) =>
      layer.type === 'dense' ? { weight: byName.get(`${i}.weight`)!, bias: byName.get(`${i}.bias`)! } : null,
    );
    const P = this.layout.totalSize;
    const staged = kernels === 'js' ? 0 : 2 * P;
    const sizes = [
      ...this.#widths.map((w) => maxBatch * w),
      ...this.#widths.map((w) => maxBatch * w),
      maxBatch * spec.inputSize,
    ];
    // Each block is rounded up to 64 bytes in the arena: 16 floats of slack per block.
    for (let i = 0; i < gradientSlots; i++) sizes.push(P);
    this.#k = createKernelSet(kernels, staged + sizes.reduce((a, n) => a + n + 16, 0) + 2 * 16);
    this.#acts = this.#widths.map((w) => this.#k.alloc(maxBatch * w));
    this.#dacts = this.#widths.map((w) => this.#k.alloc(maxBatch * w));
    this.inputBuffer = this.#k.alloc(maxBatch * spec.inputSize);
    this.#stagedParams = kernels === 'js' ? new Float32Array(0) : this.#k.alloc(P);
    this.#stagedGrads = kernels === 'js' ? new Float32Array(0) : this.#k.alloc(P);
    this.gradientSlots = Array.from({ length: gradientSlots }, () => this.#k.alloc(P));
  }

  /** buf rounded to bfloat16 in place (the same bits whichever memory it lives in). */
  roundBf16(buf: Float32Array): void {
    if (this.#k.addressable(buf)) this.#k.roundBf16(buf, buf.length);
    else jsKernels.roundBf16(buf, buf.length);
  }

  /** out += inp elementwise in float32 (the same bits whichever memory they live in). */
  addInto(out: Float32Array, inp: Float32Array): void {
    if (inp.length !== out.length) throw new RangeError(`addInto: ${out.length} vs ${inp.length} values`);
    if (this.#k.addressable(out) && this.#k.addressable(inp)) this.#k.addInto(out, inp, out.length);
    else for (let i = 0; i < out.length; i++) out[i] += inp[i];
  }

  /** The kernel set this network runs. */
  get kernels(): KernelSetName {
    return this.#k.name;
  }

  /**
   * `params` itself if the kernels can address it, else a copy in kernel memory (one
   * buffer, overwritten by the next call). Stage once per weights version and pass the
   * result to forward/accumulateGradient, which then copy nothing.
   */
  stageParams(params: Float32Array): Float32Array {
    if (this.#k.addressable(params)) return params;
    this.#stagedParams.set(params);
    return this.#stagedParams;
  }

  get outputWidth(): number {
    return this.#widths[this.#widths.length - 1];
  }

  /** Runs the layers on x (B, inputSize); returns a view of the output (B, outputWidth). */
  forward(params: Float32Array, x: Float32Array, B: number): Float32Array {
    this.#checkBatch(B);
    params = this.stageParams(params);
    let inp = this.#stageInput(x, B);
    let inWidth = this.spec.inputSize;
    this.spec.layers.forEach((layer, i) => {
      const width = this.#widths[i];
      const out = this.#acts[i];
      const n = B * width;
      switch (layer.type) {
        case 'dense': {
          const d = this.#dense[i]!;
          this.#k.matmulForward(
            out,
            inp,
            params.subarray(d.weight, d.bias),
            params.subarray(d.bias, d.bias + width),
            B,
            inWidth,
            width,
          );
          break;
        }
        case 'relu':
          this.#k.reluForward(out, inp, n);
          break;
        case 'sigmoid':
          this.#k.sigmoidForward(out, inp, n);
          break;
        case 'tanh':
          this.#k.tanhForward(out, inp, n);
          break;
        default:
          assertNever(layer);
      }
      inp = out;
      inWidth = width;
    });
    return inp.subarray(0, B * inWidth);
  }

  /** Loss statistics of a batch without gradients (evaluation). */
  evaluate(params: Float32Array, x: Float32Array, labels: Float32Array, B: number): LossStats {
    const out = this.forward(params, x, B);
    return this.#loss(null, out, labels, B);
  }

  /**
   * Forward + backward on one batch. Adds (+=) the gradient of the *sum* of per-sample
   * losses into `grads`; the caller zeroes it when it wants a fresh gradient.
   */
  accumulateGradient(
    params: Float32Array,
    grads: Float32Array,
    x: Float32Array,
    labels: Float32Array,
    B: number,
  ): LossStats {
    if (this.#k.addressable(grads)) return this.#backward(params, grads, x, labels, B, true);
    this.#stagedGrads.set(grads);
    const stats = this.#backward(params, this.#stagedGrads, x, labels, B, true);
    grads.set(this.#stagedGrads);
    return stats;
  }

  /** Like accumulateGradient, but overwrites `grads` with the gradient (saves a copy when staging). */
  computeGradient(
    params: Float32Array,
    grads: Float32Array,
    x: Float32Array,
    labels: Float32Array,
    B: number,
  ): LossStats {
    const target = this.#k.addressable(grads) ? grads : this.#stagedGrads;
    // Every parameter belongs to one dense layer, whose backward overwrites its slice:
    // the same bits as zeroing the buffer first, without the pass over it.
    const stats = this.#backward(params, target, x, labels, B, false);
    if (target !== grads) grads.set(target);
    return stats;
  }

  /** `accumulate`: add into grads (else overwrite each dense layer's slice, as if zeroed first). */
  #backward(
    params: Float32Array,
    grads: Float32Array,
    x: Float32Array,
    labels: Float32Array,
    B: number,
    accumulate: boolean,
  ): LossStats {
    params = this.stageParams(params);
    x = this.#stageInput(x, B);
    const out = this.forward(params, x, B);
    const last = this.spec.layers.length - 1;
    const stats = this.#loss(this.#dacts[last], out, labels, B);
    for (let i = last; i >= 0; i--) {
      const layer = this.spec.layers[i];
      const width = this.#widths[i];
      const inWidth = i === 0 ? this.spec.inputSize : this.#widths[i - 1];
      const inp = i === 0 ? x : this.#acts[i - 1];
      const dinp = i === 0 ? null : this.#dacts[i - 1];
      const dout = this.#dacts[i];
      const n = B * inWidth;
      switch (layer.type) {
        case 'dense': {
          const d = this.#dense[i]!;
          this.#k.matmulBackward(
            dinp,
            grads.subarray(d.weight, d.bias),
            grads.subarray(d.bias, d.bias + width),
            dout,
            inp,
            params.subarray(d.weight, d.bias),
            B,
            inWidth,
            width,
            accumulate,
          );
          break;
        }
        // Activations sit after a dense layer, so i > 0 and dinp is never null here.
        case 'relu':
          this.#k.reluBackward(dinp!, dout, this.#acts[i], n);
          break;
        case 'sigmoid':
          this.#k.sigmoidBackward(dinp!, dout, this.#acts[i], n);
          break;
        case 'tanh':
          this.#k.tanhBackward(dinp!, dout, this.#acts[i], n);
          break;
        default:
          assertNever(layer);
      }
    }
    return stats;
  }

  #loss(dout: Float32Array | null, out: Float32Array, labels: Float32Array, B: number): LossStats {
    const width = this.outputWidth;
    return this.spec.loss === 'cross_entropy'
      ? this.#k.softmaxCrossEntropy(dout, out, labels, B, width)
      : this.#k.meanSquaredError(dout, out, labels, B, width);
  }

  /** x itself if addressable, else its first B rows copied into inputBuffer. */
  #stageInput(x: Float32Array, B: number): Float32Array {
    if (this.#k.addressable(x)) return x;
    const n = B * this.spec.inputSize;
    this.inputBuffer.set(n === x.length ? x : x.subarray(0, n));
    return this.inputBuffer;
  }

  #checkBatch(B: number): void {
    if (!(Number.isInteger(B) && B >= 0 && B <= this.maxBatch)) {
      throw new RangeError(`batch of ${B} samples exceeds this network's capacity of ${this.maxBatch}`);
    }
  }
}

function assertNever(x: never): never {
  throw new Error(`unhandled layer ${JSON.stringify(x)}`);
}
