// shared/finite.ts against the obvious test per value: every length around the
// four-value rounds, every position of a NaN, ±Infinity, −0 and the extremes.

import { describe, expect, it } from 'vitest';
import { allFinite, firstNonFinite } from '../../shared/finite.js';

describe('allFinite', () => {
  it('agrees with Number.isFinite on every value, whatever its position', () => {
    const specials = [NaN, Infinity, -Infinity, -0, 3.4028234e38, -3.4028234e38, 1.4e-45];
    for (let n = 0; n <= 11; n++) {
      const base = Float32Array.from({ length: n }, (_, i) => (i % 3) - 1.5);
      expect(allFinite(base)).toBe(true);
      expect(firstNonFinite(base)).toBe(-1);
      for (let at = 0; at < n; at++) {
        for (const v of specials) {
          const a = base.slice();
          a[at] = v;
          const naive = a.every((x) => Number.isFinite(x));
          expect(allFinite(a), `${n} values, ${v} at ${at}`).toBe(naive);
          expect(firstNonFinite(a)).toBe(naive ? -1 : at);
        }
      }
    }
  });

  it('reads only the view it is given', () => {
    const backing = new Float32Array([NaN, 1, 2, 3, 4, 5, Infinity]);
    expect(allFinite(backing.subarray(1, 6))).toBe(true);
  });
});
