// Forward and backward passes of a model spec over a batch of at most `maxBatch`
// samples. Activation buffers are allocated once here and reused for every batch, so
// a training step allocates nothing. Parameters and gradients are the flat buffers
// laid out by paramLayout(spec); this file only walks the layers in order.

import { matmulBackward, matmulForward } from '../kernels/matmul.js';
import {
  reluBackward, reluForward, sigmoidBackward, sigmoidForward, tanhBackward, tanhForward,
} from '../kernels/activations.js';
import { meanSquaredError, softmaxCrossEntropy, type LossStats } from '../kernels/loss.js';
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

  constructor(spec: ModelSpec, maxBatch: number) {
    this.spec = spec;
    this.layout = paramLayout(spec);
    this.maxBatch = maxBatch;
    this.#widths = layerWidths(spec);
    const byName = new Map(this.layout.tensors.map((t) => [t.name, t.offset]));
    this.#dense = spec.layers.map((layer, i) =>
      layer.type === 'dense' ? { weight: byName.get(`${i}.weight`)!, bias: byName.get(`${i}.bias`)! } : null,
    );
    this.#acts = this.#widths.map((w) => new Float32Array(maxBatch * w));
    this.#dacts = this.#widths.map((w) => new Float32Array(maxBatch * w));
  }

  get outputWidth(): number {
    return this.#widths[this.#widths.length - 1];
  }

  /** Runs the layers on x (B, inputSize); returns a view of the output (B, outputWidth). */
  forward(params: Float32Array, x: Float32Array, B: number): Float32Array {
    this.#checkBatch(B);
    let inp = x;
    let inWidth = this.spec.inputSize;
    this.spec.layers.forEach((layer, i) => {
      const width = this.#widths[i];
      const out = this.#acts[i];
      const n = B * width;
      switch (layer.type) {
        case 'dense': {
          const d = this.#dense[i]!;
          matmulForward(out, inp, params.subarray(d.weight, d.bias), params.subarray(d.bias, d.bias + width), B, inWidth, width);
          break;
        }
        case 'relu': reluForward(out, inp, n); break;
        case 'sigmoid': sigmoidForward(out, inp, n); break;
        case 'tanh': tanhForward(out, inp, n); break;
        default: assertNever(layer);
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
  accumulateGradient(params: Float32Array, grads: Float32Array, x: Float32Array, labels: Float32Array, B: number): LossStats {
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
          matmulBackward(
            dinp, grads.subarray(d.weight, d.bias), grads.subarray(d.bias, d.bias + width),
            dout, inp, params.subarray(d.weight, d.bias), B, inWidth, width,
          );
          break;
        }
        // Activations sit after a dense layer, so i > 0 and dinp is never null here.
        case 'relu': reluBackward(dinp!, dout, this.#acts[i], n); break;
        case 'sigmoid': sigmoidBackward(dinp!, dout, this.#acts[i], n); break;
        case 'tanh': tanhBackward(dinp!, dout, this.#acts[i], n); break;
        default: assertNever(layer);
      }
    }
    return stats;
  }

  #loss(dout: Float32Array | null, out: Float32Array, labels: Float32Array, B: number): LossStats {
    const width = this.outputWidth;
    return this.spec.loss === 'cross_entropy'
      ? softmaxCrossEntropy(dout, out, labels, B, width)
      : meanSquaredError(dout, out, labels, B, width);
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
