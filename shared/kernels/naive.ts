// Plain, obviously-correct twins of the optimized kernels, kept as the reference the
// tests compare against. Matmul: forward, bias and input gradients use the same
// operation order as the fast kernels (bit-equal); the weight gradient sums all
// samples in one double accumulator, so it matches the fast kernel only to a stated
// tolerance. Convolution, pooling, leaky ReLU and dropout: each element is one double
// sum in the order the js kernels document (bit-equal to them), written as the
// definition reads, one output at a time with every bound checked in the loop.

import { dropoutMaskValue } from './dropout.js';

export function matmulForwardNaive(
  out: Float32Array,
  inp: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  B: number,
  C: number,
  OC: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < OC; o++) {
      let a = 0;
      for (let c = 0; c < C; c++) a += inp[b * C + c] * weight[o * C + c];
      out[b * OC + o] = a + bias[o];
    }
  }
}

export function matmulBackwardNaive(
  dinp: Float32Array | null,
  dweight: Float32Array,
  dbias: Float32Array,
  dout: Float32Array,
  inp: Float32Array,
  weight: Float32Array,
  B: number,
  C: number,
  OC: number,
): void {
  for (let o = 0; o < OC; o++) {
    let s = 0;
    for (let b = 0; b < B; b++) s += dout[b * OC + o];
    dbias[o] += s;
    for (let c = 0; c < C; c++) {
      let g = 0;
      for (let b = 0; b < B; b++) g += dout[b * OC + o] * inp[b * C + c];
      dweight[o * C + c] += g;
    }
  }
  if (dinp === null) return;
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      let a = 0;
      for (let o = 0; o < OC; o++) a += dout[b * OC + o] * weight[o * C + c];
      dinp[b * C + c] = a;
    }
  }
}

/** out (B, OC, OH, OW) from inp (B, C, H, W), weight (OC, C, KH, KW), bias (OC): the definition. */
export function conv2dForwardNaive(
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
): void {
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - KW) / stride) + 1;
  for (let b = 0; b < B; b++)
    for (let o = 0; o < OC; o++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let s = 0;
          for (let c = 0; c < C; c++)
            for (let kh = 0; kh < KH; kh++)
              for (let kw = 0; kw < KW; kw++) {
                const h = oh * stride - pad + kh;
                const w = ow * stride - pad + kw;
                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                s += inp[((b * C + c) * H + h) * W + w] * weight[((o * C + c) * KH + kh) * KW + kw];
              }
          out[((b * OC + o) * OH + oh) * OW + ow] = s + bias[o];
        }
}

/** Gradients of conv2dForwardNaive: dweight, dbias += (accumulate) or = (not), dinp = unless null. */
export function conv2dBackwardNaive(
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
  accumulate = true,
): void {
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - KW) / stride) + 1;
  const dy = (b: number, o: number, oh: number, ow: number): number => dout[((b * OC + o) * OH + oh) * OW + ow];
  for (let o = 0; o < OC; o++) {
    let s = 0;
    for (let b = 0; b < B; b++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) s += dy(b, o, oh, ow);
    dbias[o] = (accumulate ? dbias[o] : 0) + s;
    for (let c = 0; c < C; c++)
      for (let kh = 0; kh < KH; kh++)
        for (let kw = 0; kw < KW; kw++) {
          let g = 0;
          for (let b = 0; b < B; b++)
            for (let oh = 0; oh < OH; oh++)
              for (let ow = 0; ow < OW; ow++) {
                const h = oh * stride - pad + kh;
                const w = ow * stride - pad + kw;
                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                g += dy(b, o, oh, ow) * inp[((b * C + c) * H + h) * W + w];
              }
          const i = ((o * C + c) * KH + kh) * KW + kw;
          dweight[i] = (accumulate ? dweight[i] : 0) + g;
        }
  }
  if (dinp === null) return;
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) {
          let s = 0;
          for (let o = 0; o < OC; o++)
            for (let kh = 0; kh < KH; kh++)
              for (let kw = 0; kw < KW; kw++) {
                // The output (oh, ow) whose tap (kh, kw) reads (h, w), if any.
                const oh = (h + pad - kh) / stride;
                const ow = (w + pad - kw) / stride;
                if (!Number.isInteger(oh) || !Number.isInteger(ow) || oh < 0 || oh >= OH || ow < 0 || ow >= OW)
                  continue;
                s += dy(b, o, oh, ow) * weight[((o * C + c) * KH + kh) * KW + kw];
              }
          dinp[((b * C + c) * H + h) * W + w] = s;
        }
}

