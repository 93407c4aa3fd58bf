// The run configuration's optimizer and schedule settings: an absent --lr is the
// optimizer's default, SGD's momentum is refused with Adam, every value out of range is
// one line naming its flag, and warmup must end before the run does.

import { describe, expect, it } from 'vitest';
import { checkScheduleFits, resolveConfig, RUN_DEFAULTS } from '../../coordinator/config.js';
import { ConfigError } from '../../shared/errors.js';

function refusal(make: () => unknown): string {
  try {
    make();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveConfig: optimizers and schedules', () => {
  it("takes the optimizer's learning rate when --lr is absent", () => {
    expect(resolveConfig({}).lr).toBe(0.1);
    expect(resolveConfig({ optimizer: 'adam' }).lr).toBe(0.001);
    expect(resolveConfig({ optimizer: 'adamw', lr: 0.01, weightDecay: 0.1 }).lr).toBe(0.01);
    expect(resolveConfig({ lr: undefined }).lr).toBe(RUN_DEFAULTS.lr);
  });

  it('refuses SGD-only settings with adam and adamw', () => {
    expect(refusal(() => resolveConfig({ optimizer: 'adam', momentum: 0.5 }))).toBe(
      "--momentum is SGD's; adam uses --beta1 instead",
    );
    expect(refusal(() => resolveConfig({ optimizer: 'adamw', nesterov: true }))).toMatch(/^--nesterov is SGD's/);
  });

  it('names the flag and the value out of range', () => {
    expect(refusal(() => resolveConfig({ beta1: 1 }))).toBe('--beta1 must be in [0, 1), got 1');
    expect(refusal(() => resolveConfig({ eps: 0 }))).toBe('--eps must be a positive number, got 0');
    expect(refusal(() => resolveConfig({ warmupSteps: 1.5 }))).toBe('--warmup-steps must be an integer ≥ 0, got 1.5');
    expect(refusal(() => resolveConfig({ lrGamma: 0 }))).toBe('--lr-gamma must be in (0, 1], got 0');
    expect(refusal(() => resolveConfig({ minLr: 0.5 }))).toBe('--min-lr must be in [0, --lr = 0.1], got 0.5');
    expect(refusal(() => resolveConfig({ optimizer: 'adamw', lr: 1, weightDecay: 1 }))).toMatch(/^adamw needs/);
  });

  it('refuses warmup as long as the run', () => {
    const c = resolveConfig({ warmupSteps: 10 });
    expect(() => checkScheduleFits(c, 11)).not.toThrow();
    expect(refusal(() => checkScheduleFits(c, 10))).toBe(
      "--warmup-steps (10) must be below the run's 10 steps (--epochs × steps per epoch)",
    );
  });
});
