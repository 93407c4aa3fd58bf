// shared/kernels/transcendental.ts: accuracy against the engine's Math.* (the reference
// here, never in the kernels), special values, a bit-exact fixture that freezes the
// numerics, and a scan of the source for calls to the engine's transcendentals.

import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { exp, expm1, log, sigmoid, tanh } from '../../../shared/kernels/transcendental.js';
import { deriveRng, type Rng } from '../../../shared/rng.js';

const SEED = 0x7a11;
const SAMPLES = 200_000;

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);
const f64 = new Float64Array(1);
const i64 = new BigInt64Array(f64.buffer);

/** The float32 rounding of x as an integer that grows with the value; ±0 both map to 0. */
function orderedFloat32(x: number): number {
  f32[0] = x;
  const bits = i32[0];
  return bits < 0 ? -(bits & 0x7fffffff) : bits;
}

function orderedFloat64(x: number): bigint {
  f64[0] = x;
  const bits = i64[0];
  return bits < 0n ? -(bits & 0x7fffffffffffffffn) : bits;
}

/** Distance in float32 ulps after both values are rounded to float32, as callers store them. */
function float32Ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  return Math.abs(orderedFloat32(a) - orderedFloat32(b));
}

function float64Ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  const d = orderedFloat64(a) - orderedFloat64(b);
  return Number(d < 0n ? -d : d);
}

function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.nextFloat();
}

/** Magnitude spread evenly over the decades between lo and hi (0 < lo < hi). */
function logUniform(rng: Rng, lo: number, hi: number): number {
  return Math.exp(uniform(rng, Math.log(lo), Math.log(hi)));
}

function randomSign(rng: Rng): number {
  return rng.nextFloat() < 0.5 ? -1 : 1;
}

function referenceSigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

interface AccuracyCase {
  readonly name: string;
  readonly ours: (x: number) => number;
  readonly reference: (x: number) => number;
  readonly sample: (rng: Rng, i: number) => number;
  /** Double-precision ulps against Math.*, which is itself only promised to ~1 ulp. */
  readonly maxFloat64Ulps: number;
}

const ACCURACY: AccuracyCase[] = [
  { name: 'exp', ours: exp, reference: Math.exp, maxFloat64Ulps: 1, sample: (rng) => uniform(rng, -87, 88) },
  {
    name: 'expm1',
    ours: expm1,
    reference: Math.expm1,
    maxFloat64Ulps: 4,
    sample: (rng, i) => (i % 2 === 0 ? uniform(rng, -40, 88) : randomSign(rng) * logUniform(rng, 1e-30, 1)),
  },
  {
    name: 'log',
    ours: log,
    reference: Math.log,
    maxFloat64Ulps: 2,
    sample: (rng, i) => {
      if (i % 5 === 0) return uniform(rng, 0.7, 1.4); // log(x) → 0: where cancellation would show
      if (i % 5 === 1) return logUniform(rng, 5e-324, 2.2250738585072014e-308); // subnormals
      if (i % 5 === 2) return logUniform(rng, 1e-307, 1.7e308);
      return logUniform(rng, 1e-30, 1e30);
    },
  },
  {
    name: 'tanh',
    ours: tanh,
    reference: Math.tanh,
    maxFloat64Ulps: 4,
    sample: (rng, i) => (i % 3 === 0 ? randomSign(rng) * logUniform(rng, 1e-30, 1) : uniform(rng, -20, 20)),
  },
  {
    name: 'sigmoid',
    ours: sigmoid,
    reference: referenceSigmoid,
    maxFloat64Ulps: 2,
    sample: (rng) => uniform(rng, -50, 50),
  },
];

describe('transcendental accuracy against Math.* over 200k seeded inputs each', () => {
  for (const c of ACCURACY) {
    it(`${c.name}: ≤ 1 float32 ulp, ≤ ${c.maxFloat64Ulps} float64 ulps`, () => {
      const rng = deriveRng(SEED, 'transcendental-accuracy', c.name);
      let worst32 = { ulps: 0, x: NaN };
      let worst64 = { ulps: 0, x: NaN };
      for (let i = 0; i < SAMPLES; i++) {
        const x = c.sample(rng, i);
        const ours = c.ours(x);
        const reference = c.reference(x);
        const u32 = float32Ulps(ours, reference);
        const u64 = float64Ulps(ours, reference);
        if (u32 > worst32.ulps) worst32 = { ulps: u32, x };
        if (u64 > worst64.ulps) worst64 = { ulps: u64, x };
      }
      expect(worst32.ulps, `float32 ulps at x = ${worst32.x}`).toBeLessThanOrEqual(1);
      expect(worst64.ulps, `float64 ulps at x = ${worst64.x}`).toBeLessThanOrEqual(c.maxFloat64Ulps);
    });
  }
});

