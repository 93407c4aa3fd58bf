// shared/optim/schedule.ts: the learning rate at the boundaries users set (the first
// and last warmup step, each decay of `step`, the middle and the end of cosine and
// linear), the option checks, and the own cosine against Math.cos.

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../shared/errors.js';
import {
  cosPi,
  learningRate,
  type LrScheduleOptions,
  lrScheduleOptions,
  powInt,
} from '../../../shared/optim/schedule.js';

const at = (options: Partial<LrScheduleOptions>, step: number, total: number) =>
  learningRate(lrScheduleOptions(options), step, total);

describe('learning-rate schedules', () => {
  it('constant is lr at every step, the very number given (the trainer feeds it as is)', () => {
    for (const step of [0, 1, 99, 10_000]) expect(at({ lr: 0.1 }, step, 100)).toBe(0.1);
  });

  it('warmup ramps from lr/W at step 0 to lr at step W−1, then the schedule starts', () => {
    const o = { lr: 0.4, warmupSteps: 4 };
    expect([0, 1, 2, 3, 4, 50].map((s) => at(o, s, 100))).toEqual([0.1, 0.2, 0.30000000000000004, 0.4, 0.4, 0.4]);
    // Warmup then cosine: the cosine's full lr right after warmup, its floor at the end.
    const c = { lr: 1, warmupSteps: 10, lrSchedule: 'cosine' as const, minLr: 0.1 };
    expect(at(c, 9, 110)).toBe(1);
    expect(at(c, 10, 110)).toBe(1);
    expect(at(c, 60, 110)).toBeCloseTo(0.55, 15);
    expect(at(c, 110, 110)).toBe(0.1);
  });

  it('step multiplies by gamma every stepSize steps after warmup', () => {
    const o = { lr: 1, lrSchedule: 'step' as const, lrStepSize: 3, lrGamma: 0.5, warmupSteps: 2 };
    expect([2, 3, 4, 5, 7, 8, 11].map((s) => at(o, s, 100))).toEqual([1, 1, 1, 0.5, 0.5, 0.25, 0.125]);
    expect(at({ ...o, lrGamma: 1 }, 99, 100)).toBe(1);
  });

  it('cosine starts at lr, halves at mid-span, ends at minLr and stays there past the end', () => {
    const o = { lr: 0.2, lrSchedule: 'cosine' as const, minLr: 0 };
    expect(at(o, 0, 100)).toBe(0.2);
    expect(at(o, 50, 100)).toBeCloseTo(0.1, 16);
    expect(at(o, 25, 100)).toBeCloseTo((0.2 * (1 + Math.SQRT1_2)) / 2, 15);
    expect(at(o, 99, 100)).toBeGreaterThan(0);
    expect(at(o, 100, 100)).toBe(0);
    expect(at(o, 150, 100)).toBe(0);
    // Never increasing over the span.
    for (let s = 1; s <= 100; s++) expect(at(o, s, 100)).toBeLessThanOrEqual(at(o, s - 1, 100));
  });

  it('linear falls in equal steps from lr to minLr', () => {
    const o = { lr: 1, lrSchedule: 'linear' as const, minLr: 0.2, warmupSteps: 5 };
    expect([5, 7, 9, 10, 13, 15, 20].map((s) => at(o, s, 15))).toEqual([
      1, 0.84, 0.6799999999999999, 0.6, 0.36, 0.2, 0.2,
    ]);
  });

  it('is a function of the step alone: the same bits whatever came before', () => {
    const o = lrScheduleOptions({ lr: 0.3, lrSchedule: 'cosine', warmupSteps: 7, minLr: 0.01 });
    const forward = Array.from({ length: 200 }, (_, s) => learningRate(o, s, 200));
    const backward = Array.from({ length: 200 }, (_, s) => learningRate(o, 199 - s, 200)).reverse();
    expect(backward).toEqual(forward);
  });

  it('refuses bad options with the value in a one-line ConfigError', () => {
    const bad: [Partial<LrScheduleOptions>, RegExp][] = [
      [
        { lrSchedule: 'exponential' as 'step' },
        /lr schedule must be one of constant, step, cosine, linear, got exponential/,
      ],
      [{ lr: -1 }, /learning rate must be a positive number, got -1/],
      [{ warmupSteps: 1.5 }, /warmup steps must be an integer ≥ 0, got 1.5/],
      [{ warmupSteps: -1 }, /warmup steps must be an integer ≥ 0, got -1/],
      [{ lrStepSize: 0 }, /lr step size must be an integer ≥ 1, got 0/],
      [{ lrGamma: 0 }, /lr decay factor must be in \(0, 1\], got 0/],
      [{ lrGamma: 1.1 }, /lr decay factor must be in \(0, 1\], got 1.1/],
      [{ lr: 0.1, minLr: 0.2 }, /minimum learning rate must be in \[0, lr = 0.1\], got 0.2/],
    ];
    for (const [options, message] of bad) {
      expect(() => lrScheduleOptions(options)).toThrow(ConfigError);
      expect(() => lrScheduleOptions(options)).toThrow(message);
    }
    expect(() => at({}, -1, 10)).toThrow(RangeError);
  });
});

describe('the schedule arithmetic', () => {
  it('cosPi agrees with Math.cos(π·x) to a few ulp over [0, 1], exactly at 0, 1/2 and 1', () => {
    expect([cosPi(0), cosPi(0.5), cosPi(1)]).toEqual([1, 0, -1]);
    for (let i = 0; i <= 10_000; i++) {
      const x = i / 10_000;
      expect(Math.abs(cosPi(x) - Math.cos(Math.PI * x)), `x = ${x}`).toBeLessThan(4e-16);
    }
    expect(() => cosPi(1.5)).toThrow(RangeError);
  });

  it('powInt is exact where the powers are representable', () => {
    expect([0, 1, 2, 3, 10].map((k) => powInt(0.5, k))).toEqual([1, 0.5, 0.25, 0.125, 2 ** -10]);
    expect(powInt(3, 13)).toBe(3 ** 13);
  });
});
