// Byte features: narrowing a float32 array of at most 256 distinct values to codes
// and a level table, and widening it back, gives the very bits it started from; the
// embedded MNIST travels as bytes and widens to exactly the floats parsed from its files.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMnist, MNIST_PIXELS } from '../../../coordinator/data/mnist.js';
import { LEVELS, narrowToBytes, widenBytes } from '../../../shared/data/byte-features.js';
import { headerFields } from '../../../shared/data/hash-encoding.js';
import { transferByteLength } from '../../../shared/data/transfer.js';
import { Rng } from '../../../shared/rng.js';

const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Index of the first value whose bits differ (-1: none, equal lengths): cheap on millions, unlike toEqual. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const x = bitsOf(a);
  const y = bitsOf(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

function widened(codes: Uint8Array, levels: Float32Array): Float32Array {
  const out = new Float32Array(codes.length);
  widenBytes(out, codes, levels);
  return out;
}

describe('narrowToBytes and widenBytes', () => {
  it('round-trip 256 arbitrary levels bit for bit, codes ascending with the values', () => {
    const rng = new Rng(5);
    const palette = Float32Array.from({ length: LEVELS }, () => (rng.nextFloat() - 0.5) * 1e3);
    const values = Float32Array.from({ length: 10_000 }, () => palette[rng.nextInt(LEVELS)]);
    const bytes = narrowToBytes(values);
    expect(bytes).not.toBeNull();
    expect(bitsOf(widened(bytes!.codes, bytes!.levels))).toEqual(bitsOf(values));
    const used = [...new Set(bytes!.codes)].sort((a, b) => a - b);
    for (let k = 1; k < used.length; k++) expect(bytes!.levels[used[k]]).toBeGreaterThan(bytes!.levels[used[k - 1]]);
  });

  it('keeps -0 and +0 apart, and subnormals exactly', () => {
    const values = new Float32Array([0, -0, 1e-45, -0, 0, 3.4e38]);
    const bytes = narrowToBytes(values)!;
    expect(bitsOf(widened(bytes.codes, bytes.levels))).toEqual(bitsOf(values));
    expect(bytes.codes[0]).not.toBe(bytes.codes[1]);
  });

  it('gives up on 257 distinct values and on NaN', () => {
    expect(narrowToBytes(Float32Array.from({ length: 257 }, (_, i) => i))).toBeNull();
    expect(narrowToBytes(Float32Array.from({ length: 256 }, (_, i) => i))).not.toBeNull();
    expect(narrowToBytes(new Float32Array([1, Number.NaN]))).toBeNull();
  });

  it('widens a subarray into a subarray, and refuses mismatched lengths', () => {
    const levels = new Float32Array(LEVELS).map((_, i) => i / 2);
    const out = new Float32Array(6);
    widenBytes(out.subarray(2, 5), new Uint8Array([9, 1, 4]).subarray(0, 3), levels);
    expect([...out]).toEqual([0, 0, 4.5, 0.5, 2, 0]);
    expect(() => widenBytes(new Float32Array(2), new Uint8Array(3), levels)).toThrow(RangeError);
    expect(() => widenBytes(new Float32Array(1), new Uint8Array(1), new Float32Array(255))).toThrow(RangeError);
  });
});

describe('the embedded MNIST as bytes', () => {
  const ds = loadMnist();

  it("widens to exactly the float32 pixels parsed from the package's files", () => {
    const dir = dirname(createRequire(import.meta.url).resolve('mnist/package.json'));
    const parsed: number[] = [];
    for (let digit = 0; digit < 10; digit++) {
      const file = JSON.parse(readFileSync(join(dir, 'src', 'digits', `${digit}.json`), 'utf8')) as { data: number[] };
      for (const v of file.data) parsed.push(v);
    }
    const f32 = Float32Array.from(parsed); // the float32 path: each JSON number rounded to float32
    expect(ds.bytes).toBeDefined();
    expect(firstDifference(widened(ds.bytes!.codes, ds.bytes!.levels), f32)).toBe(-1);
    expect(firstDifference(ds.features, f32)).toBe(-1);
  });

  it('stores each pixel as its 8-bit value, b/255 to three decimals', () => {
    for (let b = 0; b < LEVELS; b++) expect(ds.bytes!.levels[b]).toBe(Math.fround(Number((b / 255).toFixed(3))));
  });

  it('travels in a quarter of its float32 size', () => {
    const d = headerFields(ds);
    expect(d.dtype).toBe('u8');
    expect(transferByteLength(d)).toBe(10_000 * MNIST_PIXELS + LEVELS * 4 + 10_000 * 4); // 7.88 MB
    expect(transferByteLength({ ...d, dtype: 'f32' })).toBe(10_000 * (MNIST_PIXELS + 1) * 4); // 31.4 MB
  });
});
