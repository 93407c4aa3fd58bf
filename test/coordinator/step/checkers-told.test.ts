// coordinator/step/checkers.ts told of every change (as the scheduler tells it), against a
// naive twin that rebuilds everything from scratch the way a scan would: the ready workers
// in join order, the busy ones from every unanswered task of the step, the checks out,
// the tasks noted by version, and the in-a-row counts. Over seeded random sequences of
// joins, departures, tasks sent, answered, expired and dropped, steps ended or cancelled,
// checks sent, answered and missed, every audit must see the same eligible workers and
// the same candidates (each once: a draw of k in [0, n) reaches each exactly once, so a
// uniform k is a uniform candidate), and get the outcome the rules give for its draw.

import { describe, expect, it } from 'vitest';
import type { StepPlan } from '../../../coordinator/plan.js';
import { MAX_CHECKS_IN_A_ROW, WorkerCheckers } from '../../../coordinator/step/checkers.js';
import { StepRun, type Task } from '../../../coordinator/step/step-run.js';
import type { CheckWork } from '../../../coordinator/step/verifier.js';
import type { StepWorker } from '../../../coordinator/step/worker.js';
import { Rng } from '../../../shared/rng.js';
import { memoryWorker } from '../../support/step-worker.js';

const NUM_SHARDS = 12;
const NOBODY: ReadonlySet<StepWorker> = new Set();

const worker = (id: string): StepWorker => memoryWorker(id);

function plan(): StepPlan {
  const shards = Array.from({ length: NUM_SHARDS }, (_, s) => Uint32Array.of(s));
  return { epoch: 0, step: 0, globalStep: 0, shards, count: NUM_SHARDS };
}

function work(version: number, shards: readonly number[]): CheckWork {
  return {
    version,
    step: version,
    numShards: NUM_SHARDS,
    shards: shards.map((id) => ({ id, indices: Uint32Array.of(id) })),
    weights: new Float32Array(1),
  };
}

function task(step: StepRun, id: number, w: StepWorker, shards: number[]): Task {
  const { nodes, counts, samples } = step.cover(shards);
  const timer = setTimeout(() => {}, 3_600_000);
  timer.unref();
  return {
    ...{ id, worker: w, version: step.version, shards, nodes, counts, samples },
    ...{ sentAt: 0, dueAt: 0, timer, expired: false, answered: false },
  };
}

/** A random non-empty run of shard ids. */
function shardRun(rng: Rng): number[] {
  const lo = rng.nextInt(NUM_SHARDS);
  return Array.from({ length: 1 + rng.nextInt(Math.min(3, NUM_SHARDS - lo)) }, (_, i) => lo + i);
}

/** The rules, the way a scan applies them: everything rebuilt from what happened. */
class NaiveTwin {
  readonly roster: StepWorker[] = [];
  /** Check id → checker, for the checks out. */
  readonly checks = new Map<number, StepWorker>();
  readonly noted = new Map<number, Map<StepWorker, Set<number>>>();
  readonly inARow = new Map<StepWorker, Map<StepWorker, number>>();

  eligible(step: StepRun | null): StepWorker[] {
    const busy = new Set(step === null ? [] : [...step.tasks.values()].filter((t) => !t.answered).map((t) => t.worker));
    const checking = new Set(this.checks.values());
    return this.roster.filter((w) => !busy.has(w) && !checking.has(w));
  }

  candidates(step: StepRun | null, author: StepWorker, w: CheckWork): StepWorker[] {
    const eligible = this.eligible(step).filter((x) => x !== author);
    const sent = this.noted.get(w.version);
    const fresh = eligible.filter((x) => !w.shards.some((s) => sent?.get(x)?.has(s.id) === true));
    return fresh.length > 0 ? fresh : eligible;
  }

