// Learning-rate schedules: the learning rate of a step as a pure function of the step's
// index and the run's length, so a resumed run (which knows its global step) takes the
// very same rates as one that never stopped, and every engine computes the same bits.
//
//   warmup   steps 0 … warmupSteps−1 ramp linearly to lr: lr·(s+1)/warmupSteps
//            (never 0, so the first step moves the weights)
//   then, with d = step − warmupSteps and D = totalSteps − warmupSteps:
//   constant lr
//   step     lr·gamma^⌊d/stepSize⌋ (torch.optim.lr_scheduler.StepLR, counted in steps)
//   cosine   minLr + (lr − minLr)·(1 + cos(π·d/D))/2 (Loshchilov & Hutter, "SGDR",
//            ICLR 2017, without restarts; torch's CosineAnnealingLR with eta_min = minLr)
//   linear   lr + (minLr − lr)·d/D
// cosine and linear reach minLr at d = D and stay there.
//
// Only correctly rounded operations (+ − × ÷): the cosine is our own polynomial, the
// powers of gamma are products, as Math.cos and Math.pow are not specified to the last bit.

import { ConfigError } from '../errors.js';

export const LR_SCHEDULES = ['constant', 'step', 'cosine', 'linear'] as const;
export type LrScheduleKind = (typeof LR_SCHEDULES)[number];

export interface LrScheduleOptions {
  /** The schedule after warmup. */
  readonly lrSchedule: LrScheduleKind;
  /** The peak learning rate (after warmup, before decay), > 0. */
  readonly lr: number;
  /** Steps of linear warmup, an integer ≥ 0; 0: none. */
  readonly warmupSteps: number;
  /** `step`: steps between two decays, an integer ≥ 1. */
  readonly lrStepSize: number;
  /** `step`: the factor applied at each decay, in (0, 1]. */
  readonly lrGamma: number;
  /** `cosine` and `linear`: the floor reached at the last step, in [0, lr]. */
  readonly minLr: number;
}

export const LR_SCHEDULE_DEFAULTS: LrScheduleOptions = {
  lrSchedule: 'constant',
  lr: 0.1,
  warmupSteps: 0,
  lrStepSize: 1000,
  lrGamma: 0.1,
  minLr: 0,
};

/** The options merged over LR_SCHEDULE_DEFAULTS; a ConfigError naming the value when one is out of range. */
export function lrScheduleOptions(options: Partial<LrScheduleOptions>): LrScheduleOptions {
  const o = { ...LR_SCHEDULE_DEFAULTS, ...options };
  if (!LR_SCHEDULES.includes(o.lrSchedule))
    throw new ConfigError(`lr schedule must be one of ${LR_SCHEDULES.join(', ')}, got ${String(o.lrSchedule)}`);
  if (!(Number.isFinite(o.lr) && o.lr > 0))
    throw new ConfigError(`learning rate must be a positive number, got ${o.lr}`);
  if (!(Number.isInteger(o.warmupSteps) && o.warmupSteps >= 0))
    throw new ConfigError(`warmup steps must be an integer ≥ 0, got ${o.warmupSteps}`);
  if (!(Number.isInteger(o.lrStepSize) && o.lrStepSize >= 1))
    throw new ConfigError(`lr step size must be an integer ≥ 1, got ${o.lrStepSize}`);
  if (!(o.lrGamma > 0 && o.lrGamma <= 1)) throw new ConfigError(`lr decay factor must be in (0, 1], got ${o.lrGamma}`);
  if (!(o.minLr >= 0 && o.minLr <= o.lr))
    throw new ConfigError(`minimum learning rate must be in [0, lr = ${o.lr}], got ${o.minLr}`);
  return o;
}

/**
 * The learning rate of step `step` (0-based, the global step about to be taken) in a run
 * of `totalSteps` steps. Expects options checked by lrScheduleOptions.
 */
export function learningRate(o: LrScheduleOptions, step: number, totalSteps: number): number {
  if (!(Number.isInteger(step) && step >= 0))
    throw new RangeError(`lr schedule: step must be an integer ≥ 0, got ${step}`);
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const d = step - o.warmupSteps;
  const span = totalSteps - o.warmupSteps;
  switch (o.lrSchedule) {
    case 'constant':
      return o.lr;
    case 'step':
      return o.lr * powInt(o.lrGamma, Math.floor(d / o.lrStepSize));
    case 'cosine':
      return d >= span ? o.minLr : o.minLr + ((o.lr - o.minLr) * (1 + cosPi(d / span))) / 2;
    case 'linear':
      return d >= span ? o.minLr : o.lr + ((o.minLr - o.lr) * d) / span;
    default: {
      const never: never = o.lrSchedule;
      throw new Error(`unknown lr schedule ${String(never)}`);
    }
  }
}

/** base^k for an integer k ≥ 0 by squaring: a fixed sequence of products. */
export function powInt(base: number, k: number): number {
  let result = 1;
  let b = base;
  for (let e = k; e > 0; e = Math.floor(e / 2)) {
    if (e % 2 === 1) result *= b;
    b *= b;
  }
  return result;
}

// 1/n! for the Taylor series of cos and sin on [0, π/4], where the first omitted terms
// (r^18/18!, r^19/19!) are below 2^-60: the polynomials are as good as double allows.
const INV_FACT = [1, 1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040, 1 / 40320, 1 / 362880, 1 / 3628800];
for (let n = 11; n <= 17; n++) INV_FACT.push(INV_FACT[n - 1] / n);

/** cos(r) for |r| ≤ π/4: Horner in r² over 1 − r²/2! + r⁴/4! − … − r¹⁶/16!. */
function cosSmall(r: number): number {
  const r2 = r * r;
  let s = 0;
  for (let n = 16; n >= 2; n -= 2) s = (n % 4 === 0 ? INV_FACT[n] : -INV_FACT[n]) + r2 * s;
  return 1 + r2 * s;
}

/** sin(r) for |r| ≤ π/4: r·(1 − r²/3! + r⁴/5! − … + r¹⁶/17!). */
function sinSmall(r: number): number {
  const r2 = r * r;
  let s = 0;
  for (let n = 17; n >= 3; n -= 2) s = ((n - 1) % 4 === 0 ? INV_FACT[n] : -INV_FACT[n]) + r2 * s;
  return r + r * r2 * s;
}

/** cos(π·x) for x in [0, 1], from cos(π − a) = −cos(a) and cos(π/2 − a) = sin(a). */
export function cosPi(x: number): number {
  if (!(x >= 0 && x <= 1)) throw new RangeError(`cosPi: expected x in [0, 1], got ${x}`);
  const sign = x > 0.5 ? -1 : 1;
  const y = x > 0.5 ? 1 - x : x; // exact (Sterbenz)
  return sign * (y <= 0.25 ? cosSmall(Math.PI * y) : sinSmall(Math.PI * (0.5 - y)));
}
