// A kernel set: the dense, convolution, pooling, activation, dropout and loss kernels
// a Network runs, plus the memory they can address. Two sets exist, and they are NOT interchangeable
// within a run: `js` (the Float32Array kernels of matmul.ts, accumulating in double)
// and `wasm` (the SIMD kernels of wasm/kernels.wat, accumulating in f32x4 lanes).
// Each gives the same bits on every engine, but not the same bits as the other, so
// the set is part of the run's configuration and every worker uses the one the
// coordinator names in its welcome (a worker that cannot run it refuses).
//
// Only the matmuls and the convolutions differ in bits. ReLU, leaky ReLU, sigmoid,
// tanh (the wasm ones are ports of transcendental.ts, f64 operation for f64
// operation), max pooling (comparisons and selects) and the tree's add give the same
// bits in both sets; average pooling, dropout (an integer hash and one product per
// value) and the loss heads are the same JS functions in both.
//
// Shapes are PyTorch's: activations NCHW, conv weight (OC, C, KH, KW). Convolution
// output OH = floor((H + 2·pad − KH) / stride) + 1; pooling has no padding and no
// ceil mode, OH = floor((H − K) / S) + 1.
//
// Scratch: the convolution kernels may need working memory. A Network asks
// conv2dScratchFloats (or conv2dScratchFloatsOf, before the set exists) for each of
// its conv layers at its largest batch, allocates one buffer of the largest answer
// with `alloc` at construction (when the answer is 0 it may pass an empty array) and
// passes it to every conv2dForward and conv2dBackward call; a scratch sized for B
// samples serves any smaller batch. Scratch holds nothing between calls.

import { matmulBackward, matmulForward } from './matmul.js';
import {
  reluBackward,
  reluForward,
  sigmoidBackward,
  sigmoidForward,
  tanhBackward,
  tanhForward,
} from './activations.js';
import { leakyReluBackward, leakyReluForward } from './activations.js';
import { conv2dBackward, conv2dForward } from './conv.js';
import { dropoutBackward, dropoutForward } from './dropout.js';
import { avgpool2dBackward, avgpool2dForward, maxpool2dBackward, maxpool2dForward } from './pool.js';
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
  /** out = x > 0 ? x : x·slope (slope rounded to float32; PyTorch's default 0.01). */
  leakyReluForward(out: Float32Array, inp: Float32Array, N: number, slope: number): void;
  /** dinp = x > 0 ? dout : dout·slope, from the forward *input* x (the output's sign is ambiguous at 0). */
  leakyReluBackward(dinp: Float32Array, dout: Float32Array, inp: Float32Array, N: number, slope: number): void;
  /**
   * Floats of scratch conv2dForward and conv2dBackward need for this layer at batch B
   * (0: none). See the header: one buffer of the largest answer, allocated once.
   */
  conv2dScratchFloats(
    B: number,
    C: number,
    H: number,
    W: number,
    OC: number,
    KH: number,
    KW: number,
    stride: number,
    pad: number,
  ): number;
  /**
   * out (B, OC, OH, OW) = conv(inp (B, C, H, W), weight (OC, C, KH, KW)) + bias (OC), zero padding.
   * scratch: at least conv2dScratchFloats(...) floats, contents ignored and clobbered.
   */
  conv2dForward(
    out: Float32Array,
    inp: Float32Array,
    weight: Float32Array,
    bias: Float32Array,
    B: number,
    C: number,
    H: number,
    W: number,
    OC: number,
    KH: number,
    KW: number,
    stride: number,
    pad: number,
    scratch: Float32Array,
  ): void;
  /**
   * dweight (OC, C, KH, KW) += Σ dout·inp, dbias (OC) += Σ dout, dinp (B, C, H, W) = the input
   * gradient unless null (a first layer: not computed). dout (B, OC, OH, OW).
   * accumulate false: dweight and dbias get the sums as if they had been zeroed first (same bits).
   */
  conv2dBackward(
    dinp: Float32Array | null,
    dweight: Float32Array,
    dbias: Float32Array,
    dout: Float32Array,
    inp: Float32Array,
    weight: Float32Array,
    B: number,
    C: number,
    H: number,
    W: number,
    OC: number,
    KH: number,
    KW: number,
    stride: number,
    pad: number,
    scratch: Float32Array,
    accumulate?: boolean,
  ): void;
  /**
   * out (B, C, OH, OW) = the max of each K×K window moved by S over inp (B, C, H, W).
   * Ties: the first maximum in row-major window order wins; a NaN in the window is the
   * maximum (output NaN) and the first NaN wins.
   */
  maxpool2dForward(
    out: Float32Array,
    inp: Float32Array,
    B: number,
    C: number,
    H: number,
    W: number,
    K: number,
    S: number,
  ): void;
  /** dinp (B, C, H, W) overwritten: each dout (B, C, OH, OW) added to its window's winner, recomputed from inp. */
  maxpool2dBackward(
    dinp: Float32Array,
    dout: Float32Array,
    inp: Float32Array,
    B: number,
    C: number,
    H: number,
    W: number,
    K: number,
    S: number,
  ): void;
  /** out (B, C, OH, OW) = the mean of each K×K window moved by S over inp (B, C, H, W). */
  avgpool2dForward(
    out: Float32Array,
    inp: Float32Array,
    B: number,
    C: number,
    H: number,
    W: number,
    K: number,
    S: number,
  ): void;
  /** dinp (B, C, H, W) overwritten: each window's inputs gain dout (B, C, OH, OW) / K². */
  avgpool2dBackward(
    dinp: Float32Array,
    dout: Float32Array,
    B: number,
    C: number,
    H: number,
    W: number,
    K: number,
    S: number,
  ): void;
  /**
   * out (B, N) = inp (B, N) with each value dropped (0) with probability p or scaled by
   * 1 / (1 − p); the mask is a hash of (seed, step, sampleIndices[b], feature), the same
   * whichever worker computes the sample. seed: dropoutLayerSeed(run seed, layer index).
   */
  dropoutForward(
    out: Float32Array,
    inp: Float32Array,
    B: number,
    N: number,
    p: number,
    seed: number,
    step: number,
    sampleIndices: ArrayLike<number>,
  ): void;
  /** dinp (B, N) = dout (B, N) · the mask dropoutForward used with the same arguments (recomputed). */
  dropoutBackward(
    dinp: Float32Array,
    dout: Float32Array,
    B: number,
    N: number,
    p: number,
    seed: number,
    step: number,
    sampleIndices: ArrayLike<number>,
  ): void;
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
  leakyReluForward,
  leakyReluBackward,
  conv2dScratchFloats: () => 0,
  conv2dForward: (out, inp, weight, bias, B, C, H, W, OC, KH, KW, stride, pad) =>
    conv2dForward(out, inp, weight, bias, B, C, H, W, OC, KH, KW, stride, pad),
  conv2dBackward: (
    dinp,
    dweight,
    dbias,
    dout,
    inp,
    weight,
    B,
    C,
    H,
    W,
    OC,
    KH,
    KW,
    stride,
    pad,
    _scratch,
    accumulate,
  ) => conv2dBackward(dinp, dweight, dbias, dout, inp, weight, B, C, H, W, OC, KH, KW, stride, pad, accumulate),
  maxpool2dForward,
  maxpool2dBackward,
  avgpool2dForward,
  avgpool2dBackward,
  dropoutForward,
  dropoutBackward,
  softmaxCrossEntropy,
  meanSquaredError,
};

