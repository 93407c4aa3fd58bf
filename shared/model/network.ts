// Forward and backward passes of a model spec over a batch of at most `maxBatch`
// samples, with one kernel set (js or wasm; see shared/kernels/kernel-set.ts: the
// two give different bits, a run uses one). Activation buffers are allocated once
// here, from the kernel set's memory, and reused for every batch, so a training step
// allocates nothing. Parameters and gradients are the flat buffers laid out by
// paramLayout(spec); this file only walks the layers in order. Buffers the kernels
// cannot address (a wasm set sees only its own arena) are staged through arena
// copies: `stageParams` and `inputBuffer` let callers do that once, not per batch.
//
// Backward stops at the first layer with parameters: nothing before it needs a
// gradient, and that layer computes no input gradient. Dropout is on in training
// (accumulateGradient, computeGradient) and off in evaluation (forward, evaluate).

import {
  conv2dScratchFloatsOf,
  createKernelSet,
  jsKernels,
  type KernelSet,
  type KernelSetName,
} from '../kernels/kernel-set.js';
import { dropoutLayerSeed } from '../kernels/dropout.js';
import type { LossStats } from '../kernels/loss.js';
import {
  hasParams,
  inputShapeOf,
  layerShapes,
  paramLayout,
  type ModelSpec,
  type ParamLayout,
  type Shape,
} from './spec.js';

/**
 * Which samples a training batch holds, for dropout: a mask is drawn from (the layer's
 * seed, step, each sample's index in the dataset), never from the batch position, so
 * any cut of a step into shards and workers draws the same masks.
 */
export interface BatchSamples {
  /** The step's index in the whole run (from 0, across epochs), not its weights version. */
  readonly step: number;
  /** (B) the samples' indices in the dataset, in batch order. */
  readonly indices: Uint32Array;
}

/** A layer's input geometry: [C, H, W] (flat inputs are [N, 1, 1]). */
interface Geometry {
  readonly C: number;
  readonly H: number;
  readonly W: number;
}

