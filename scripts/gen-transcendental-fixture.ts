// Regenerates test/fixtures/transcendental-bits.json: for each function of
// shared/kernels/transcendental.ts, ~200 inputs (edge cases, then seeded random values)
// with the float64 bit patterns of our results. test/transcendental.test.ts compares
// bit for bit, so any change to the numerics surfaces as a fixture diff that someone
// has to regenerate and commit on purpose.
//
// Inputs are built with exact operations only (uniform draws, random exponent and
// mantissa bits), so rerunning on any engine reproduces the same inputs.
//
//   npx tsc -p tsconfig.json && node dist/scripts/gen-transcendental-fixture.js [out.json]

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exp, expm1, log, sigmoid, tanh } from '../shared/kernels/transcendental.js';
import { deriveRng, type Rng } from '../shared/rng.js';

const SEED = 0x7a11;
const CASES_PER_FUNCTION = 200;

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

function toHex(x: number): string {
  f64[0] = x;
  return u64[0].toString(16).padStart(16, '0');
}

function fromBits(bits: bigint): number {
  u64[0] = bits;
  return f64[0];
}

/** The next double toward +∞ (for finite positive x) or its mirror image. */
function nextUp(x: number): number {
  f64[0] = x;
  return fromBits(x >= 0 ? u64[0] + 1n : u64[0] - 1n);
}

function nextDown(x: number): number {
  return -nextUp(-x);
}

/** x with both neighbours, to pin the behaviour on each side of a branch threshold. */
function around(x: number): number[] {
  return [nextDown(x), x, nextUp(x)];
}

function signed(xs: number[]): number[] {
  return xs.flatMap((x) => [x, -x]);
}

function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.nextFloat();
}

/** 2^k for normal k, from bits rather than ** so no engine's pow is involved. */
function pow2(k: number): number {
  return fromBits(BigInt(k + 1023) << 52n);
}

function mantissaBits(rng: Rng): bigint {
  return (BigInt(rng.nextUint32() & 0xfffff) << 32n) | BigInt(rng.nextUint32());
}

/** Positive double with binary exponent uniform in [eMin, eMax] and a random mantissa. */
function logUniform(rng: Rng, eMin: number, eMax: number): number {
  const biased = BigInt(eMin + 1023 + rng.nextInt(eMax - eMin + 1));
  return fromBits((biased << 52n) | mantissaBits(rng));
}

/** Positive subnormal of random magnitude (shifting spreads them over 2^-1070 … 2^-1022). */
function subnormal(rng: Rng): number {
  return fromBits((mantissaBits(rng) >> BigInt(rng.nextInt(48))) | 1n);
}

function randomSign(rng: Rng): number {
  return rng.nextFloat() < 0.5 ? -1 : 1;
}

const LN2 = 0.6931471805599453;
const HALF_LN2 = 0.34657359027997264;
const O_THRESHOLD = 709.782712893384;
const U_THRESHOLD = -745.1332191019411;
const SQRT2 = 1.4142135623730951;
const MIN_SUBNORMAL = 5e-324;
const MIN_NORMAL = 2.2250738585072014e-308;
const SPECIALS = [NaN, Infinity, -Infinity, 0, -0];

interface FunctionCases {
  readonly fn: (x: number) => number;
  readonly edges: number[];
  /** Fills the rest of the cases; called until CASES_PER_FUNCTION is reached. */
  readonly random: (rng: Rng, i: number) => number;
}

