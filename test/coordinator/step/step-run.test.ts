// coordinator/step/step-run.ts: the bookkeeping kept up to date as tasks come and go
// (open shards, busy workers, each worker's tasks) against a naive twin that rebuilds
// it from every task each time, over seeded random sequences of the scheduler's moves.

import { describe, expect, it } from 'vitest';
import type { StepPlan } from '../../../coordinator/plan.js';
import { StepRun, type Task } from '../../../coordinator/step/step-run.js';
import type { StepWorker } from '../../../coordinator/step/worker.js';
import type { ResultMessage } from '../../../shared/protocol/messages.js';
import { Rng } from '../../../shared/rng.js';
import { memoryWorker } from '../../support/step-worker.js';

const worker = (id: string): StepWorker => memoryWorker(id);

/** A step of `numShards` shards of 2 samples each. */
function plan(numShards: number): StepPlan {
  const shards = Array.from({ length: numShards }, (_, s) => Uint32Array.of(2 * s, 2 * s + 1));
  return { epoch: 0, step: 0, globalStep: 0, shards, count: 2 * numShards };
}

/** The old way: every answer rebuilt from all tasks. */
class NaiveStep {
  readonly tasks = new Map<number, Task>();
  readonly covered: boolean[];
  constructor(numShards: number) {
    this.covered = Array.from({ length: numShards }, () => false);
  }
  openShards(): number[] {
    const held = new Set<number>();
    for (const t of this.tasks.values()) if (!t.expired) for (const s of t.shards) held.add(s);
    return this.covered.flatMap((c, s) => (c || held.has(s) ? [] : [s]));
  }
  busyWorkers(): Set<StepWorker> {
    return new Set([...this.tasks.values()].map((t) => t.worker));
  }
  tasksOf(w: StepWorker): Task[] {
    return [...this.tasks.values()].filter((t) => t.worker === w);
  }
  accept(task: Task): boolean {
    if (task.shards.some((s) => this.covered[s])) return false;
    for (const s of task.shards) this.covered[s] = true;
    return true;
  }
}

function makeTask(step: StepRun, id: number, w: StepWorker, shards: number[]): Task {
  const { nodes, counts, samples } = step.cover(shards);
  const timer = setTimeout(() => {}, 3_600_000);
  timer.unref();
  return {
    id,
    worker: w,
    version: 0,
    shards,
    nodes,
    counts,
    samples,
    sentAt: 0,
    dueAt: 0,
    timer,
    expired: false,
    answered: false,
  };
}

function resultFor(task: Task): ResultMessage {
  return {
    type: 'result',
    taskId: task.id,
    version: 0,
    nodes: task.nodes.map((n, k) => ({ lo: n.lo, size: n.size, lossSum: 0, count: task.counts[k], correct: 0 })),
    dtype: 'f32',
    diverged: false,
    grads: new Float32Array(task.nodes.length),
    computeMs: 1,
  };
}

function expectSame(step: StepRun, naive: NaiveStep, workers: readonly StepWorker[]): void {
  expect(step.openShards()).toEqual(naive.openShards());
  expect(new Set(step.busyWorkers())).toEqual(naive.busyWorkers());
  for (const w of workers) expect(step.tasksOf(w).map((t) => t.id)).toEqual(naive.tasksOf(w).map((t) => t.id));
  expect([...step.tasks.keys()]).toEqual([...naive.tasks.keys()]);
  expect(step.complete).toBe(naive.covered.every((c) => c));
}

describe('StepRun bookkeeping', () => {
  it('matches a naive recomputation over random sequences of assign, expire, drop and accept', () => {
    const rng = new Rng(13);
    let accepted = 0;
    for (let trial = 0; trial < 120; trial++) {
      const numShards = 1 + rng.nextInt(40);
      const workers = Array.from({ length: 1 + rng.nextInt(6) }, (_, k) => worker(`w${k}`));
      const step = new StepRun(plan(numShards), 0, workers);
      const naive = new NaiveStep(numShards);
      const gone: Task[] = [];
      let nextId = 1;
      for (let move = 0; move < 60 && !step.complete; move++) {
        const live = [...naive.tasks.values()];
        const pick = rng.nextFloat();
        if (pick < 0.4 || live.length === 0) {
          // Mostly open shards, as the scheduler hands out; sometimes any run, held or covered.
          const open = naive.openShards();
          const from = open.length > 0 && rng.nextFloat() < 0.8 ? open : Array.from({ length: numShards }, (_, s) => s);
          const start = rng.nextInt(from.length);
          const shards = from.slice(start, start + 1 + rng.nextInt(from.length - start));
          const task = makeTask(step, nextId++, workers[rng.nextInt(workers.length)], shards);
          step.add(task);
          naive.tasks.set(task.id, task);
        } else {
          const task = live[rng.nextInt(live.length)];
          if (pick < 0.6) {
            step.expire(task); // sets task.expired, which the twin reads
          } else if (pick < 0.75) {
            step.drop(task);
            naive.tasks.delete(task.id);
            gone.push(task);
          } else {
            // The scheduler drops a task before it accepts its result.
            step.drop(task);
            naive.tasks.delete(task.id);
            gone.push(task);
            const won = step.accept(task, resultFor(task), 1);
            expect(won).toBe(naive.accept(task));
            if (won) accepted++;
          }
        }
        // Moves on tasks already gone change nothing.
        if (gone.length > 0 && rng.nextFloat() < 0.2) {
          const old = gone[rng.nextInt(gone.length)];
          if (rng.nextFloat() < 0.5) step.expire(old);
          else step.drop(old);
        }
        expectSame(step, naive, workers);
      }
      step.end();
      naive.tasks.clear();
      expectSame(step, naive, workers);
    }
    expect(accepted).toBeGreaterThan(120);
  });

  it('opens an expired task’s shards to others, and a result of it still covers them', () => {
    const [a, b] = [worker('a'), worker('b')];
    const step = new StepRun(plan(4), 0, [a, b]);
    const slow = makeTask(step, 1, a, [0, 1, 2, 3]);
    step.add(slow);
    expect(step.openShards()).toEqual([]);
    expect([...step.busyWorkers()]).toEqual([a]);
    step.expire(slow);
    expect(step.openShards()).toEqual([0, 1, 2, 3]);
    const again = makeTask(step, 2, b, [2, 3]);
    step.add(again);
    expect(step.openShards()).toEqual([0, 1]);
    step.drop(slow);
    expect(step.accept(slow, resultFor(slow), 1)).toBe(true);
    expect(step.openShards()).toEqual([]);
    expect(step.complete).toBe(true);
    step.drop(again);
    expect(step.accept(again, resultFor(again), 1)).toBe(false);
    expect([...step.busyWorkers()]).toEqual([]);
  });

  it('refuses a task id added twice', () => {
    const a = worker('a');
    const step = new StepRun(plan(2), 0, [a]);
    step.add(makeTask(step, 1, a, [0]));
    expect(() => step.add(makeTask(step, 1, a, [1]))).toThrow(/task 1 added twice/);
    step.end();
  });
});