/**
 * The conv2dScratchFloats answer of the named set, without a set: what a Network needs to
 * size its arena before it creates the set (a wasm set's memory is sized at construction).
 */
export function conv2dScratchFloatsOf(
  name: KernelSetName,
  _B: number,
  C: number,
  H: number,
  W: number,
  OC: number,
  KH: number,
  KW: number,
  stride: number,
  pad: number,
): number {
  return name === 'js' ? 0 : WasmKernels.conv2dScratchFloats(C, H, W, OC, KH, KW, stride, pad);
}

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
    leakyReluForward: (out, inp, N, slope) => wasm.leakyReluForward(out, inp, N, slope),
    leakyReluBackward: (dinp, dout, inp, N, slope) => wasm.leakyReluBackward(dinp, dout, inp, N, slope),
    conv2dScratchFloats: (B, C, H, W, OC, KH, KW, stride, pad) =>
      conv2dScratchFloatsOf('wasm', B, C, H, W, OC, KH, KW, stride, pad),
    conv2dForward: (out, inp, weight, bias, B, C, H, W, OC, KH, KW, stride, pad, scratch) =>
      wasm.conv2dForward(out, inp, weight, bias, B, C, H, W, OC, KH, KW, stride, pad, scratch),
    conv2dBackward: (
      dinp,
      dweight,
      dbias,
      dout,
      inp,
      weight,
      B,
      C,
      H,
      W,
      OC,
      KH,
      KW,
      stride,
      pad,
      scratch,
      accumulate = true,
    ) =>
      wasm.conv2dBackward(
        dinp,
        dweight,
        dbias,
        dout,
        inp,
        weight,
        B,
        C,
        H,
        W,
        OC,
        KH,
        KW,
        stride,
        pad,
        scratch,
        accumulate,
      ),
    maxpool2dForward: (out, inp, B, C, H, W, K, S) => wasm.maxpool2dForward(out, inp, B, C, H, W, K, S),
    maxpool2dBackward: (dinp, dout, inp, B, C, H, W, K, S) => wasm.maxpool2dBackward(dinp, dout, inp, B, C, H, W, K, S),
    avgpool2dForward,
    avgpool2dBackward,
    dropoutForward,
    dropoutBackward,
    softmaxCrossEntropy,
    meanSquaredError,
  };
}
