// Plain, obviously-correct twins of the optimized kernels, kept as the reference the
// tests compare against. Forward, bias and input gradients use the same operation
// order as the fast kernels (bit-equal); the weight gradient sums all samples in one
// double accumulator, so it matches the fast kernel only to a stated tolerance.

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
