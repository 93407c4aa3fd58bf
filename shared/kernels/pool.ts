// Max and average pooling over NCHW Float32Arrays, forward and backward: a K×K window
// moved by S, no padding, no ceil mode, so OH = floor((H − K) / S) + 1 (PyTorch's
// nn.MaxPool2d / nn.AvgPool2d with padding 0). These are the js set's; the wasm set
// runs a SIMD port of max pooling (wasm/kernels.wat: comparisons and selects only, the
// same bits) and these average-pooling functions, so pooling gives the same bits in both.
//
// Max pooling's rule for ties and NaN, which backward relies on when it recomputes the
// argmax from the input (nothing is stored between the passes):
//   - ties: the FIRST maximum in row-major window order wins (a later equal value does not);
//   - NaN: a NaN in the window is the maximum (the output is NaN, as in PyTorch), and the
//     first NaN in window order receives the gradient.

/** The output height (or width) of a pooling window K moved by S over H. */
export function poolOutSize(H: number, K: number, S: number): number {
  return Math.floor((H - K) / S) + 1;
}

/** Offset (within one (H, W) plane) of the window's winner: first maximum, or first NaN. */
function argmaxInWindow(plane: Float32Array, base: number, W: number, K: number): number {
  let best = base;
  let m = plane[base];
  for (let kh = 0; kh < K; kh++) {
    const r = base + kh * W;
    for (let kw = 0; kw < K; kw++) {
      const v = plane[r + kw];
      // v > m: strictly greater, so the first of equal maxima stays; a NaN v while m is a
      // number: the first NaN takes over, and once m is NaN nothing does.
      if (v > m || (Number.isNaN(v) && !Number.isNaN(m))) {
        m = v;
        best = r + kw;
      }
    }
  }
  return best;
}

/**
 * out[b, c, oh, ow] = max over the window at (oh·S, ow·S)
 * out (B, C, OH, OW), inp (B, C, H, W)
 */
export function maxpool2dForward(
  out: Float32Array,
  inp: Float32Array,
  B: number,
  C: number,
  H: number,
  W: number,
  K: number,
  S: number,
): void {
  const OH = poolOutSize(H, K, S);
  const OW = poolOutSize(W, K, S);
  for (let p = 0; p < B * C; p++) {
    const x0 = p * H * W;
    const y0 = p * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) out[y0 + oh * OW + ow] = inp[argmaxInWindow(inp, x0 + oh * S * W + ow * S, W, K)];
    }
  }
}

/**
 * dinp (B, C, H, W) = each dout (B, C, OH, OW) routed to its window's winner (recomputed
 * from inp (B, C, H, W)); dinp is overwritten, and where windows overlap the
 * contributions are added in float32 in output order.
 */
export function maxpool2dBackward(
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
  const OH = poolOutSize(H, K, S);
  const OW = poolOutSize(W, K, S);
  dinp.fill(0, 0, B * C * H * W);
  for (let p = 0; p < B * C; p++) {
    const x0 = p * H * W;
    const y0 = p * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++)
        dinp[argmaxInWindow(inp, x0 + oh * S * W + ow * S, W, K)] += dout[y0 + oh * OW + ow];
    }
  }
}

/**
 * out[b, c, oh, ow] = (Σ window) / K², the sum in double in row-major window order, rounded once.
 * out (B, C, OH, OW), inp (B, C, H, W)
 */
export function avgpool2dForward(
  out: Float32Array,
  inp: Float32Array,
  B: number,
  C: number,
  H: number,
  W: number,
  K: number,
  S: number,
): void {
  const OH = poolOutSize(H, K, S);
  const OW = poolOutSize(W, K, S);
  const KK = K * K;
  for (let p = 0; p < B * C; p++) {
    const x0 = p * H * W;
    const y0 = p * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const base = x0 + oh * S * W + ow * S;
        let s = 0;
        for (let kh = 0; kh < K; kh++) for (let kw = 0; kw < K; kw++) s += inp[base + kh * W + kw];
        out[y0 + oh * OW + ow] = s / KK;
      }
    }
  }
}

/**
 * dinp (B, C, H, W): every input of a window gains fround(dout / K²) of it, added in float32
 * in output order (dinp is overwritten; inputs no window covers get 0).
 * dout (B, C, OH, OW)
 */
export function avgpool2dBackward(
  dinp: Float32Array,
  dout: Float32Array,
  B: number,
  C: number,
  H: number,
  W: number,
  K: number,
  S: number,
): void {
  const OH = poolOutSize(H, K, S);
  const OW = poolOutSize(W, K, S);
  const KK = K * K;
  dinp.fill(0, 0, B * C * H * W);
  for (let p = 0; p < B * C; p++) {
    const x0 = p * H * W;
    const y0 = p * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const g = Math.fround(dout[y0 + oh * OW + ow] / KK);
        const base = x0 + oh * S * W + ow * S;
        for (let kh = 0; kh < K; kh++) for (let kw = 0; kw < K; kw++) dinp[base + kh * W + kw] += g;
      }
    }
  }
}