const CASES: Record<string, FunctionCases> = {
  exp: {
    fn: exp,
    edges: [
      ...SPECIALS,
      ...signed([MIN_SUBNORMAL, pow2(-28), nextDown(pow2(-28)), 0.5, 1, LN2, 1.5 * LN2, 1000, 1e300]),
      ...signed(around(HALF_LN2)),
      ...around(O_THRESHOLD),
      ...around(U_THRESHOLD),
      88.72283935546875, // float32 overflow
      -87.33654475055310898657, // float32 smallest normal
      -103.97207708399179, // float32 smallest subnormal
      -708.3964185322641, // double smallest normal
      ...[700, -709, -720, -740, -745],
    ],
    random: (rng, i) => (i % 3 === 0 ? uniform(rng, U_THRESHOLD, O_THRESHOLD) : uniform(rng, -87, 88)),
  },
  expm1: {
    fn: expm1,
    edges: [
      ...SPECIALS,
      ...signed([MIN_SUBNORMAL, 1e-300, 1e-20, 1e-10, 0.35, 1, 2]),
      ...signed(around(pow2(-54))),
      ...signed(around(HALF_LN2)),
      ...[-40, -1000, 709.78, 710],
    ],
    random: (rng, i) => (i % 2 === 0 ? uniform(rng, -40, 88) : randomSign(rng) * logUniform(rng, -70, -1)),
  },
  log: {
    fn: log,
    edges: [
      ...SPECIALS,
      ...[-1, -MIN_SUBNORMAL, MIN_SUBNORMAL, 3 * MIN_SUBNORMAL, nextDown(MIN_NORMAL), MIN_NORMAL, Number.MAX_VALUE],
      ...around(1),
      ...around(SQRT2),
      ...around(SQRT2 / 2),
      ...[1 + pow2(-30), 1 - pow2(-30), 2, 0.5, Math.E, 10, 1e-30, 1e30],
    ],
    random: (rng, i) => {
      if (i % 4 === 0) return 1 + uniform(rng, -0.25, 0.25); // near 1, where log is small and cancellation-prone
      if (i % 4 === 1) return logUniform(rng, -1022, -1000); // tiny normals
      if (i % 4 === 2) return subnormal(rng);
      return logUniform(rng, -100, 100);
    },
  },
  tanh: {
    fn: tanh,
    edges: [
      ...SPECIALS,
      ...signed([MIN_SUBNORMAL, 1e-300, 1e-20, pow2(-28), 0.5, 1, 5, 19.06, 21, 1000]),
      ...signed(around(HALF_LN2 / 2)), // where expm1(2|x|) changes branch
      ...signed(around(20)),
    ],
    random: (rng, i) => (i % 2 === 0 ? uniform(rng, -20, 20) : randomSign(rng) * logUniform(rng, -70, 0)),
  },
  sigmoid: {
    fn: sigmoid,
    edges: [...SPECIALS, ...signed([MIN_SUBNORMAL, 1e-20, 1, 5, 36.7, 50, 709, 710, 745, 746, 1000])],
    random: (rng) => uniform(rng, -50, 50),
  },
};

function generate(): Record<string, [string, string][]> {
  const table: Record<string, [string, string][]> = {};
  for (const [name, { fn, edges, random }] of Object.entries(CASES)) {
    const rng = deriveRng(SEED, 'transcendental-fixture', name);
    const inputs = [...edges];
    for (let i = 0; inputs.length < CASES_PER_FUNCTION; i++) inputs.push(random(rng, i));
    table[name] = inputs.map((x) => [toHex(x), toHex(fn(x))]);
  }
  return table;
}

/** One [input, output] pair per line, so a numerics change reads as a line diff. */
function serialize(table: Record<string, [string, string][]>): string {
  const about =
    'float64 bit patterns (hex) [input, output] of shared/kernels/transcendental.ts; ' +
    'regenerate with scripts/gen-transcendental-fixture.ts, never by hand';
  const sections = Object.entries(table).map(
    ([name, rows]) => `  ${JSON.stringify(name)}: [\n${rows.map((r) => `    ${JSON.stringify(r)}`).join(',\n')}\n  ]`,
  );
  return `{\n  "about": ${JSON.stringify(about)},\n${sections.join(',\n')}\n}\n`;
}

/** Walks up from this file (scripts/ or dist/scripts/) to the directory holding package.json. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

const out = resolve(process.argv[2] ?? join(repoRoot(), 'test/fixtures/transcendental-bits.json'));
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, serialize(generate()));
process.stdout.write(`wrote ${out}\n`);
