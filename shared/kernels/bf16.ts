// bfloat16: the upper half of a float32 (sign, the same 8-bit exponent, 7 mantissa
// bits). `--wire-dtype bf16` moves weights and gradients in it, halving the bytes.
// Rounding is done on the bit patterns with integer operations only, so every
// engine, and the wasm kernel round_bf16, gives the same bits: round to nearest, ties
// to even; ±Inf stay; NaN stays NaN (made quiet so truncation cannot turn it into Inf).

/** a[i] = a[i] rounded to bf16, kept as f32 (low 16 bits zero); the first N values. */
export function roundBf16(a: Float32Array, N = a.length): void {
  // Int32 views: V8 keeps int32 values unboxed, where uint32 ones above 2^31 become doubles (~1.5x slower).
  const bits = new Int32Array(a.buffer, a.byteOffset, N);
  for (let i = 0; i < N; i++) bits[i] = roundBf16Bits(bits[i]);
}

/**
 * The f32 bit pattern `x` (as int32 or uint32) rounded to bf16, as an int32 f32 bit
 * pattern. Finite values cannot overflow: x + 0x8000 stays within int32 for every
 * finite pattern (the largest, 0x7f7fffff, carries into the Inf exponent as it should).
 */
export function roundBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000) return ((x & 0x007fffff) !== 0 ? x | 0x00400000 : x) & -0x10000;
  return ((x | 0) + 0x7fff + ((x >>> 16) & 1)) & -0x10000;
}

/** out (n) = `a`'s values rounded to bf16 (roundBf16Bits), as their upper halves. */
export function packBf16(out: Uint16Array, a: Float32Array): void {
  const bits = new Int32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < bits.length; i++) out[i] = roundBf16Bits(bits[i]) >>> 16;
}

/** out (n) = the bf16 values of `h` as f32, exactly. */
export function unpackBf16(out: Float32Array, h: Uint16Array): void {
  const bits = new Int32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
}
