// bfloat16: the upper half of a float32 (sign, the same 8-bit exponent, 7 mantissa
// bits). `--wire-dtype bf16` moves weights and gradients in it, halving the bytes.
// Rounding is done on the bit patterns with integer operations only, so every
// engine, and the wasm kernel round_bf16, gives the same bits: round to nearest, ties
// to even; ±Inf stay; NaN stays NaN (made quiet so truncation cannot turn it into Inf).

/** a[i] = a[i] rounded to bf16, kept as f32 (low 16 bits zero); the first N values. */
export function roundBf16(a: Float32Array, N = a.length): void {
  const u = new Uint32Array(a.buffer, a.byteOffset, N);
  for (let i = 0; i < N; i++) u[i] = roundBf16Bits(u[i]);
}

/** The f32 bit pattern `x` rounded to bf16 (as an f32 bit pattern). */
export function roundBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000) return ((x & 0x007fffff) !== 0 ? x | 0x00400000 : x) & 0xffff0000;
  return (x + 0x7fff + ((x >>> 16) & 1)) & 0xffff0000;
}

/** out (n) = the upper halves of `a`'s values, which must already be bf16 (roundBf16). */
export function packBf16(out: Uint16Array, a: Float32Array): void {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < u.length; i++) out[i] = u[i] >>> 16;
}

/** out (n) = the bf16 values of `h` as f32, exactly. */
export function unpackBf16(out: Float32Array, h: Uint16Array): void {
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < h.length; i++) u[i] = h[i] << 16;
}
