import { describe, expect, it } from 'vitest';
import { alignedShares, proportionalShares } from '../../../coordinator/step/shares.js';
import { coverNodes } from '../../../shared/tree.js';
import { Rng } from '../../../shared/rng.js';

/** Tree nodes each worker would upload for contiguous shares cut left to right. */
function uploads(shares: readonly number[], n: number): number[] {
  let start = 0;
  return shares.map((share) => {
    const held = Array.from({ length: share }, (_, k) => start + k);
    start += share;
    return coverNodes(held, n).length;
  });
}

describe('proportionalShares', () => {
  it('splits in proportion to speed, unmeasured workers counting as the mean', () => {
    expect(proportionalShares(16, [1, 1])).toEqual([8, 8]);
    expect(proportionalShares(11, [10, 1])).toEqual([10, 1]);
    expect(proportionalShares(12, [2, undefined, 1])).toEqual([5, 4, 3]);
  });
});

describe('alignedShares', () => {
  it('cuts on tree nodes when speeds are close, so each worker uploads one gradient', () => {
    // A ragged proportional cut (9 + 7) would upload 2 + 3 gradients.
    expect(uploads(proportionalShares(16, [1, 0.85]), 16)).toEqual([2, 3]);
    const shares = alignedShares(16, [1, 0.85]);
    expect(shares).toEqual([8, 8]);
    expect(uploads(shares, 16)).toEqual([1, 1]);
    expect(uploads(alignedShares(16, [1, 1.1, 0.9, 1]), 16)).toEqual([1, 1, 1, 1]);
  });

  it('gives up alignment where it would cost the slowest worker more than a quarter', () => {
    const speeds = [1, 0.5];
    const shares = alignedShares(16, speeds);
    const ideal = 16 / 1.5;
    expect(Math.max(shares[0] / 1, shares[1] / 0.5)).toBeLessThanOrEqual(ideal * 1.25);
    expect(shares).not.toEqual([8, 8]);
  });

  it('always hands out every shard exactly once, whatever the speeds', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 500; trial++) {
      const n = 1 + Math.floor(rng.nextFloat() * 40);
      const workers = 1 + Math.floor(rng.nextFloat() * 5);
      const speeds = Array.from({ length: workers }, () =>
        rng.nextFloat() < 0.2 ? undefined : 0.05 + rng.nextFloat() * 3,
      );
      const shares = alignedShares(n, speeds);
      expect(shares).toHaveLength(workers);
      expect(shares.every((s) => Number.isInteger(s) && s >= 0)).toBe(true);
      expect(shares.reduce((a, b) => a + b, 0)).toBe(n);
    }
  });
});
