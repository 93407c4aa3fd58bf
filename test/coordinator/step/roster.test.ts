// coordinator/step/roster.ts: deadlines from the fleet's mean speed, kept as a running
// sum, against a naive twin of the speed model that averages every ready worker each
// time, over seeded random sequences of joins, departures, measurements and misses.

import { describe, expect, it } from 'vitest';
import { Roster } from '../../../coordinator/step/roster.js';
import type { StepWorker } from '../../../coordinator/step/worker.js';
import { Rng } from '../../../shared/rng.js';
import { memoryWorker } from '../../support/step-worker.js';

const worker = (id: string): StepWorker => memoryWorker(id);

/** Bounds wide enough that no deadline below is clamped: 4 × samples / speed + 250 is seen as is. */
const WIDE = { taskTimeoutMinMs: 1e-9, taskTimeoutMaxMs: 1e15 };

/** The speed model as roster.ts documents it, averaging over the roster at every question. */
class NaiveSpeeds {
  readonly ready: StepWorker[] = [];
  readonly speed = new Map<StepWorker, number>();
  readonly verified = new Map<StepWorker, number>();
  measured(w: StepWorker): number | undefined {
    const s = this.speed.get(w);
    const v = this.verified.get(w);
    return s === undefined || v === undefined ? s : Math.min(s, v);
  }
  mean(): number | undefined {
    const known = this.ready.map((w) => this.measured(w)).filter((v): v is number => v !== undefined);
    return known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : undefined;
  }
  add(w: StepWorker): void {
    this.ready.push(w);
  }
  remove(w: StepWorker): void {
    const k = this.ready.indexOf(w);
    if (k >= 0) this.ready.splice(k, 1);
    this.speed.delete(w);
    this.verified.delete(w);
  }
  measure(w: StepWorker, samples: number, elapsedMs: number, verified: boolean): void {
    if (!this.ready.includes(w)) return;
    const s = samples / Math.max(elapsedMs, 0.01);
    for (const table of verified ? [this.speed, this.verified] : [this.speed]) {
      const previous = table.get(w);
      table.set(w, previous === undefined ? s : 0.3 * s + 0.7 * previous);
    }
  }
  missed(w: StepWorker): void {
    const s = this.measured(w) ?? this.mean();
    if (s === undefined) return;
    this.speed.set(w, s * 0.5);
    if (this.verified.has(w)) this.verified.set(w, s * 0.5);
  }
  /** deadline() with WIDE bounds. */
  deadline(w: StepWorker, samples: number): number {
    const s = this.measured(w) ?? this.mean();
    return s === undefined ? 10_000 : 4 * (samples / s) + 250;
  }
}

describe('Roster deadlines', () => {
  it('match a naive average over the roster through random joins, departures, measurements and misses', () => {
    const rng = new Rng(29);
    let meanAnswers = 0;
    const wrong: { trial: number; move: number; worker: string; want: number; got: number }[] = [];
    for (let trial = 0; trial < 40; trial++) {
      const roster = new Roster(WIDE);
      const naive = new NaiveSpeeds();
      const everyone = Array.from({ length: 2 + rng.nextInt(30) }, (_, k) => worker(`w${k}`));
      const outside = new Set(everyone);
      const newcomer = worker('newcomer'); // never measured: its deadline is the fleet's mean
      roster.add(newcomer);
      naive.add(newcomer);
      // Speeds over eight orders of magnitude, so a fast worker leaving slow ones exposes cancellation.
      const scale = new Map(everyone.map((w) => [w, 10 ** (rng.nextInt(9) - 4)]));
      for (let move = 0; move < 400; move++) {
        const w = everyone[rng.nextInt(everyone.length)];
        const pick = rng.nextFloat();
        if (outside.has(w) && pick < 0.5) {
          roster.add(w);
          naive.add(w);
          outside.delete(w);
        } else if (pick < 0.1) {
          roster.remove(w);
          naive.remove(w);
          outside.add(w);
        } else if (pick < 0.85) {
          // Measuring a worker that is not ready changes nothing.
          const samples = 1 + rng.nextInt(64);
          const elapsed = (samples / scale.get(w)!) * (0.5 + rng.nextFloat());
          const verified = rng.nextFloat() < 0.3;
          roster.measure(w, samples, elapsed, verified);
          naive.measure(w, samples, elapsed, verified);
        } else if (!outside.has(w)) {
          roster.missed(w);
          naive.missed(w);
        }
        for (const v of [newcomer, ...everyone]) {
          const want = naive.deadline(v, 1e6);
          const got = roster.deadline(v, 1e6);
          // Without a speed, exactly the fixed allowance; with one, the same up to rounding (the
          // running sum's error is bounded by about 2ε per change since it was last summed afresh).
          if (want === 10_000 ? got !== 10_000 : !(Math.abs(got - want) / want < 1e-12))
            wrong.push({ trial, move, worker: v.id, want, got });
        }
        if (naive.mean() !== undefined) meanAnswers++;
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(meanAnswers).toBeGreaterThan(10_000);
  });

  it('gives the fleet’s exact mean to a worker not yet measured, and nothing once the fleet has left', () => {
    const roster = new Roster(WIDE);
    const [a, b, c, fresh] = [worker('a'), worker('b'), worker('c'), worker('fresh')];
    for (const w of [a, b, c, fresh]) roster.add(w);
    expect(roster.deadline(fresh, 8)).toBe(10_000);
    roster.measure(a, 8, 4); // 2 samples/ms
    roster.measure(b, 8, 1); // 8
    roster.measure(c, 8, 2); // 4
    expect(roster.deadline(fresh, 56)).toBe(4 * (56 / (14 / 3)) + 250);
    roster.remove(b);
    expect(roster.deadline(fresh, 12)).toBe(4 * (12 / 3) + 250);
    expect(roster.isMeasured(a)).toBe(true);
    expect(roster.isMeasured(fresh)).toBe(false);
    roster.remove(a);
    roster.remove(c);
    expect(roster.deadline(fresh, 8)).toBe(10_000);
  });

  it('names each worker measured since it was last asked, once', () => {
    const roster = new Roster(WIDE);
    const [a, b] = [worker('a'), worker('b')];
    roster.add(a);
    roster.add(b);
    roster.measure(a, 8, 1);
    roster.measure(a, 8, 1);
    expect(roster.takeRemeasured()).toEqual([a]);
    expect(roster.takeRemeasured()).toEqual([]);
    roster.measure(b, 8, 1);
    roster.remove(b);
    expect(roster.takeRemeasured()).toEqual([]);
  });
});
