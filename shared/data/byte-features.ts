// Features stored one byte per value: a dataset whose features take at most 256
// distinct float32 values (MNIST's pixels) is kept, hashed and sent as byte codes plus
// a 256-entry table, a quarter of its float32 size, and widened back to float32 once
// where it is used. The round trip is exact: widening gives the very bits narrowing
// was given, so training on the widened features is training on the original ones.

import type { ByteFeatures } from './dataset.js';

/** Entries in a level table: one per byte value. */
export const LEVELS = 256;

/**
 * The byte form of `values`, or null when they take more than 256 distinct values.
 * Codes follow the values' order (ties of -0 and +0 by bit pattern, so both are kept
 * as they are): 8-bit pixels whose 256 levels all occur get their own byte back.
 */
export function narrowToBytes(values: Float32Array): ByteFeatures | null {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const table = new LevelTable();
  for (let i = 0; i < bits.length; i++) {
    // Neighbours repeat (a digit's background is one run of zeros): skip the lookup.
    if ((i > 0 && bits[i] === bits[i - 1]) || table.find(bits[i]) >= 0) continue;
    if (Number.isNaN(values[i]) || table.size === LEVELS) return null;
    table.add(bits[i]);
  }
  const distinct = table.keys();
  const word = new Uint32Array(1);
  const asFloat = new Float32Array(word.buffer);
  const floatOf = (b: number): number => {
    word[0] = b;
    return asFloat[0];
  };
  distinct.sort((a, b) => floatOf(a) - floatOf(b) || b - a);
  const levels = new Float32Array(LEVELS); // (256)
  new Uint32Array(levels.buffer).set(distinct);
  const codeOf = new LevelTable(); // inserted in code order, so a key's insertion index is its code
  for (const b of distinct) codeOf.add(b);
  const codes = new Uint8Array(values.length); // (values.length)
  for (let i = 0; i < bits.length; i++) codes[i] = codeOf.find(bits[i]);
  return { codes, levels };
}

/**
 * A set of at most 256 bit patterns by open addressing: a JS Set over millions of
 * pixels costs ten times more. find gives a key's insertion index, or -1.
 */
class LevelTable {
  static readonly #SLOTS = 1024; // 4× the most keys, so probes stay short
  readonly #keys = new Uint32Array(LevelTable.#SLOTS);
  readonly #index = new Int16Array(LevelTable.#SLOTS).fill(-1);
  readonly #inserted: number[] = [];

  get size(): number {
    return this.#inserted.length;
  }

  find(key: number): number {
    for (let s = Math.imul(key, 0x9e3779b1) >>> 22; ; s = (s + 1) & (LevelTable.#SLOTS - 1)) {
      const at = this.#index[s];
      if (at < 0 || this.#keys[s] === key) return at;
    }
  }

  add(key: number): void {
    let s = Math.imul(key, 0x9e3779b1) >>> 22;
    while (this.#index[s] >= 0) s = (s + 1) & (LevelTable.#SLOTS - 1);
    this.#keys[s] = key;
    this.#index[s] = this.#inserted.length;
    this.#inserted.push(key);
  }

  keys(): number[] {
    return this.#inserted.slice();
  }
}

/**
 * out (codes.length) = levels[codes], by bit pattern: what a worker does once with the
 * bytes it received. `levels` has 256 entries, so every code is in range.
 */
export function widenBytes(out: Float32Array, codes: Uint8Array, levels: Float32Array): void {
  if (levels.length !== LEVELS) throw new RangeError(`widenBytes: expected ${LEVELS} levels, got ${levels.length}`);
  if (out.length !== codes.length) throw new RangeError(`widenBytes: ${codes.length} codes into ${out.length} floats`);
  // Through integer views: a float copy may quiet a signalling NaN's bits, an integer copy never changes any.
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  const levelBits = new Uint32Array(levels.buffer, levels.byteOffset, LEVELS);
  for (let i = 0; i < codes.length; i++) outBits[i] = levelBits[codes[i]];
}
