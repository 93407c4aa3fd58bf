// coordinator/plan.ts: the data order of a run is a function of the training indices,
// seed, epoch, batch size and shard size, never of the workers, so a run's bits are a
// function of its config and seed. epochOrder permutes the training indices per
// (seed, epoch); planStep cuts each step into shards that cover the batch in order and
// visit every sample once per epoch.

import { describe, it, expect } from 'vitest';
import { epochOrder, planStep, stepsPerEpoch } from '../../coordinator/plan.js';

describe('planStep and epochOrder', () => {
  // Training indices need not be 0..n-1: a split hands out an arbitrary subset.
  const train = Uint32Array.from({ length: 103 }, (_, i) => 3 * i + (i % 2));

  it('epochOrder is a permutation of the train indices, fixed by (seed, epoch), and leaves its input alone', () => {
    const copy = train.slice();
    const a = epochOrder(train, 11, 0);
    expect(train).toEqual(copy);
    expect([...a].sort((x, y) => x - y)).toEqual([...train].sort((x, y) => x - y));
    expect(epochOrder(train, 11, 0)).toEqual(a);
    expect(epochOrder(train.slice(), 11, 0)).toEqual(a);
    expect(epochOrder(train, 11, 1)).not.toEqual(a);
    expect(epochOrder(train, 12, 0)).not.toEqual(a);
    expect(a).not.toEqual(train);
  });

  it('cuts each step into shards that cover the batch in order; the last step is partial', () => {
    const order = epochOrder(train, 11, 3);
    for (const [batchSize, shardSize] of [
      [10, 3],
      [10, 10],
      [16, 4],
      [103, 8],
      [200, 7],
      [1, 1],
    ]) {
      const steps = stepsPerEpoch(order.length, batchSize);
      expect(steps).toBe(Math.ceil(103 / batchSize));
      const seen: number[] = [];
      for (let step = 0; step < steps; step++) {
        const plan = planStep(order, 3, step, 3 * steps + step, batchSize, shardSize);
        expect(plan.epoch).toBe(3);
        expect(plan.step).toBe(step);
        expect(plan.globalStep).toBe(3 * steps + step);
        const start = step * batchSize;
        const expectedCount = Math.min(batchSize, order.length - start);
        expect(plan.count).toBe(expectedCount);
        const flat = plan.shards.flatMap((s) => Array.from(s));
        expect(flat).toEqual(Array.from(order.subarray(start, start + expectedCount)));
        expect(plan.shards.length).toBe(Math.ceil(expectedCount / shardSize));
        plan.shards.forEach((s, i) => {
          const isLast = i === plan.shards.length - 1;
          if (!isLast) expect(s.length).toBe(shardSize);
          else expect(s.length).toBe(expectedCount - shardSize * (plan.shards.length - 1));
          expect(s.length).toBeGreaterThan(0);
        });
        seen.push(...flat);
      }
      // The epoch visits every training sample exactly once, in epochOrder's order.
      expect(seen).toEqual(Array.from(order));
    }
    const last = planStep(order, 3, 10, 43, 10, 3);
    expect(last.count).toBe(3);
    expect(last.shards.map((s) => s.length)).toEqual([3]);
  });

  it('is independent of anything but its arguments (same plan twice)', () => {
    const order = epochOrder(train, 5, 2);
    const a = planStep(order, 2, 4, 18, 16, 5);
    const b = planStep(epochOrder(train, 5, 2), 2, 4, 18, 16, 5);
    expect(b.count).toBe(a.count);
    expect(b.shards.map((s) => Array.from(s))).toEqual(a.shards.map((s) => Array.from(s)));
  });
});
