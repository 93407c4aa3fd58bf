// 2-D convolution over NCHW Float32Arrays, the js kernel set's: forward and both
// gradients, outputs first and sizes last, nothing allocated (the js set needs no
// scratch). Weights are [OC, C, KH, KW] as PyTorch's nn.Conv2d stores them; padding
// is zeros; OH = floor((H + 2·pad − KH) / stride) + 1, and OW likewise.
//
// As in matmul.ts every output element is one fixed sequence of double operations
// over the taps that fall inside the image (padding taps are skipped, not multiplied
// by zero), so these give the same bits on every engine and the same bits as the
// straight loops of naive.ts; the loops below only hoist the bounds out of the taps
// and compute four outputs at a time where they share operands.

/** The output height (or width) of a convolution, PyTorch's formula. */
export function convOutSize(H: number, K: number, stride: number, pad: number): number {
  return Math.floor((H + 2 * pad - K) / stride) + 1;
}

/**
 * out[b, o, oh, ow] = Σ_{c, kh, kw} inp[b, c, oh·S − P + kh, ow·S − P + kw]·weight[o, c, kh, kw] + bias[o]
 * out (B, OC, OH, OW), inp (B, C, H, W), weight (OC, C, KH, KW), bias (OC)
 * The sum runs in double in (c, kh, kw) order over the taps inside the image, then bias.
 */
export function conv2dForward(
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
  const OH = convOutSize(H, KH, stride, pad);
  const OW = convOutSize(W, KW, stride, pad);
  const HW = H * W;
  const KK = KH * KW;
  // Positions [owIn, owEnd) have every kw tap inside the row: there, 4 positions at a time
  // share each weight load (4 accumulators, each still its own (c, kh, kw) sequence).
  const owIn = Math.min(OW, Math.ceil(pad / stride));
  const owEnd = Math.max(owIn, Math.min(OW, Math.floor((W + pad - KW) / stride) + 1));
  for (let b = 0; b < B; b++) {
    const x0 = b * C * HW;
    for (let o = 0; o < OC; o++) {
      const w0 = o * C * KK;
      const y0 = (b * OC + o) * OH * OW;
      for (let oh = 0; oh < OH; oh++) {
        const ih0 = oh * stride - pad;
        const khLo = Math.max(0, -ih0);
        const khHi = Math.min(KH, H - ih0);
        const yr = y0 + oh * OW;
        let ow = 0;
        for (; ow < OW; ow++) {
          if (ow >= owIn && ow + 4 <= owEnd) {
            const iw0 = ow * stride - pad;
            let s0 = 0,
              s1 = 0,
              s2 = 0,
              s3 = 0;
            for (let c = 0; c < C; c++) {
              const xc = x0 + c * HW + iw0;
              const wc = w0 + c * KK;
              for (let kh = khLo; kh < khHi; kh++) {
                const xr = xc + (ih0 + kh) * W;
                const wr = wc + kh * KW;
                for (let kw = 0; kw < KW; kw++) {
                  const v = weight[wr + kw];
                  const xi = xr + kw;
                  s0 += inp[xi] * v;
                  s1 += inp[xi + stride] * v;
                  s2 += inp[xi + 2 * stride] * v;
                  s3 += inp[xi + 3 * stride] * v;
                }
              }
            }
            out[yr + ow] = s0 + bias[o];
            out[yr + ow + 1] = s1 + bias[o];
            out[yr + ow + 2] = s2 + bias[o];
            out[yr + ow + 3] = s3 + bias[o];
            ow += 3;
            continue;
          }
          const iw0 = ow * stride - pad;
          const kwLo = Math.max(0, -iw0);
          const kwHi = Math.min(KW, W - iw0);
          let s = 0;
          for (let c = 0; c < C; c++) {
            const xc = x0 + c * HW + iw0;
            const wc = w0 + c * KK;
            for (let kh = khLo; kh < khHi; kh++) {
              const xr = xc + (ih0 + kh) * W;
              const wr = wc + kh * KW;
              for (let kw = kwLo; kw < kwHi; kw++) s += inp[xr + kw] * weight[wr + kw];
            }
          }
          out[yr + ow] = s + bias[o];
        }
      }
    }
  }
}

/**
 * Gradients of conv2dForward.
 * dinp (B, C, H, W) = the input gradient (overwritten), or null for a first layer (not computed);
 * dweight (OC, C, KH, KW) += Σ_{b, oh, ow} dout·inp at the tap, dbias (OC) += Σ_{b, oh, ow} dout;
 * dout (B, OC, OH, OW), inp (B, C, H, W), weight (OC, C, KH, KW).
 * accumulate false: dweight and dbias get 0 + the sums (the bits of zeroing first).
 * Each sum is taken in double, in (b, oh, ow) order for dweight and dbias and in
 * (o, kh, kw) order for dinp, and rounded to float32 once.
 */
