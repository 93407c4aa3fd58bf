// coordinator/step/utilization.ts: the share of the workers' time spent computing,
// over windows of steps, after the warm-up steps.

import { describe, expect, it } from 'vitest';
import { Utilization } from '../../../coordinator/step/utilization.js';

describe('Utilization', () => {
  it('reports each full window after the skipped steps: compute over the time of the workers that took part', () => {
    const u = new Utilization({ windowSteps: 3, skipSteps: 2 });
    // Warm-up steps do not count, however they look.
    expect(u.add(1000, 0, 2)).toBeNull();
    expect(u.add(1000, 0, 2)).toBeNull();
    expect(u.add(10, 8, 2)).toBeNull();
    expect(u.add(10, 8, 2)).toBeNull();
    // 2 workers × 10 ms each step, 4 ms computed per worker: 40%.
    expect(u.add(10, 8, 2)).toEqual({ steps: 3, stepMs: 10, computeMsPerWorker: 4, computeShare: 0.4 });
    // A fresh window; a step in which nobody computed (all results dropped) is left out.
    expect(u.add(4, 3, 1)).toBeNull();
    expect(u.add(50, 0, 0)).toBeNull();
    expect(u.add(4, 3, 1)).toBeNull();
    expect(u.add(4, 3, 1)).toEqual({ steps: 3, stepMs: 4, computeMsPerWorker: 3, computeShare: 0.75 });
  });

  it('refuses a window of no steps', () => {
    expect(() => new Utilization({ windowSteps: 0, skipSteps: 0 })).toThrow(/windowSteps/);
  });
});