/** The flat index of window (p, oh, ow)'s winner: the first maximum, or the first NaN. */
function maxWinnerNaive(
  inp: Float32Array,
  p: number,
  H: number,
  W: number,
  K: number,
  S: number,
  oh: number,
  ow: number,
): number {
  let best = -1;
  for (let kh = 0; kh < K; kh++)
    for (let kw = 0; kw < K; kw++) {
      const i = (p * H + oh * S + kh) * W + ow * S + kw;
      if (best === -1) best = i;
      else if (Number.isNaN(inp[best])) continue;
      else if (Number.isNaN(inp[i]) || inp[i] > inp[best]) best = i;
    }
  return best;
}

export function maxpool2dForwardNaive(
  out: Float32Array,
  inp: Float32Array,
  B: number,
  C: number,
  H: number,
  W: number,
  K: number,
  S: number,
): void {
  const OH = Math.floor((H - K) / S) + 1;
  const OW = Math.floor((W - K) / S) + 1;
  for (let p = 0; p < B * C; p++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) out[(p * OH + oh) * OW + ow] = inp[maxWinnerNaive(inp, p, H, W, K, S, oh, ow)];
}

export function maxpool2dBackwardNaive(
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
  const OH = Math.floor((H - K) / S) + 1;
  const OW = Math.floor((W - K) / S) + 1;
  for (let i = 0; i < B * C * H * W; i++) dinp[i] = 0;
  for (let p = 0; p < B * C; p++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) dinp[maxWinnerNaive(inp, p, H, W, K, S, oh, ow)] += dout[(p * OH + oh) * OW + ow];
}

export function avgpool2dForwardNaive(
  out: Float32Array,
  inp: Float32Array,
  B: number,
  C: number,
  H: number,
  W: number,
  K: number,
  S: number,
): void {
  const OH = Math.floor((H - K) / S) + 1;
  const OW = Math.floor((W - K) / S) + 1;
  for (let p = 0; p < B * C; p++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        let s = 0;
        for (let kh = 0; kh < K; kh++) for (let kw = 0; kw < K; kw++) s += inp[(p * H + oh * S + kh) * W + ow * S + kw];
        out[(p * OH + oh) * OW + ow] = s / (K * K);
      }
}

export function avgpool2dBackwardNaive(
  dinp: Float32Array,
  dout: Float32Array,
  B: number,
  C: number,
  H: number,
  W: number,
  K: number,
  S: number,
): void {
  const OH = Math.floor((H - K) / S) + 1;
  const OW = Math.floor((W - K) / S) + 1;
  for (let i = 0; i < B * C * H * W; i++) dinp[i] = 0;
  for (let p = 0; p < B * C; p++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++)
        for (let kh = 0; kh < K; kh++)
          for (let kw = 0; kw < K; kw++)
            dinp[(p * H + oh * S + kh) * W + ow * S + kw] += Math.fround(dout[(p * OH + oh) * OW + ow] / (K * K));
}

export function leakyReluForwardNaive(out: Float32Array, inp: Float32Array, N: number, slope: number): void {
  for (let i = 0; i < N; i++) out[i] = inp[i] > 0 ? inp[i] : Math.fround(inp[i] * Math.fround(slope));
}

export function leakyReluBackwardNaive(
  dinp: Float32Array,
  dout: Float32Array,
  inp: Float32Array,
  N: number,
  slope: number,
): void {
  for (let i = 0; i < N; i++) dinp[i] = inp[i] > 0 ? dout[i] : Math.fround(dout[i] * Math.fround(slope));
}

/** out (B, N) = inp · mask, the mask read one value at a time from dropoutMaskValue. */
export function dropoutForwardNaive(
  out: Float32Array,
  inp: Float32Array,
  B: number,
  N: number,
  p: number,
  seed: number,
  step: number,
  sampleIndices: ArrayLike<number>,
): void {
  for (let b = 0; b < B; b++)
    for (let i = 0; i < N; i++) out[b * N + i] = inp[b * N + i] * dropoutMaskValue(p, seed, step, sampleIndices[b], i);
}
export const dropoutBackwardNaive = dropoutForwardNaive;
