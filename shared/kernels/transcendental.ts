// exp, expm1, log, tanh and sigmoid built only from IEEE-754 operations that must be
// correctly rounded: + - * / on doubles, comparisons, Math.floor/abs, and exact bit
// manipulation. The engine's Math.exp/log/tanh/pow are not specified to the last bit,
// and V8 builds disagree (1 ulp on ~10% of exp results, up to 3 ulp on tanh), which
// would make a browser worker's gradients differ from a Node worker's. So the
// training numeric path calls these instead, and the whole run stays bit-identical
// on every engine. JS has no FMA, so nothing here can be contracted differently.
//
// The algorithms and minimax coefficients are fdlibm's (e_exp.c, e_log.c and the small-
// argument kernel of s_expm1.c; Sun Microsystems, 1993): exp and log are within 1 ulp in
// double, expm1 and tanh (built on exp − 1 past ln2/2) within a few. Callers store results
// in Float32Array, so only float32 accuracy is needed; near-double accuracy makes the
// float32 rounding almost always the correct one.
//
// This is not a general libm: no pow, no trig, and errors are measured against the
// engine's Math.* in test/transcendental.test.ts rather than proven.

// One double viewed as two 32-bit words, to build 2^k and split exponent from mantissa.
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
// Word order follows the platform's byte order; find the high (sign/exponent) word once.
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
const LO = 1 - HI;

// ln2 = LN2_HI + LN2_LO. LN2_HI has its low 21 mantissa bits zero, so k·LN2_HI is exact
// for |k| < 2^11 (every k that exp or log can produce) and x − k·LN2_HI loses nothing.
const LN2_HI = 6.9314718036912381649e-1; // 0x3FE62E42_FEE00000
const LN2_LO = 1.90821492927058770002e-10; // 0x3DEA39EF_35793C76
const INV_LN2 = 1.442695040888963387; // 0x3FF71547_652B82FE
const HALF_LN2 = 3.46573590279972654709e-1; // 0x3FD62E42_FEFA39EF
const SQRT2 = 1.41421356237309514547; // 0x3FF6A09E_667F3BCD
const E = 2.7182818284590450908; // 0x4005BF0A_8B145769

// exp(x) overflows above O_THRESHOLD and is below half the smallest subnormal under U_THRESHOLD.
const O_THRESHOLD = 7.09782712893383973096e2; // 0x40862E42_FEFA39EF
const U_THRESHOLD = -7.4513321910194110842e2; // 0xC0874910_D52D3051
const TWO_M28 = 3.7252902984619140625e-9; // 2^-28: below it exp(x) rounds to 1 + x
const TWO_M54 = 5.55111512312578270212e-17; // 2^-54: below it expm1(x) rounds to x
const TWO_54 = 18014398509481984; // lifts a subnormal into the normal range
const TWO_M1000 = 9.3326361850321887899e-302; // 2^-1000

// exp: e^r = 1 + 2r/(2 − c) with c = r − r²·P(r²), P minimax on |r| ≤ ln2/2.
const P1 = 1.66666666666666019037e-1;
const P2 = -2.77777777770155933842e-3;
const P3 = 6.61375632143793436117e-5;
const P4 = -1.6533902205465251539e-6;
const P5 = 4.13813679705723846039e-8;

// expm1: rational correction in x²/2, minimax on |x| ≤ ln2/2.
const Q1 = -3.33333333333331316428e-2;
const Q2 = 1.58730158725481460165e-3;
const Q3 = -7.93650757867487942473e-5;
const Q4 = 4.00821782732936239552e-6;
const Q5 = -2.01099218183624371326e-7;

// log: 2·atanh(s) = 2s + s·R(s²), R minimax on s² ≤ 0.1716².
const LG1 = 6.66666666666673513e-1;
const LG2 = 3.999999999940941908e-1;
const LG3 = 2.857142874366239149e-1;
const LG4 = 2.222219843214978396e-1;
const LG5 = 1.818357216161805012e-1;
const LG6 = 1.531383769920937332e-1;
const LG7 = 1.479819860511658591e-1;

/** 2^k for normal k (−1022 ≤ k ≤ 1023), assembled from bits. */
function pow2(k: number): number {
  u32[HI] = (k + 1023) << 20;
  u32[LO] = 0;
  return f64[0];
}

/** y·2^k with a single rounding, for 0.5 < y < 2 and −1075 ≤ k ≤ 1024. */
function scaleByPow2(y: number, k: number): number {
  if (k > 1023) return y * 2 * pow2(k - 1);
  // Scale into the normal range first (exact), so the only rounding is the final
  // step into the subnormals; going the other way would round twice.
  if (k < -1021) return y * pow2(k + 1000) * TWO_M1000;
  return y * pow2(k);
}

