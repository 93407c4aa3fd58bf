// Loads the WebAssembly SIMD kernels (kernels.wat, embedded by the build as base64 in
// module.generated.ts, so Node and the browser's Web Worker load the same bytes with
// neither a file read nor a fetch) and gives them a Float32Array face.
//
// Each instance owns one WebAssembly.Memory sized once, at construction, with
// maximum = initial: it can never grow, so the Float32Array views handed out by
// `alloc` never detach (a grown memory would detach them, and re-created views on
// the JS side are a silent ~20x slowdown). Kernels take views of that memory only;
// anything else is a caller bug and throws.

import { convOutSize } from '../conv.js';
import { poolOutSize } from '../pool.js';
import { KERNELS_WASM_BASE64 } from './module.generated.js';

interface KernelExports {
  matmul_forward(out: number, inp: number, w: number, bias: number, B: number, C: number, OC: number): void;
  matmul_backward_weight(
    dw: number,
    dbias: number,
    dout: number,
    inp: number,
    B: number,
    C: number,
    OC: number,
    accumulate: number,
  ): void;
  matmul_backward_input(dinp: number, dout: number, w: number, B: number, C: number, OC: number): void;
  conv2d_forward(
    out: number,
    inp: number,
    w: number,
    bias: number,
    B: number,
    C: number,
    H: number,
    W: number,
    OC: number,
    KH: number,
    KW: number,
    S: number,
    pad: number,
    scratch: number,
  ): void;
  conv2d_backward_weight(
    dw: number,
    dbias: number,
    dout: number,
    inp: number,
    B: number,
    C: number,
    H: number,
    W: number,
    OC: number,
    KH: number,
    KW: number,
    S: number,
    pad: number,
    scratch: number,
    accumulate: number,
    allowDirect: number,
  ): void;
  conv2d_backward_input(
    dinp: number,
    dout: number,
    w: number,
    B: number,
    C: number,
    H: number,
    W: number,
    OC: number,
    KH: number,
    KW: number,
    S: number,
    pad: number,
    scratch: number,
    allowSparse: number,
  ): void;
  conv2d_forward_direct(
    out: number,
    inp: number,
    w: number,
    bias: number,
    B: number,
    C: number,
    H: number,
    W: number,
    OC: number,
    KH: number,
    KW: number,
    panel: number,
  ): void;
  maxpool2d_forward(out: number, inp: number, B: number, C: number, H: number, W: number, K: number, S: number): void;
  maxpool2d_backward(
    dinp: number,
    dout: number,
    inp: number,
    B: number,
    C: number,
    H: number,
    W: number,
    K: number,
    S: number,
  ): void;
  leaky_relu_forward(out: number, inp: number, N: number, a: number): void;
  leaky_relu_backward(dinp: number, dout: number, inp: number, N: number, a: number): void;
  relu_forward(out: number, inp: number, N: number): void;
  relu_backward(dinp: number, dout: number, out: number, N: number): void;
  add_into(out: number, inp: number, N: number): void;
  round_bf16(buf: number, N: number): void;
  sigmoid_forward(out: number, inp: number, N: number): void;
  sigmoid_backward(dinp: number, dout: number, out: number, N: number): void;
  tanh_forward(out: number, inp: number, N: number): void;
  tanh_backward(dinp: number, dout: number, out: number, N: number): void;
  all_finite(buf: number, N: number): number;
  sgd_step(
    params: number,
    buf: number,
    sum: number,
    N: number,
    count: number,
    lr: number,
    mu: number,
    wd: number,
    rule: number,
  ): void;
}

/**
 * Which update sgd_step applies (kernels.wat): plain SGD, the first step of momentum
 * (the buffer starts as the gradient) or of Nesterov momentum, and the later steps.
 */
export type SgdRule = 'plain' | 'momentumFirst' | 'nesterovFirst' | 'momentum' | 'nesterov';
const SGD_RULES: Record<SgdRule, number> = { plain: 0, momentumFirst: 1, nesterovFirst: 2, momentum: 3, nesterov: 4 };

const PAGE = 65536;
/** Arena blocks start on 64-byte boundaries (a cache line; v128 needs only 16). */
const ALIGN = 64;

