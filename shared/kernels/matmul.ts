// Dense-layer kernels over flat row-major Float32Arrays, llm.c style: outputs first,
// sizes last, nothing allocated. Weights are stored [out, in] as PyTorch's nn.Linear
// does, so forward is a row-by-row dot product and both operands stream contiguously.
//
// Every output element is produced by one fixed sequence of double-precision
// operations (JS has no FMA and no reassociation), so these kernels give the same
// bits on every engine. The register tiles below change speed, never that sequence
// within a tile; `naive.ts` holds the plain twins the tests compare against.

/**
 * out = inp · weightᵀ + bias
 * out (B, OC), inp (B, C), weight (OC, C), bias (OC)
 * Each out[b, o] is Σ_c inp[b, c]·weight[o, c] accumulated in double in c order, plus bias.
 */
export function matmulForward(
  out: Float32Array,
  inp: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  B: number,
  C: number,
  OC: number,
): void {
  // Tile 2 samples × 4 outputs: 8 accumulators + 6 operands stay in registers.
  let b = 0;
  for (; b + 2 <= B; b += 2) {
    const x0 = b * C;
    const x1 = x0 + C;
    let o = 0;
    for (; o + 4 <= OC; o += 4) {
      const w0 = o * C;
      const w1 = w0 + C;
      const w2 = w1 + C;
      const w3 = w2 + C;
      let a00 = 0,
        a01 = 0,
        a02 = 0,
        a03 = 0,
        a10 = 0,
        a11 = 0,
        a12 = 0,
        a13 = 0;
      for (let c = 0; c < C; c++) {
        const i0 = inp[x0 + c];
        const i1 = inp[x1 + c];
        const v0 = weight[w0 + c];
        const v1 = weight[w1 + c];
        const v2 = weight[w2 + c];
        const v3 = weight[w3 + c];
        a00 += i0 * v0;
        a01 += i0 * v1;
        a02 += i0 * v2;
        a03 += i0 * v3;
        a10 += i1 * v0;
        a11 += i1 * v1;
        a12 += i1 * v2;
        a13 += i1 * v3;
      }
      const r0 = b * OC + o;
      const r1 = r0 + OC;
      out[r0] = a00 + bias[o];
      out[r0 + 1] = a01 + bias[o + 1];
      out[r0 + 2] = a02 + bias[o + 2];
      out[r0 + 3] = a03 + bias[o + 3];
      out[r1] = a10 + bias[o];
      out[r1 + 1] = a11 + bias[o + 1];
      out[r1 + 2] = a12 + bias[o + 2];
      out[r1 + 3] = a13 + bias[o + 3];
    }
    for (; o < OC; o++) {
      const w0 = o * C;
      let a0 = 0,
        a1 = 0;
      for (let c = 0; c < C; c++) {
        const v = weight[w0 + c];
        a0 += inp[x0 + c] * v;
        a1 += inp[x1 + c] * v;
      }
      out[b * OC + o] = a0 + bias[o];
      out[(b + 1) * OC + o] = a1 + bias[o];
    }
  }
  for (; b < B; b++) {
    const x0 = b * C;
    for (let o = 0; o < OC; o++) {
      const w0 = o * C;
      let a = 0;
      for (let c = 0; c < C; c++) a += inp[x0 + c] * weight[w0 + c];
      out[b * OC + o] = a + bias[o];
    }
  }
}

/**
 * Gradients of matmulForward, accumulated (+=) into dweight and dbias, written into dinp.
 * dinp (B, C) or null when the input needs no gradient (the first layer),
 * dweight (OC, C), dbias (OC), dout (B, OC), inp (B, C), weight (OC, C)
 * dweight[o, c] gains Σ_b dout[b, o]·inp[b, c]: for pairs of output rows, samples are summed
 * in double in blocks of four (in b order) and each block's sum is added to dweight with one
 * float32 rounding; a last odd row and leftover samples are added one sample at a time.
 */
export function matmulBackward(
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
  }
  weightGradient(dweight, dout, inp, B, C, OC);
  if (dinp !== null) inputGradient(dinp, dout, weight, B, C, OC);
}

// dweight[o, c] += Σ_b dout[b, o]·inp[b, c]; tile 2 outputs × 4 samples so each inp load
// feeds two rows of dweight and each dweight element is read and written once per block.
function weightGradient(
  dweight: Float32Array,
  dout: Float32Array,
  inp: Float32Array,
  B: number,
  C: number,
  OC: number,
): void {
  let o = 0;
  for (; o + 2 <= OC; o += 2) {
    const w0 = o * C;
    const w1 = w0 + C;
    let b = 0;
    for (; b + 4 <= B; b += 4) {
      const d00 = dout[b * OC + o],
        d01 = dout[b * OC + o + 1];
      const d10 = dout[(b + 1) * OC + o],
        d11 = dout[(b + 1) * OC + o + 1];
      const d20 = dout[(b + 2) * OC + o],
        d21 = dout[(b + 2) * OC + o + 1];
      const d30 = dout[(b + 3) * OC + o],
        d31 = dout[(b + 3) * OC + o + 1];
      const x0 = b * C,
        x1 = x0 + C,
        x2 = x1 + C,
        x3 = x2 + C;
      for (let c = 0; c < C; c++) {
        const i0 = inp[x0 + c],
          i1 = inp[x1 + c],
          i2 = inp[x2 + c],
          i3 = inp[x3 + c];
        dweight[w0 + c] += d00 * i0 + d10 * i1 + d20 * i2 + d30 * i3;
        dweight[w1 + c] += d01 * i0 + d11 * i1 + d21 * i2 + d31 * i3;
      }
    }
    for (; b < B; b++) {
      const d0 = dout[b * OC + o],
        d1 = dout[b * OC + o + 1];
      const x0 = b * C;
      for (let c = 0; c < C; c++) {
        const i0 = inp[x0 + c];
        dweight[w0 + c] += d0 * i0;
        dweight[w1 + c] += d1 * i0;
      }
    }
  }
  for (; o < OC; o++) {
    const w0 = o * C;
    for (let b = 0; b < B; b++) {
      const d = dout[b * OC + o];
      const x0 = b * C;
      for (let c = 0; c < C; c++) dweight[w0 + c] += d * inp[x0 + c];
    }
  }
}

// dinp[b, c] = Σ_o dout[b, o]·weight[o, c], summed in double over o in order.
function inputGradient(
  dinp: Float32Array,
  dout: Float32Array,
  weight: Float32Array,
  B: number,
  C: number,
  OC: number,
): void {
  for (let b = 0; b < B; b++) {
    const d0 = b * OC;
    const x0 = b * C;
    let c = 0;
    for (; c + 4 <= C; c += 4) {
      let a0 = 0,
        a1 = 0,
        a2 = 0,
        a3 = 0;
      for (let o = 0; o < OC; o++) {
        const d = dout[d0 + o];
        const w = o * C + c;
        a0 += d * weight[w];
        a1 += d * weight[w + 1];
        a2 += d * weight[w + 2];
        a3 += d * weight[w + 3];
      }
      dinp[x0 + c] = a0;
      dinp[x0 + c + 1] = a1;
      dinp[x0 + c + 2] = a2;
      dinp[x0 + c + 3] = a3;
    }
    for (; c < C; c++) {
      let a = 0;
      for (let o = 0; o < OC; o++) a += dout[d0 + o] * weight[o * C + c];
      dinp[x0 + c] = a;
    }
  }
}