describe('transcendental special values', () => {
  const MIN_NORMAL = 2.2250738585072014e-308;
  // [function, input, exact expected output]; −0 and +0 are different answers here.
  const cases: [string, (x: number) => number, number, number][] = [
    ['exp', exp, NaN, NaN],
    ['exp', exp, Infinity, Infinity],
    ['exp', exp, -Infinity, 0],
    ['exp', exp, 0, 1],
    ['exp', exp, -0, 1],
    ['exp', exp, 5e-324, 1],
    ['exp', exp, 1, Math.E],
    ['exp', exp, 1000, Infinity],
    ['exp', exp, 709.79, Infinity],
    ['exp', exp, -1000, 0],
    ['exp', exp, -746, 0],
    ['expm1', expm1, NaN, NaN],
    ['expm1', expm1, Infinity, Infinity],
    ['expm1', expm1, -Infinity, -1],
    ['expm1', expm1, 0, 0],
    ['expm1', expm1, -0, -0],
    ['expm1', expm1, 1e-20, 1e-20],
    ['expm1', expm1, -1000, -1],
    ['log', log, NaN, NaN],
    ['log', log, -1, NaN],
    ['log', log, -Infinity, NaN],
    ['log', log, 0, -Infinity],
    ['log', log, -0, -Infinity],
    ['log', log, Infinity, Infinity],
    ['log', log, 1, 0],
    ['log', log, 2, Math.LN2],
    ['log', log, 5e-324, -744.4400719213812],
    ['log', log, Number.MAX_VALUE, 709.782712893384],
    ['tanh', tanh, NaN, NaN],
    ['tanh', tanh, 0, 0],
    ['tanh', tanh, -0, -0],
    ['tanh', tanh, Infinity, 1],
    ['tanh', tanh, -Infinity, -1],
    ['tanh', tanh, 1e-20, 1e-20],
    ['tanh', tanh, -5e-324, -5e-324],
    ['tanh', tanh, 25, 1],
    ['sigmoid', sigmoid, NaN, NaN],
    ['sigmoid', sigmoid, 0, 0.5],
    ['sigmoid', sigmoid, -0, 0.5],
    ['sigmoid', sigmoid, Infinity, 1],
    ['sigmoid', sigmoid, -Infinity, 0],
    ['sigmoid', sigmoid, 1000, 1],
    ['sigmoid', sigmoid, -1000, 0],
  ];
  const show = (v: number): string => (Object.is(v, -0) ? '-0' : String(v));
  for (const [name, fn, x, expected] of cases) {
    it(`${name}(${show(x)}) is exactly ${show(expected)}`, () => {
      expect(fn(x)).toBe(expected); // toBe is Object.is
    });
  }

  it('exp underflows gradually through the subnormals, then to 0', () => {
    expect(exp(-708.3964185322641)).toBeGreaterThanOrEqual(MIN_NORMAL);
    const sub = exp(-740);
    expect(sub).toBeGreaterThan(0);
    expect(sub).toBeLessThan(MIN_NORMAL);
    expect(float64Ulps(sub, Math.exp(-740))).toBeLessThanOrEqual(1);
    expect(exp(-745.1332191019411)).toBe(5e-324);
  });

  it('exp reaches the top of the double range without overflowing early', () => {
    expect(float64Ulps(exp(709.782712893384), Math.exp(709.782712893384))).toBeLessThanOrEqual(1);
    expect(exp(709.782712893384)).toBeLessThan(Infinity);
  });
});

interface Fixture {
  readonly about: string;
  readonly [fn: string]: string | [string, string][];
}

function fromHex(hex: string): number {
  i64[0] = BigInt.asIntN(64, BigInt(`0x${hex}`));
  return f64[0];
}

function toHex(x: number): string {
  f64[0] = x;
  return BigInt.asUintN(64, i64[0]).toString(16).padStart(16, '0');
}

describe('transcendental bit-exact fixture (test/fixtures/transcendental-bits.json)', () => {
  const fixture = JSON.parse(
    readFileSync(new URL('../../fixtures/transcendental-bits.json', import.meta.url), 'utf8'),
  ) as Fixture;
  const functions: Record<string, (x: number) => number> = { exp, expm1, log, tanh, sigmoid };

  for (const [name, fn] of Object.entries(functions)) {
    it(`${name} reproduces every recorded output bit for bit`, () => {
      const rows = fixture[name] as [string, string][];
      expect(rows.length).toBeGreaterThanOrEqual(150);
      const mismatches: string[] = [];
      for (const [input, output] of rows) {
        const actual = fn(fromHex(input));
        // NaN payloads are not preserved across engines; any NaN is the same answer.
        const same = Number.isNaN(fromHex(output)) ? Number.isNaN(actual) : toHex(actual) === output;
        if (!same) mismatches.push(`${name}(${input}): expected ${output}, got ${toHex(actual)}`);
      }
      expect(mismatches).toEqual([]);
    });
  }
});

describe('transcendental source', () => {
  // Comments explain why Math.exp is avoided, so only code is scanned.
  const code = readFileSync(new URL('../../../shared/kernels/transcendental.ts', import.meta.url), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '');

  it.each(['Math.exp', 'Math.log', 'Math.tanh', 'Math.pow', 'Math.expm1', 'Math.log1p', '**'])(
    'never uses %s',
    (banned) => {
      expect(code).not.toContain(banned);
    },
  );

  it('uses only the correctly rounded Math functions', () => {
    const EXACT = new Set([
      'abs',
      'floor',
      'ceil',
      'trunc',
      'round',
      'sqrt',
      'fround',
      'min',
      'max',
      'sign',
      'imul',
      'clz32',
    ]);
    const used = [...code.matchAll(/Math\s*(?:\.\s*(\w+)|\[)/g)].map((m) => m[1] ?? '[computed]');
    expect(used.filter((f) => !EXACT.has(f))).toEqual([]);
  });
});