let compiled: WebAssembly.Module | null | undefined;

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const text = atob(KERNELS_WASM_BASE64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** The compiled module, or null when this engine has no WebAssembly SIMD-128. */
function kernelsModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = moduleBytes();
    // Synchronous compilation is allowed in Node and in Web Workers (where the kernels run).
    compiled = typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

/** Whether WebAssembly with SIMD-128 is available (the module validates and compiles). */
export function wasmKernelsAvailable(): boolean {
  try {
    return kernelsModule() !== null;
  } catch {
    return false;
  }
}

export class WasmKernels {
  readonly memory: WebAssembly.Memory;
  readonly #k: KernelExports;
  readonly #buffer: ArrayBuffer;
  /** Next free byte of the arena. */
  #next = 0;

  constructor(arenaFloats: number) {
    const module = kernelsModule();
    if (module === null)
      throw new Error('this JavaScript engine has no WebAssembly SIMD-128: the wasm kernel set cannot run here');
    const pages = Math.max(1, Math.ceil((arenaFloats * 4) / PAGE));
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.#k = new WebAssembly.Instance(module, { env: { memory: this.memory } }).exports as unknown as KernelExports;
    this.#buffer = this.memory.buffer;
  }

  /** Bytes of arena still free. */
  get free(): number {
    return this.#buffer.byteLength - this.#next;
  }

  /** A zeroed view of n floats of the arena; throws when the arena is used up. */
  alloc(n: number): Float32Array {
    const bytes = n * 4;
    if (bytes > this.free)
      throw new RangeError(
        `wasm kernel arena: ${n} floats requested, ${Math.floor(this.free / 4)} left of ${this.#buffer.byteLength / 4}`,
      );
    const view = new Float32Array(this.#buffer, this.#next, n);
    this.#next += Math.ceil(bytes / ALIGN) * ALIGN;
    return view;
  }

  addressable(a: Float32Array): boolean {
    return a.buffer === this.#buffer;
  }

  /** The byte address of `a`, checked to be an arena view of at least n floats (the kernels trust both). */
  #ptr(a: Float32Array, n: number, what: string): number {
    if (a.buffer !== this.#buffer)
      throw new Error(`wasm kernels: ${what} is not a view of the kernel arena (allocate it with alloc)`);
    if (a.length < n) throw new RangeError(`wasm kernels: ${what} holds ${a.length} floats, the shape needs ${n}`);
    return a.byteOffset;
  }

  matmulForward(
    out: Float32Array,
    inp: Float32Array,
    weight: Float32Array,
    bias: Float32Array,
    B: number,
    C: number,
    OC: number,
  ): void {
    this.#k.matmul_forward(
      this.#ptr(out, B * OC, 'out'),
      this.#ptr(inp, B * C, 'inp'),
      this.#ptr(weight, OC * C, 'weight'),
      this.#ptr(bias, OC, 'bias'),
      B,
      C,
      OC,
    );
  }

  /** accumulate false: dweight and dbias are overwritten with 0 + the sums (the bits of zeroing first). */
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
    accumulate = true,
  ): void {
    const pdout = this.#ptr(dout, B * OC, 'dout');
    this.#k.matmul_backward_weight(
      this.#ptr(dweight, OC * C, 'dweight'),
      this.#ptr(dbias, OC, 'dbias'),
      pdout,
      this.#ptr(inp, B * C, 'inp'),
      B,
      C,
      OC,
      accumulate ? 1 : 0,
    );
    if (dinp !== null)
      this.#k.matmul_backward_input(
        this.#ptr(dinp, B * C, 'dinp'),
        pdout,
        this.#ptr(weight, OC * C, 'weight'),
        B,
        C,
        OC,
      );
  }

  /**
   * Floats of scratch the convolution kernels need: im2col (K·P, K = C·KH·KW taps, P = OH·OW
   * positions of one sample), and for the weight gradient doutᵀ (P·OC) and its sum (K·OC).
   */
  static conv2dScratchFloats(
    C: number,
    H: number,
    W: number,
    OC: number,
    KH: number,
    KW: number,
    stride: number,
    pad: number,
  ): number {
    const P = convOutSize(H, KH, stride, pad) * convOutSize(W, KW, stride, pad);
    const K = C * KH * KW;
    return K * P + P * OC + K * OC;
  }

  /**
   * Whether conv2dForwardDirect handles this shape: stride 1, no padding, OW a multiple of 8
   * and OC of 4 (its tile, 4 outputs × 8 positions of one row, has no edge code).
   */
  static directConvApplies(W: number, OC: number, KW: number, stride: number, pad: number): boolean {
    return stride === 1 && pad === 0 && (W - KW + 1) % 8 === 0 && OC % 4 === 0;
  }

  /**
   * out (B, OC, OH, OW) = conv(inp, weight) + bias: direct convolution where it applies
   * (see directConvApplies), im2col + GEMM elsewhere; both give the same bits.
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
  ): void {
    if (WasmKernels.directConvApplies(W, OC, KW, stride, pad))
      this.conv2dForwardDirect(out, inp, weight, bias, B, C, H, W, OC, KH, KW, scratch);
    else this.conv2dForwardIm2col(out, inp, weight, bias, B, C, H, W, OC, KH, KW, stride, pad, scratch);
  }

  /** conv2dForward by im2col (into scratch) and a GEMM per sample: any shape. */
  conv2dForwardIm2col(
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
  ): void {
    const P = convOutSize(H, KH, stride, pad) * convOutSize(W, KW, stride, pad);
    const K = C * KH * KW;
    this.#k.conv2d_forward(
      this.#ptr(out, B * OC * P, 'out'),
      this.#ptr(inp, B * C * H * W, 'inp'),
      this.#ptr(weight, OC * K, 'weight'),
      this.#ptr(bias, OC, 'bias'),
      B,
      C,
      H,
      W,
      OC,
      KH,
      KW,
      stride,
      pad,
      this.#ptr(scratch, K * P, 'scratch'),
    );
  }

  /**
   * conv2dForward by direct convolution (stride 1, no padding; throws where directConvApplies is
   * false); scratch holds the packed weight (OC·C·KH·KW floats).
   */
  conv2dForwardDirect(
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
    scratch: Float32Array,
  ): void {
    if (!WasmKernels.directConvApplies(W, OC, KW, 1, 0))
      throw new RangeError(`direct convolution needs OW % 8 = 0 and OC % 4 = 0, got OW ${W - KW + 1}, OC ${OC}`);
    const P = (H - KH + 1) * (W - KW + 1);
    this.#k.conv2d_forward_direct(
      this.#ptr(out, B * OC * P, 'out'),
      this.#ptr(inp, B * C * H * W, 'inp'),
      this.#ptr(weight, OC * C * KH * KW, 'weight'),
      this.#ptr(bias, OC, 'bias'),
      B,
      C,
      H,
      W,
      OC,
      KH,
      KW,
      this.#ptr(scratch, OC * C * KH * KW, 'scratch'),
    );
  }

  /**
   * accumulate false: dweight and dbias are overwritten with 0 + the sums (the bits of zeroing first).
   * method 'auto' sums the weight gradient over dout's nonzeros alone where C·KH·KW ≥ 32, else
   * reads its col operand straight from the image where it can (stride 1, no padding,
   * OC % 8 = 0): for finite values the bits of 'im2col', which always builds col in scratch
   * and sums densely. Where C·KH·KW ≥ 32 'auto' computes the input gradient from dout's
   * nonzeros too (the same sums, added into dinp in another order), where 'im2col' runs the
   * dense GEMM and col2im.
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
    accumulate = true,
    method: 'auto' | 'im2col' = 'auto',
  ): void {
    const P = convOutSize(H, KH, stride, pad) * convOutSize(W, KW, stride, pad);
    const K = C * KH * KW;
    const pdout = this.#ptr(dout, B * OC * P, 'dout');
    const pscratch = this.#ptr(scratch, WasmKernels.conv2dScratchFloats(C, H, W, OC, KH, KW, stride, pad), 'scratch');
    this.#k.conv2d_backward_weight(
      this.#ptr(dweight, OC * K, 'dweight'),
      this.#ptr(dbias, OC, 'dbias'),
      pdout,
      this.#ptr(inp, B * C * H * W, 'inp'),
      B,
      C,
      H,
      W,
      OC,
      KH,
      KW,
      stride,
      pad,
      pscratch,
      accumulate ? 1 : 0,
      method === 'auto' ? 1 : 0,
    );
    if (dinp !== null)
      this.#k.conv2d_backward_input(
        this.#ptr(dinp, B * C * H * W, 'dinp'),
        pdout,
        this.#ptr(weight, OC * K, 'weight'),
        B,
        C,
        H,
        W,
        OC,
        KH,
        KW,
        stride,
        pad,
        pscratch,
        method === 'auto' ? 1 : 0,
      );
  }

  /** The max pooling of pool.ts, bit for bit (first maximum wins, NaN wins). */
  maxpool2dForward(
    out: Float32Array,
    inp: Float32Array,
    B: number,
    C: number,
    H: number,
    W: number,
    K: number,
    S: number,
  ): void {
    const M = B * C * poolOutSize(H, K, S) * poolOutSize(W, K, S);
    this.#k.maxpool2d_forward(this.#ptr(out, M, 'out'), this.#ptr(inp, B * C * H * W, 'inp'), B, C, H, W, K, S);
  }

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
  ): void {
    const N = B * C * H * W;
    const M = B * C * poolOutSize(H, K, S) * poolOutSize(W, K, S);
    this.#k.maxpool2d_backward(
      this.#ptr(dinp, N, 'dinp'),
      this.#ptr(dout, M, 'dout'),
      this.#ptr(inp, N, 'inp'),
      B,
      C,
      H,
      W,
      K,
      S,
    );
  }

  /** The leaky ReLU of activations.ts, bit for bit (slope rounded to float32 here). */
  leakyReluForward(out: Float32Array, inp: Float32Array, N: number, slope: number): void {
    this.#k.leaky_relu_forward(this.#ptr(out, N, 'out'), this.#ptr(inp, N, 'inp'), N, Math.fround(slope));
  }

  leakyReluBackward(dinp: Float32Array, dout: Float32Array, inp: Float32Array, N: number, slope: number): void {
    this.#k.leaky_relu_backward(
      this.#ptr(dinp, N, 'dinp'),
      this.#ptr(dout, N, 'dout'),
      this.#ptr(inp, N, 'inp'),
      N,
      Math.fround(slope),
    );
  }

  reluForward(out: Float32Array, inp: Float32Array, N: number): void {
    this.#k.relu_forward(this.#ptr(out, N, 'out'), this.#ptr(inp, N, 'inp'), N);
  }

  addInto(out: Float32Array, inp: Float32Array, N: number): void {
    this.#k.add_into(this.#ptr(out, N, 'out'), this.#ptr(inp, N, 'inp'), N);
  }

  roundBf16(buf: Float32Array, N: number): void {
    this.#k.round_bf16(this.#ptr(buf, N, 'buf'), N);
  }

  reluBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, N: number): void {
    this.#k.relu_backward(this.#ptr(dinp, N, 'dinp'), this.#ptr(dout, N, 'dout'), this.#ptr(out, N, 'out'), N);
  }

  sigmoidForward(out: Float32Array, inp: Float32Array, N: number): void {
    this.#k.sigmoid_forward(this.#ptr(out, N, 'out'), this.#ptr(inp, N, 'inp'), N);
  }

  sigmoidBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, N: number): void {
    this.#k.sigmoid_backward(this.#ptr(dinp, N, 'dinp'), this.#ptr(dout, N, 'dout'), this.#ptr(out, N, 'out'), N);
  }

  tanhForward(out: Float32Array, inp: Float32Array, N: number): void {
    this.#k.tanh_forward(this.#ptr(out, N, 'out'), this.#ptr(inp, N, 'inp'), N);
  }

  tanhBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, N: number): void {
    this.#k.tanh_backward(this.#ptr(dinp, N, 'dinp'), this.#ptr(dout, N, 'dout'), this.#ptr(out, N, 'out'), N);
  }

  /** Whether the first N floats of buf are all finite. */
  allFinite(buf: Float32Array, N: number): boolean {
    return this.#k.all_finite(this.#ptr(buf, N, 'buf'), N) === 1;
  }

  /**
   * One SGD step of shared/optim/sgd.ts on the mean sum / count, bit for bit:
   * params (N) and momentum (N) updated in place (momentum untouched by 'plain'), sum (N)
   * the gradient summed over `count` samples, an integer in [1, 2^24] (exact in float32).
   * lr, momentum and weightDecay are used as the doubles they are.
   */
  sgdStep(
    params: Float32Array,
    momentum: Float32Array,
    sum: Float32Array,
    N: number,
    count: number,
    rule: SgdRule,
    lr: number,
    mu: number,
    weightDecay: number,
  ): void {
    if (!(Number.isInteger(count) && count >= 1 && count <= 2 ** 24))
      throw new RangeError(`sgd step: the sample count must be an integer in [1, 2^24], got ${count}`);
    this.#k.sgd_step(
      this.#ptr(params, N, 'params'),
      this.#ptr(momentum, N, 'momentum'),
      this.#ptr(sum, N, 'sum'),
      N,
      count,
      lr,
      mu,
      weightDecay,
      SGD_RULES[rule],
    );
  }
}
