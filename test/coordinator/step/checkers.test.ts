// Who checks an audit (coordinator/step/checkers.ts): a uniform draw among the eligible
// idle workers, never the author, never a worker with a task in the step or a check
// out, and one that was sent the same shards only when nobody else is eligible. The
// draws here come from the OS generator, as in a run: with 3000 picks among at most 5
// candidates, a candidate left out by chance has probability below 5 · (4/5)^3000.

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { WorkerCheckers } from '../../../coordinator/step/checkers.js';
import type { CheckWork } from '../../../coordinator/step/verifier.js';
import type { StepWorker } from '../../../coordinator/step/worker.js';

const silent = pino({ level: 'silent' });
const PICKS = 3000;

function worker(id: string): StepWorker {
  return {
    id,
    kind: 'node',
    agent: id,
    remote: '127.0.0.1:1',
    log: silent,
    tasksDone: 0,
    samplesDone: 0,
    computeMs: 0,
    standby: null,
    send: () => {},
    reject: () => {},
    ban: () => {},
  };
}

function work(version: number, shards: readonly number[]): CheckWork {
  return {
    version,
    step: version,
    numShards: 8,
    shards: shards.map((id) => ({ id, indices: new Uint32Array([id]) })),
    weights: new Float32Array(4),
  };
}

/** A pool over `workers`, `busy` of them with a task; checks are sent nowhere and never expire. */
function pool(workers: readonly StepWorker[], busy: readonly StepWorker[] = [], pick?: (n: number) => number) {
  return new WorkerCheckers({
    workers: () => workers,
    busy: () => new Set(busy),
    send: () => {},
    deadlineMs: 1000,
    startTimer: () => () => {},
    ...(pick === undefined ? {} : { pick }),
  });
}

/** How often each worker id is picked over PICKS draws (null: nobody eligible). */
function tally(p: WorkerCheckers, author: StepWorker, w: CheckWork): Map<string | null, number> {
  const counts = new Map<string | null, number>();
  for (let i = 0; i < PICKS; i++) {
    const id = p.idle(author, w)?.id ?? null;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

describe('WorkerCheckers.idle: who checks an audit', () => {
  const [a, b, c, d, e, f] = ['a', 'b', 'c', 'd', 'e', 'f'].map(worker);

  it('picks every eligible worker over many audits, never the author, never a busy one', () => {
    const p = pool([a, b, c, d, e, f], [b, e]);
    const counts = tally(p, a, work(3, [0, 1]));
    expect([...counts.keys()].sort()).toEqual(['c', 'd', 'f']);
    // Spread: each of 3 candidates gets a fair share (expected 1000, standard deviation 26).
    for (const n of counts.values()) expect(n).toBeGreaterThan(PICKS / 3 - 300);
  });

  it('does not depend on join order: the last to join is picked as often as the first', () => {
    const counts = tally(pool([a, b, c]), a, work(0, [0]));
    expect(counts.get('b')).toBeGreaterThan(PICKS / 2 - 300);
    expect(counts.get('c')).toBeGreaterThan(PICKS / 2 - 300);
  });

  it('passes over a worker with a check out', () => {
    const p = pool([a, b, c, d]);
    void p.check(c, work(0, [0]));
    expect([...tally(p, a, work(1, [0])).keys()].sort()).toEqual(['b', 'd']);
  });

  it('prefers a worker that was not sent the same shards at the same version', () => {
    const p = pool([a, b, c, d]);
    // b took over shard 1 of a's task at version 5 (a deadline): it computed the same shards.
    p.noteTask(a, 5, [0, 1]);
    p.noteTask(b, 5, [1]);
    p.noteTask(c, 4, [0, 1]);
    p.noteTask(d, 5, [2, 3]);
    expect([...tally(p, a, work(5, [0, 1])).keys()].sort()).toEqual(['c', 'd']);
    // At another version, or on other shards, b is as good as anyone.
    expect([...tally(p, a, work(6, [0, 1])).keys()].sort()).toEqual(['b', 'c', 'd']);
    expect([...tally(p, a, work(5, [2])).keys()].sort()).toEqual(['b', 'c']);
  });

  it('falls back to a worker that computed the same shards when nobody else is eligible', () => {
    const p = pool([a, b, c], [c]);
    p.noteTask(b, 2, [0]);
    expect(p.idle(a, work(2, [0]))).toBe(b);
  });

  it('forgets the tasks of a worker that left', () => {
    const p = pool([a, b, c]);
    p.noteTask(b, 2, [0]);
    p.onGone(b);
    expect([...tally(p, a, work(2, [0])).keys()].sort()).toEqual(['b', 'c']);
  });

  it('gives null when no worker but the author is idle', () => {
    expect(pool([a, b, c], [b, c]).idle(a, work(0, [0]))).toBeNull();
    expect(pool([a]).idle(a, work(0, [0]))).toBeNull();
  });

  it('draws among the candidates in their order with the injected pick', () => {
    const drawn: number[] = [];
    const p = pool([a, b, c, d], [c], (n) => {
      drawn.push(n);
      return n - 1;
    });
    expect(p.idle(a, work(0, [0]))).toBe(d);
    expect(drawn).toEqual([2]);
    expect(() => pool([a, b], [], () => 1).idle(a, work(0, [0]))).toThrow(/pick\(1\) must give an integer in \[0, 1\)/);
  });
});