export class Network {
  readonly spec: ModelSpec;
  readonly layout: ParamLayout;
  readonly maxBatch: number;
  readonly #widths: number[];
  /** Per layer, the shape of its input. */
  readonly #inGeom: Geometry[];
  /** Per layer, where its weight and bias start in the flat buffer (parameter layers only). */
  readonly #offsets: ({ readonly weight: number; readonly bias: number } | null)[];
  /** Per layer, its dropout seed mixed with its index (dropout layers only). */
  readonly #dropoutSeeds: number[];
  /** Index of the first layer with parameters: backward ends there. */
  readonly #firstParam: number;
  /** acts[i] (maxBatch, widths[i]): output of layer i. */
  readonly #acts: Float32Array[];
  /** grads[i] (maxBatch, widths[i]): gradient of the loss sum w.r.t. acts[i]. */
  readonly #dacts: Float32Array[];
  /** Working memory of the conv kernels (im2col), sized for the largest conv layer. */
  readonly #scratch: Float32Array;
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
    const shapes = layerShapes(spec);
    this.#widths = shapes.map((s) => s.reduce((a, b) => a * b, 1));
    this.#inGeom = spec.layers.map((_, i) => geometry(i === 0 ? inputShapeOf(spec) : shapes[i - 1]));
    const byName = new Map(this.layout.tensors.map((t) => [t.name, t.offset]));
    this.#offsets = spec.layers.map((layer, i) =>
      hasParams(layer) ? { weight: byName.get(`${i}.weight`)!, bias: byName.get(`${i}.bias`)! } : null,
    );
    this.#dropoutSeeds = spec.layers.map((layer, i) =>
      layer.type === 'dropout' ? dropoutLayerSeed(layer.seed, i) : 0,
    );
    this.#firstParam = spec.layers.findIndex(hasParams);
    const scratch = this.#scratchFloats(kernels);
    const P = this.layout.totalSize;
    const staged = kernels === 'js' ? 0 : 2 * P;
    const sizes = [
      ...this.#widths.map((w, i) => (spec.layers[i].type === 'flatten' ? 0 : maxBatch * w)),
      ...this.#widths.map((w) => maxBatch * w),
      maxBatch * spec.inputSize,
      scratch,
    ];
    // Each block is rounded up to 64 bytes in the arena: 16 floats of slack per block.
    for (let i = 0; i < gradientSlots; i++) sizes.push(P);
    this.#k = createKernelSet(kernels, staged + sizes.reduce((a, n) => a + n + 16, 0) + 2 * 16);
    // flatten's output is its input: no buffer of its own.
    this.#acts = this.#widths.map((w, i) => this.#k.alloc(spec.layers[i].type === 'flatten' ? 0 : maxBatch * w));
    this.#dacts = this.#widths.map((w) => this.#k.alloc(maxBatch * w));
    this.inputBuffer = this.#k.alloc(maxBatch * spec.inputSize);
    this.#scratch = this.#k.alloc(scratch);
    this.#stagedParams = kernels === 'js' ? new Float32Array(0) : this.#k.alloc(P);
    this.#stagedGrads = kernels === 'js' ? new Float32Array(0) : this.#k.alloc(P);
    this.gradientSlots = Array.from({ length: gradientSlots }, () => this.#k.alloc(P));
  }

  /** Floats of conv scratch the layers need at maxBatch: the largest of the kernel set's answers. */
  #scratchFloats(kernels: KernelSetName): number {
    let floats = 0;
    this.spec.layers.forEach((layer, i) => {
      if (layer.type !== 'conv2d') return;
      const { C, H, W } = this.#inGeom[i];
      const K = layer.kernel;
      floats = Math.max(
        floats,
        conv2dScratchFloatsOf(kernels, this.maxBatch, C, H, W, layer.out, K, K, layer.stride, layer.pad),
      );
    });
    return floats;
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

  /** Whether training this model needs BatchSamples (it has dropout). */
  get needsSamples(): boolean {
    return this.spec.layers.some((l) => l.type === 'dropout');
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

  /** Runs the layers on x (B, inputSize) in evaluation mode; returns a view of the output (B, outputWidth). */
  forward(params: Float32Array, x: Float32Array, B: number): Float32Array {
    return this.#forward(params, x, B, null);
  }

  /** `samples`: training mode (dropout on, with these samples' masks); null: evaluation. */
  #forward(params: Float32Array, x: Float32Array, B: number, samples: BatchSamples | null): Float32Array {
    this.#checkBatch(B);
    params = this.stageParams(params);
    let inp = this.#stageInput(x, B);
    this.spec.layers.forEach((layer, i) => {
      const width = this.#widths[i];
      const out = this.#acts[i];
      const n = B * width;
      const { C, H, W } = this.#inGeom[i];
      const k = this.#k;
      switch (layer.type) {
        case 'dense': {
          const d = this.#offsets[i]!;
          const inWidth = C * H * W;
          k.matmulForward(
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
        case 'conv2d': {
          const d = this.#offsets[i]!;
          const K = layer.kernel;
          const OC = layer.out;
          const weight = params.subarray(d.weight, d.bias);
          const bias = params.subarray(d.bias, d.bias + OC);
          k.conv2dForward(out, inp, weight, bias, B, C, H, W, OC, K, K, layer.stride, layer.pad, this.#scratch);
          break;
        }
        case 'maxpool2d':
          k.maxpool2dForward(out, inp, B, C, H, W, layer.kernel, layer.stride);
          break;
        case 'avgpool2d':
          k.avgpool2dForward(out, inp, B, C, H, W, layer.kernel, layer.stride);
          break;
        case 'flatten':
          // The same values in the same order: the next layer reads the input as is.
          return;
        case 'relu':
          k.reluForward(out, inp, n);
          break;
        case 'leaky_relu':
          k.leakyReluForward(out, inp, n, layer.slope);
          break;
        case 'sigmoid':
          k.sigmoidForward(out, inp, n);
          break;
        case 'tanh':
          k.tanhForward(out, inp, n);
          break;
        case 'dropout':
          if (samples === null) return; // evaluation: the identity
          k.dropoutForward(out, inp, B, width, layer.p, this.#dropoutSeeds[i], samples.step, samples.indices);
          break;
        default:
          assertNever(layer);
      }
      inp = out;
    });
    return inp.subarray(0, B * this.outputWidth);
  }

  /** Loss statistics of a batch without gradients (evaluation: dropout off). */
  evaluate(params: Float32Array, x: Float32Array, labels: Float32Array, B: number): LossStats {
    const out = this.forward(params, x, B);
    return this.#loss(null, out, labels, B);
  }

  /**
   * Forward + backward on one batch. Adds (+=) the gradient of the *sum* of per-sample
   * losses into `grads`; the caller zeroes it when it wants a fresh gradient. A model
   * with dropout needs `samples`.
   */
  accumulateGradient(
    params: Float32Array,
    grads: Float32Array,
    x: Float32Array,
    labels: Float32Array,
    B: number,
    samples?: BatchSamples,
  ): LossStats {
    if (this.#k.addressable(grads)) return this.#backward(params, grads, x, labels, B, true, samples);
    this.#stagedGrads.set(grads);
    const stats = this.#backward(params, this.#stagedGrads, x, labels, B, true, samples);
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
    samples?: BatchSamples,
  ): LossStats {
    const target = this.#k.addressable(grads) ? grads : this.#stagedGrads;
    // Every parameter belongs to one dense or conv layer, whose backward overwrites its
    // slice: the same bits as zeroing the buffer first, without the pass over it.
    const stats = this.#backward(params, target, x, labels, B, false, samples);
    if (target !== grads) grads.set(target);
    return stats;
  }

  /** `accumulate`: add into grads (else overwrite each parameter layer's slice, as if zeroed first). */
  #backward(
    params: Float32Array,
    grads: Float32Array,
    x: Float32Array,
    labels: Float32Array,
    B: number,
    accumulate: boolean,
    samples: BatchSamples | undefined,
  ): LossStats {
    if (samples === undefined && this.needsSamples)
      throw new Error('a model with dropout needs the step and sample indices to train');
    if (samples !== undefined && samples.indices.length < B)
      throw new RangeError(`${samples.indices.length} sample indices for a batch of ${B}`);
    const batch = samples ?? { step: 0, indices: new Uint32Array(0) };
    params = this.stageParams(params);
    x = this.#stageInput(x, B);
    const out = this.#forward(params, x, B, batch);
    const last = this.spec.layers.length - 1;
    const k = this.#k;
    const stats = this.#loss(this.#dacts[last], out, labels, B);
    // The gradient w.r.t. layer i's output: flatten passes it through untouched, so it
    // lives in the buffer of the nearest layer at or after i that writes one.
    let dout = this.#dacts[last];
    for (let i = last; i >= this.#firstParam; i--) {
      const layer = this.spec.layers[i];
      const width = this.#widths[i];
      const { C, H, W } = this.#inGeom[i];
      const inp = this.#input(i, x);
      // The first parameter layer needs no input gradient; nothing before it trains.
      const dinp = i === this.#firstParam ? null : this.#dacts[i - 1];
      const n = B * width;
      switch (layer.type) {
        case 'dense': {
          const d = this.#offsets[i]!;
          const inWidth = C * H * W;
          k.matmulBackward(
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
        case 'conv2d': {
          const d = this.#offsets[i]!;
          const K = layer.kernel;
          const OC = layer.out;
          k.conv2dBackward(
            dinp,
            grads.subarray(d.weight, d.bias),
            grads.subarray(d.bias, d.bias + OC),
            dout,
            inp,
            params.subarray(d.weight, d.bias),
            B,
            C,
            H,
            W,
            OC,
            K,
            K,
            layer.stride,
            layer.pad,
            this.#scratch,
            accumulate,
          );
          break;
        }
        // Layers without parameters sit after the first parameter layer, so dinp is set.
        case 'maxpool2d':
          k.maxpool2dBackward(dinp!, dout, inp, B, C, H, W, layer.kernel, layer.stride);
          break;
        case 'avgpool2d':
          k.avgpool2dBackward(dinp!, dout, B, C, H, W, layer.kernel, layer.stride);
          break;
        case 'flatten':
          continue;
        case 'relu':
          k.reluBackward(dinp!, dout, this.#acts[i], n);
          break;
        case 'leaky_relu':
          k.leakyReluBackward(dinp!, dout, inp, n, layer.slope);
          break;
        case 'sigmoid':
          k.sigmoidBackward(dinp!, dout, this.#acts[i], n);
          break;
        case 'tanh':
          k.tanhBackward(dinp!, dout, this.#acts[i], n);
          break;
        case 'dropout':
          k.dropoutBackward(dinp!, dout, B, width, layer.p, this.#dropoutSeeds[i], batch.step, batch.indices);
          break;
        default:
          assertNever(layer);
      }
      if (dinp !== null) dout = dinp;
    }
    return stats;
  }

  /**
   * The input of layer i as the forward pass left it: the output of the nearest earlier
   * layer that writes one (flatten writes none), or x.
   */
  #input(i: number, x: Float32Array): Float32Array {
    for (let j = i - 1; j >= 0; j--) if (this.spec.layers[j].type !== 'flatten') return this.#acts[j];
    return x;
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

function geometry(shape: Shape): Geometry {
  return shape.length === 3 ? { C: shape[0], H: shape[1], W: shape[2] } : { C: shape[0], H: 1, W: 1 };
}

function assertNever(x: never): never {
  throw new Error(`unhandled layer ${JSON.stringify(x)}`);
}