/** e^x. NaN → NaN, +∞ → +∞, −∞ → 0; overflows to +∞ and underflows through the subnormals to 0. */
export function exp(x: number): number {
  if (x !== x) return x;
  if (x > O_THRESHOLD) return Infinity;
  if (x < U_THRESHOLD) return 0;
  if (Math.abs(x) < TWO_M28) return 1 + x;
  // The reduction below lands 1 ulp above e at exactly x = 1 (fdlibm's one famous
  // miss; V8 patches it the same way), and e is the value people check first.
  if (x === 1) return E;
  // Cody–Waite: x = k·ln2 + r with |r| ≲ ln2/2, r carried as hi − lo.
  const k = Math.abs(x) > HALF_LN2 ? Math.floor(x * INV_LN2 + 0.5) : 0;
  const hi = x - k * LN2_HI;
  const lo = k * LN2_LO;
  const r = hi - lo;
  const t = r * r;
  const c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k === 0) return 1 - ((r * c) / (c - 2) - r);
  // Adding hi and lo back separately recovers the bits r lost when it was rounded.
  const y = 1 - (lo - (r * c) / (2 - c) - hi);
  return scaleByPow2(y, k);
}

/** e^x − 1, accurate to the last bits when |x| is small (where exp(x) − 1 would cancel). */
export function expm1(x: number): number {
  if (x !== x) return x;
  const ax = Math.abs(x);
  // Beyond ln2/2, e^x ≥ 1.41 or ≤ 0.71, at least 0.29 away from 1, so the subtraction
  // costs at most a few double ulps: far below float32 resolution.
  if (ax > HALF_LN2) return exp(x) - 1;
  if (ax < TWO_M54) return x; // also keeps −0 and subnormals exact
  const hfx = 0.5 * x;
  const hxs = x * hfx;
  const r1 = 1 + hxs * (Q1 + hxs * (Q2 + hxs * (Q3 + hxs * (Q4 + hxs * Q5))));
  const t = 3 - r1 * hfx;
  const e = hxs * ((r1 - t) / (6 - x * t));
  return x - (x * e - hxs);
}

/** Natural logarithm. x < 0 or NaN → NaN, ±0 → −∞, +∞ → +∞; subnormal x is exact-scaled first. */
export function log(x: number): number {
  if (!(x > 0)) return x === 0 ? -Infinity : NaN;
  if (x === Infinity) return x;
  let k = 0;
  f64[0] = x;
  if (u32[HI] < 0x00100000) {
    f64[0] = x * TWO_54;
    k = -54;
  }
  // x = m·2^k with m in [1, 2), then halve m past √2: m in [√2/2, √2) keeps the series
  // argument s = (m − 1)/(m + 1) within ±0.1716, where R converges fast.
  const hx = u32[HI];
  k += (hx >>> 20) - 1023;
  u32[HI] = (hx & 0x000fffff) | 0x3ff00000;
  let m = f64[0];
  if (m >= SQRT2) {
    m *= 0.5;
    k += 1;
  }
  const f = m - 1; // exact (Sterbenz)
  const s = f / (2 + f);
  const z = s * s;
  const R = z * (LG1 + z * (LG2 + z * (LG3 + z * (LG4 + z * (LG5 + z * (LG6 + z * LG7))))));
  // log(m) = f − f²/2 + s·(f²/2 + R); keeping f exact and subtracting the small
  // terms from it holds the error under 1 ulp even as m → 1.
  const hfsq = 0.5 * f * f;
  return k * LN2_HI - (hfsq - (s * (hfsq + R) + k * LN2_LO) - f);
}

// Past 20, 1 − tanh|x| = 2/(e^2|x| + 1) < 2^-56, under a quarter
// ulp of 1: tanh rounds to ±1 in double.
const TANH_SATURATION = 20;

/** Hyperbolic tangent, odd (tanh(−0) = −0), through expm1 so tiny |x| keeps full precision. */
export function tanh(x: number): number {
  if (x === 0 || x !== x) return x;
  const ax = Math.abs(x);
  if (ax > TANH_SATURATION) return x > 0 ? 1 : -1;
  const t = expm1(2 * ax);
  const y = t / (t + 2);
  return x > 0 ? y : -y;
}

/** Logistic function 1/(1 + e^−x); exp only ever sees a non-positive argument, so nothing overflows. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + exp(-x));
  const e = exp(x); // NaN falls through here and stays NaN
  return e / (1 + e);
}
