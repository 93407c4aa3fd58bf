// A kernel set: the dense-layer, activation and loss kernels a Network runs, plus
// the memory they can address. Two sets exist, and they are NOT interchangeable
// within a run: `js` (the Float32Array kernels of matmul.ts, accumulating in double)
// and `wasm` (the SIMD kernels of wasm/kernels.wat, accumulating in f32x4 lanes).
// Each gives the same bits on every engine, but not the same bits as the other, so
// the set is part of the run's configuration and every worker uses the one the
// coordinator names in its welcome (a worker that cannot run it refuses).
//
// Only the matmuls differ in bits. ReLU, sigmoid, tanh (the wasm ones are ports of
// transcendental.ts, f64 operation for f64 operation) and the tree's add give the
// same bits in both sets; the loss heads are the same JS functions in both (a few
// hundred exp/log per shard).

import { matmulBackward, matmulForward } from './matmul.js';
import {
  reluBackward,
  reluForward,
  sigmoidBackward,
  sigmoidForward,
  tanhBackward,
  tanhForward,
} from './activations.js';
import { meanSquaredError, softmaxCrossEntropy, type LossStats } from './loss.js';
import { roundBf16 } from './bf16.js';
import { WasmKernels, wasmKernelsAvailable } from './wasm/kernels.js';

export type KernelSetName = 'js' | 'wasm';
export const KERNEL_SET_NAMES: readonly KernelSetName[] = ['js', 'wasm'];

export interface KernelSet {
  readonly name: KernelSetName;
  /**
   * n zeroed floats the kernels can address. The wasm set hands out views of its one
   * fixed-size arena and throws once it is used up; allocate at construction only.
   */
  alloc(n: number): Float32Array;
  /** Whether `a` can be passed to the kernels as is (the js set: always). */
  addressable(a: Float32Array): boolean;
  /** out (B, OC) = inp (B, C) · weight (OC, C)ᵀ + bias (OC) */
  matmulForward(
    out: Float32Array,
    inp: Float32Array,
    weight: Float32Array,
    bias: Float32Array,
    B: number,
    C: number,
    OC: number,
  ): void;
  /**
   * dweight (OC, C) += doutᵀ·inp, dbias (OC) += Σ_b dout, dinp (B, C) = dout·weight unless null.
   * accumulate false: dweight and dbias get the sums as if they had been zeroed first (same bits).
   */
  matmulBackward(
    dinp: Float32Array | null,
    dweight: Float32Array,
    dbias: Float32Array,
    dout: Float32Array,
    inp: Float32Array,
    weight: Float32Array,
    B: number,
    C: number,
    OC: number,
    accumulate?: boolean,
  ): void;
  /** out (N) += inp (N), elementwise in float32: the reduction tree's combine (same bits in both sets). */
  addInto(out: Float32Array, inp: Float32Array, N: number): void;
  /** buf (N) rounded to bfloat16 in place, for --wire-dtype bf16 (same bits in both sets: integer operations). */
  roundBf16(buf: Float32Array, N: number): void;
  reluForward(out: Float32Array, inp: Float32Array, N: number): void;
  reluBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, N: number): void;
  sigmoidForward(out: Float32Array, inp: Float32Array, N: number): void;
  sigmoidBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, N: number): void;
  tanhForward(out: Float32Array, inp: Float32Array, N: number): void;
  tanhBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, N: number): void;
  softmaxCrossEntropy(
    dlogits: Float32Array | null,
    logits: Float32Array,
    labels: Float32Array,
    B: number,
    K: number,
  ): LossStats;
  meanSquaredError(
    dout: Float32Array | null,
    out: Float32Array,
    targets: Float32Array,
    B: number,
    T: number,
  ): LossStats;
}

/** The plain-JS set: any Float32Array is addressable, allocation is `new Float32Array`. */
export const jsKernels: KernelSet = {
  name: 'js',
  alloc: (n) => new Float32Array(n),
  addressable: () => true,
  matmulForward,
  matmulBackward: (dinp, dweight, dbias, dout, inp, weight, B, C, OC, accumulate = true) => {
    if (!accumulate) {
      dweight.fill(0, 0, OC * C);
      dbias.fill(0, 0, OC);
    }
    matmulBackward(dinp, dweight, dbias, dout, inp, weight, B, C, OC);
  },
  addInto: (out, inp, N) => {
    for (let i = 0; i < N; i++) out[i] += inp[i];
  },
  roundBf16,
  reluForward,
  reluBackward,
  sigmoidForward,
  sigmoidBackward,
  tanhForward,
  tanhBackward,
  softmaxCrossEntropy,
  meanSquaredError,
};

/** Whether this engine can run the given set (wasm needs WebAssembly with SIMD-128). */
export function kernelSetAvailable(name: KernelSetName): boolean {
  return name === 'js' || wasmKernelsAvailable();
}

/**
 * A kernel set able to hold `arenaFloats` floats of buffers. The js set is stateless
 * and shared; each wasm set is a module instance with its own memory of that size.
 */
export function createKernelSet(name: KernelSetName, arenaFloats: number): KernelSet {
  if (name === 'js') return jsKernels;
  const wasm = new WasmKernels(arenaFloats);
  return {
    name: 'wasm',
    alloc: (n) => wasm.alloc(n),
    addressable: (a) => wasm.addressable(a),
    matmulForward: (out, inp, weight, bias, B, C, OC) => wasm.matmulForward(out, inp, weight, bias, B, C, OC),
    matmulBackward: (dinp, dweight, dbias, dout, inp, weight, B, C, OC, accumulate = true) =>
      wasm.matmulBackward(dinp, dweight, dbias, dout, inp, weight, B, C, OC, accumulate),
    addInto: (out, inp, N) => wasm.addInto(out, inp, N),
    roundBf16: (buf, N) => wasm.roundBf16(buf, N),
    reluForward: (out, inp, N) => wasm.reluForward(out, inp, N),
    reluBackward: (dinp, dout, out, N) => wasm.reluBackward(dinp, dout, out, N),
    sigmoidForward: (out, inp, N) => wasm.sigmoidForward(out, inp, N),
    sigmoidBackward: (dinp, dout, out, N) => wasm.sigmoidBackward(dinp, dout, out, N),
    tanhForward: (out, inp, N) => wasm.tanhForward(out, inp, N),
    tanhBackward: (dinp, dout, out, N) => wasm.tanhBackward(dinp, dout, out, N),
    softmaxCrossEntropy,
    meanSquaredError,
  };
}