export function conv2dBackward(
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
  const OH = convOutSize(H, KH, stride, pad);
  const OW = convOutSize(W, KW, stride, pad);
  const P = OH * OW;
  const HW = H * W;
  for (let o = 0; o < OC; o++) {
    let s = 0;
    for (let b = 0; b < B; b++) {
      const y0 = (b * OC + o) * P;
      for (let i = 0; i < P; i++) s += dout[y0 + i];
    }
    dbias[o] = (accumulate ? dbias[o] : 0) + s;
  }
  // Four output channels at a time share each input load; every dweight element keeps its
  // own (b, oh, ow) sequence, so the tile does not change a bit.
  for (let o = 0; o < OC; o += 4) {
    const n = Math.min(4, OC - o);
    for (let c = 0; c < C; c++) {
      for (let kh = 0; kh < KH; kh++) {
        // Output rows whose tap kh lands inside the image: 0 ≤ oh·S − P + kh < H.
        const ohLo = Math.max(0, Math.ceil((pad - kh) / stride));
        const ohHi = Math.min(OH, Math.floor((H - 1 + pad - kh) / stride) + 1);
        for (let kw = 0; kw < KW; kw++) {
          const owLo = Math.max(0, Math.ceil((pad - kw) / stride));
          const owHi = Math.min(OW, Math.floor((W - 1 + pad - kw) / stride) + 1);
          let s0 = 0,
            s1 = 0,
            s2 = 0,
            s3 = 0;
          for (let b = 0; b < B; b++) {
            const y0 = (b * OC + o) * P;
            const x0 = (b * C + c) * HW - pad * W - pad + kh * W + kw;
            for (let oh = ohLo; oh < ohHi; oh++) {
              const yr = y0 + oh * OW;
              const xr = x0 + oh * stride * W;
              if (n === 4) {
                for (let ow = owLo; ow < owHi; ow++) {
                  const x = inp[xr + ow * stride];
                  s0 += dout[yr + ow] * x;
                  s1 += dout[yr + P + ow] * x;
                  s2 += dout[yr + 2 * P + ow] * x;
                  s3 += dout[yr + 3 * P + ow] * x;
                }
              } else {
                for (let ow = owLo; ow < owHi; ow++) {
                  const x = inp[xr + ow * stride];
                  s0 += dout[yr + ow] * x;
                  if (n > 1) s1 += dout[yr + P + ow] * x;
                  if (n > 2) s2 += dout[yr + 2 * P + ow] * x;
                }
              }
            }
          }
          const i = ((o * C + c) * KH + kh) * KW + kw;
          const step = C * KH * KW;
          dweight[i] = (accumulate ? dweight[i] : 0) + s0;
          if (n > 1) dweight[i + step] = (accumulate ? dweight[i + step] : 0) + s1;
          if (n > 2) dweight[i + 2 * step] = (accumulate ? dweight[i + 2 * step] : 0) + s2;
          if (n > 3) dweight[i + 3 * step] = (accumulate ? dweight[i + 3 * step] : 0) + s3;
        }
      }
    }
  }
  if (dinp !== null) conv2dInputGradient(dinp, dout, weight, B, C, H, W, OC, KH, KW, stride, pad);
}

// dinp[b, c, h, w] = Σ_{o, kh, kw} dout[b, o, oh, ow]·weight[o, c, kh, kw] over the taps with
// oh·S − P + kh = h and ow·S − P + kw = w, in double in (o, kh, kw) order. The taps of a
// row h are kh ≡ h + P (mod S) between its first and last valid one, so no tap is tested;
// four channels at a time share each dout load.
function conv2dInputGradient(
  dinp: Float32Array,
  dout: Float32Array,
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
): void {
  const OH = convOutSize(H, KH, stride, pad);
  const OW = convOutSize(W, KW, stride, pad);
  const P = OH * OW;
  const KK = KH * KW;
  const CKK = C * KK;
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c += 4) {
      const n = Math.min(4, C - c);
      for (let h = 0; h < H; h++) {
        const t = h + pad;
        // kh = t − oh·S for oh from the largest valid (kh ≥ 0 smallest) down to the smallest.
        const khFirst = Math.max(t % stride, t - (OH - 1) * stride);
        const khLast = Math.min(KH - 1, t);
        for (let w = 0; w < W; w++) {
          const u = w + pad;
          const kwFirst = Math.max(u % stride, u - (OW - 1) * stride);
          const kwLast = Math.min(KW - 1, u);
          let s0 = 0,
            s1 = 0,
            s2 = 0,
            s3 = 0;
          for (let o = 0; o < OC; o++) {
            const y0 = (b * OC + o) * P;
            const w0 = o * CKK + c * KK;
            for (let kh = khFirst; kh <= khLast; kh += stride) {
              const yr = y0 + ((t - kh) / stride) * OW;
              const wr = w0 + kh * KW;
              for (let kw = kwFirst; kw <= kwLast; kw += stride) {
                const d = dout[yr + (u - kw) / stride];
                s0 += d * weight[wr + kw];
                if (n > 1) s1 += d * weight[wr + KK + kw];
                if (n > 2) s2 += d * weight[wr + 2 * KK + kw];
                if (n > 3) s3 += d * weight[wr + 3 * KK + kw];
              }
            }
          }
          const x = ((b * C + c) * H + h) * W + w;
          dinp[x] = s0;
          if (n > 1) dinp[x + H * W] = s1;
          if (n > 2) dinp[x + 2 * H * W] = s2;
          if (n > 3) dinp[x + 3 * H * W] = s3;
        }
      }
    }
  }
}