  note(w: StepWorker, version: number, shards: readonly number[]): void {
    const byWorker = this.noted.get(version) ?? new Map<StepWorker, Set<number>>();
    this.noted.set(version, byWorker);
    const set = byWorker.get(w) ?? new Set<number>();
    byWorker.set(w, set);
    for (const s of shards) set.add(s);
  }

  gone(w: StepWorker): void {
    this.roster.splice(this.roster.indexOf(w), 1);
    for (const [id, c] of [...this.checks]) if (c === w) this.checks.delete(id);
    for (const byWorker of this.noted.values()) byWorker.delete(w);
    this.inARow.delete(w);
    for (const counts of this.inARow.values()) counts.delete(w);
  }

  /** What an audit whose draw gave the k-th candidate (k ≥ their count: none) comes to. */
  outcome(author: StepWorker, checker: StepWorker | null): StepWorker | null {
    const counts = this.inARow.get(author) ?? new Map<StepWorker, number>();
    if (checker === null || (counts.get(checker) ?? 0) >= MAX_CHECKS_IN_A_ROW) {
      this.inARow.delete(author);
      return null;
    }
    counts.set(checker, (counts.get(checker) ?? 0) + 1);
    this.inARow.set(author, counts);
    return checker;
  }
}

function trial(seed: number): { audits: number; picked: number } {
  const rng = new Rng(seed);
  const twin = new NaiveTwin();
  const everyone: StepWorker[] = [];
  let step: StepRun | null = null;
  let version = 0;
  let nextTask = 1;
  let drawn: { n: number; k: number } | null = null;
  const sent: { checkId: number; worker: StepWorker }[] = [];
  const timers = new Map<number, () => void>();
  let lastCheckId = 0;
  const pool = new WorkerCheckers({
    workers: () => {
      throw new Error('a told pool never scans the workers');
    },
    busy: () => step?.computingWorkers() ?? NOBODY,
    told: true,
    send: (w, checkId) => {
      lastCheckId = checkId;
      sent.push({ checkId, worker: w });
    },
    deadlineMs: 1000,
    startTimer: (_ms, onExpired) => {
      const id = lastCheckId + 1; // send comes after the timer starts: this is the check's id
      timers.set(id, onExpired);
      return () => timers.delete(id);
    },
    pick: (n) => {
      // Mostly a candidate; sometimes the coordinator's slot of a sole candidate.
      const k = rng.nextInt(n);
      drawn = { n, k };
      return k;
    },
  });
  const join = (): void => {
    // Mostly a new worker; sometimes one that left comes back as the same object.
    const away = everyone.filter((w) => !twin.roster.includes(w));
    const w = away.length > 0 && rng.nextFloat() < 0.3 ? away[rng.nextInt(away.length)] : worker(`w${everyone.length}`);
    if (!everyone.includes(w)) everyone.push(w);
    twin.roster.push(w);
    pool.onReady(w);
  };
  const finish = (checkId: number): void => void twin.checks.delete(checkId);
  let audits = 0;
  let picked = 0;
  for (let i = 0; i < 4; i++) join();
  for (let move = 0; move < 400; move++) {
    const r = rng.nextFloat();
    const tasks = step === null ? [] : [...step.tasks.values()];
    if (r < 0.06) join();
    else if (r < 0.1 && twin.roster.length > 0) {
      // The scheduler's order: the roster and the checkers first, then the worker's tasks.
      const w = twin.roster[rng.nextInt(twin.roster.length)];
      twin.gone(w);
      pool.onGone(w);
      for (const t of step?.tasksOf(w) ?? []) step!.drop(t);
    } else if (r < 0.14) {
      if (step === null) {
        step = new StepRun(plan(), ++version, twin.roster);
        const watched = step;
        watched.watchComputing((w) => pool.onBusy(w));
      } else if (rng.nextFloat() < 0.5) {
        step.end(); // a step done or failed: the state leaves collecting after
        step = null;
      } else {
        const ended = step; // cancelled: the state leaves collecting first
        step = null;
        ended.end();
      }
    } else if (r < 0.4 && step !== null && twin.roster.length > 0) {
      const w = twin.roster[rng.nextInt(twin.roster.length)];
      const shards = shardRun(rng);
      step.add(task(step, nextTask++, w, shards));
      pool.noteTask(w, step.version, shards);
      twin.note(w, step.version, shards);
    } else if (r < 0.5 && tasks.length > 0) step!.answer(tasks[rng.nextInt(tasks.length)]);
    else if (r < 0.55 && tasks.length > 0) step!.expire(tasks[rng.nextInt(tasks.length)]);
    else if (r < 0.62 && tasks.length > 0) step!.drop(tasks[rng.nextInt(tasks.length)]);
    else if (r < 0.7 && twin.checks.size > 0) {
      const [checkId, w] = [...twin.checks][rng.nextInt(twin.checks.size)];
      finish(checkId);
      if (rng.nextFloat() < 0.5)
        expect(pool.onDigest(w, { type: 'digest', checkId, digest: '00'.repeat(32) })).toBe(true);
      else timers.get(checkId)!();
    } else if (everyone.length > 0) {
      audits++;
      const author = everyone[rng.nextInt(everyone.length)];
      const w = work(1 + rng.nextInt(Math.max(1, version)), shardRun(rng));
      const expected = twin.candidates(step, author, w);
      const candidates = pool.candidates(author, w);
      expect(candidates).toHaveLength(expected.length);
      expect(new Set(candidates)).toEqual(new Set(expected));
      drawn = null;
      const checker = pool.idle(author, w);
      if (expected.length === 0) {
        expect(drawn).toBeNull();
        expect(checker).toBe(twin.outcome(author, null));
      } else {
        const { n, k } = drawn as unknown as { n: number; k: number };
        expect(n).toBe(Math.max(2, expected.length));
        expect(checker).toBe(twin.outcome(author, k < candidates.length ? candidates[k] : null));
      }
      if (checker !== null) {
        picked++;
        void pool.check(checker, w);
        const { checkId } = sent[sent.length - 1];
        twin.checks.set(checkId, checker);
      }
    }
    expect(new Set(pool.eligible())).toEqual(new Set(twin.eligible(step)));
    expect(pool.eligible()).toHaveLength(twin.eligible(step).length);
  }
  step?.end();
  return { audits, picked };
}

