// bfloat16 rounding for --wire-dtype bf16 (shared/kernels/bf16.ts and the wasm kernel
// round_bf16): correct rounding against a reference computed in double, the same bits
// from the JS and the wasm kernels (including ±0, subnormals, ±Inf, NaN), and exact
// pack/unpack.

import { describe, expect, it } from 'vitest';
import { packBf16, roundBf16, roundBf16Bits, unpackBf16 } from '../../../shared/kernels/bf16.js';
import { createKernelSet } from '../../../shared/kernels/kernel-set.js';
import { deriveRng } from '../../../shared/rng.js';

function bitsOf(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

function floatOf(bits: number): number {
  return new Float32Array(new Uint32Array([bits >>> 0]).buffer)[0];
}

/** Nearest bf16 to a finite float32 x, ties to the even one, by comparing distances in double. */
function referenceRound(x: number): number {
  const down = floatOf(bitsOf(x) & 0xffff0000);
  const next = floatOf(((bitsOf(x) & 0xffff0000) + 0x10000) >>> 0); // next bf16 away from zero
  // Past the largest bf16 that neighbour is ±Inf; IEEE rounds as if it were ±2^128.
  const up = Number.isFinite(next) ? next : Math.sign(x) * 2 ** 128;
  const dDown = Math.abs(x - down);
  const dUp = Math.abs(up - x);
  if (dDown < dUp) return down;
  if (dUp < dDown) return next;
  return ((bitsOf(down) >>> 16) & 1) === 0 ? down : next;
}

/** Random float32 bit patterns over every exponent, plus the special values. */
function patterns(n: number): Uint32Array {
  const rng = deriveRng(11, 'bf16');
  const specials = [
    0, 0x80000000, 1, 0x807fffff, 0x3f800000, 0x3f808000, 0x3f818000, 0x3f807fff, 0x7f7fffff, 0xff7fffff, 0x7f800000,
    0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fffffff, 0xffffffff,
  ];
  const out = new Uint32Array(n + specials.length);
  out.set(specials);
  for (let i = specials.length; i < out.length; i++) out[i] = rng.nextUint32();
  return out;
}

function isNaNBits(b: number): boolean {
  return (b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0;
}

describe('bf16 rounding', () => {
  it('rounds finite values to the nearest bf16, ties to even; keeps ±Inf; keeps NaN a NaN', () => {
    const wrong: string[] = [];
    for (const b of patterns(100_000)) {
      const x = floatOf(b);
      const got = floatOf(roundBf16Bits(b));
      const ok = Number.isNaN(x) ? Number.isNaN(got) : Object.is(got, Number.isFinite(x) ? referenceRound(x) : x);
      if (!ok) wrong.push(`0x${b.toString(16)} -> ${got}`);
    }
    expect(wrong).toEqual([]);
    expect(floatOf(roundBf16Bits(0x3f808000))).toBe(1); // 1 + 2^-8: a tie, to the even 1
    expect(floatOf(roundBf16Bits(0x3f818000))).toBe(1 + 2 ** -6); // 1 + 3·2^-8: a tie, to the even 1 + 2^-6
    expect(floatOf(roundBf16Bits(0x7f7fffff))).toBe(Infinity); // above the largest bf16: overflows
  });

  it("the wasm kernel gives the JS function's bits, at every length", () => {
    const ks = createKernelSet('wasm', 1 << 18);
    const bits = patterns(100_003);
    for (const N of [1, 3, 4, 7, 100_003 + 18]) {
      const js = new Float32Array(new Uint32Array(bits.subarray(0, N)).buffer);
      const wasm = ks.alloc(N);
      wasm.set(js);
      // Copying through Float32Array#set keeps NaN payloads on V8, but compare NaN-ness to be safe.
      roundBf16(js, N);
      ks.roundBf16(wasm, N);
      const a = new Uint32Array(js.buffer, js.byteOffset, N);
      const b = new Uint32Array(wasm.buffer, wasm.byteOffset, N);
      for (let i = 0; i < N; i++) {
        if (isNaNBits(a[i])) expect(isNaNBits(b[i]), `N=${N} i=${i}`).toBe(true);
        else if (a[i] !== b[i]) expect.fail(`N=${N} i=${i}: js 0x${a[i].toString(16)} wasm 0x${b[i].toString(16)}`);
      }
    }
  });

  it('pack then unpack gives back rounded values exactly', () => {
    const rng = deriveRng(12, 'pack');
    const a = new Float32Array(1001);
    for (let i = 0; i < a.length; i++) a[i] = (rng.nextFloat() - 0.5) * 10 ** (rng.nextInt(12) - 6);
    roundBf16(a);
    const h = new Uint16Array(a.length);
    packBf16(h, a);
    const back = new Float32Array(a.length);
    unpackBf16(back, h);
    expect(back).toEqual(a);
  });
});