describe('WorkerCheckers told of every change', () => {
  it('sees the same eligible workers and candidates as a naive scan, and applies the rules to the draw', () => {
    let audits = 0;
    let picked = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const t = trial(seed);
      audits += t.audits;
      picked += t.picked;
    }
    // The sequences reach both outcomes often: the comparison is not vacuous.
    expect(audits).toBeGreaterThan(3000);
    expect(picked).toBeGreaterThan(audits / 10);
    expect(audits - picked).toBeGreaterThan(audits / 10);
  });

  it('keeps a worker out while its only task is out, and lets it check once the result is in', () => {
    const [a, b] = ['a', 'b'].map(worker);
    let step: StepRun | null = new StepRun(plan(), 1, [a, b]);
    const pool = new WorkerCheckers({
      workers: () => [],
      busy: () => step?.computingWorkers() ?? NOBODY,
      told: true,
      send: () => {},
      deadlineMs: 1000,
      startTimer: () => () => {},
      pick: () => 0,
    });
    step.watchComputing((w) => pool.onBusy(w));
    pool.onReady(a);
    pool.onReady(b);
    const t = task(step, 1, b, [0]);
    step.add(t);
    expect(pool.idle(a, work(1, [1]))).toBeNull();
    step.answer(t);
    expect(pool.idle(a, work(1, [1]))).toBe(b);
    step.end();
    step = null;
    expect(pool.eligible().sort((x, y) => x.id.localeCompare(y.id))).toEqual([a, b]);
  });
});
