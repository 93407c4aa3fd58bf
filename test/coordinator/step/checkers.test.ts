// Who checks an audit (coordinator/step/checkers.ts): a uniform draw among the eligible
// idle workers, never the author, never a worker with a task in the step or a check
// out, and one that was sent the same shards only when nobody else is eligible; a sole
// candidate drawn against the coordinator; no checker sent more than
// MAX_CHECKS_IN_A_ROW of one author's audits between two left to the coordinator.
// The spread tests draw from the OS generator, as in a run: with 3000 picks among at
// most 5 candidates, a candidate left out by chance has probability below 5 · (4/5)^3000;
// the rules on sole candidates and counts are driven by an injected draw.

import { describe, expect, it } from 'vitest';
import { MAX_CHECKS_IN_A_ROW, WorkerCheckers } from '../../../coordinator/step/checkers.js';
import type { CheckWork } from '../../../coordinator/step/verifier.js';
import type { StepWorker } from '../../../coordinator/step/worker.js';
import { memoryWorker } from '../../support/step-worker.js';

const PICKS = 3000;

const worker = (id: string): StepWorker => memoryWorker(id, { agent: id, remote: '127.0.0.1:1' });

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

/** How often each worker id is picked over PICKS draws (null: left to the coordinator). */
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
    // null: a checker's count ran out (no audit here is settled, so none starts it over).
    expect(workerIds(counts)).toEqual(['c', 'd', 'f']);
    // Spread: each of 3 candidates gets a fair share of the picks (expected 1/3, standard deviation under 0.01).
    for (const id of workerIds(counts)) expect(share(counts, id)).toBeGreaterThan(1 / 3 - 0.1);
  });

  it('does not depend on join order: the last to join is picked as often as the first', () => {
    const counts = tally(pool([a, b, c]), a, work(0, [0]));
    expect(share(counts, 'b')).toBeGreaterThan(1 / 2 - 0.1);
    expect(share(counts, 'c')).toBeGreaterThan(1 / 2 - 0.1);
  });

  it('passes over a worker with a check out', () => {
    const p = pool([a, b, c, d]);
    void p.check(c, work(0, [0]));
    expect(workerIds(tally(p, a, work(1, [0])))).toEqual(['b', 'd']);
  });

  it('prefers a worker that was not sent the same shards at the same version', () => {
    const p = pool([a, b, c, d]);
    // b took over shard 1 of a's task at version 5 (a deadline): it computed the same shards.
    p.noteTask(a, 5, [0, 1]);
    p.noteTask(b, 5, [1]);
    p.noteTask(c, 4, [0, 1]);
    p.noteTask(d, 5, [2, 3]);
    expect(workerIds(tally(p, a, work(5, [0, 1])))).toEqual(['c', 'd']);
    // At another version, or on other shards, b is as good as anyone.
    expect(workerIds(tally(p, a, work(6, [0, 1])))).toEqual(['b', 'c', 'd']);
    expect(workerIds(tally(p, a, work(5, [2])))).toEqual(['b', 'c']);
  });

  it('falls back to a worker that computed the same shards when nobody else is eligible', () => {
    const p = pool([a, b, c], [c], () => 0);
    p.noteTask(b, 2, [0]);
    expect(p.idle(a, work(2, [0]))).toBe(b);
  });

  it('forgets the tasks of a worker that left', () => {
    const p = pool([a, b, c]);
    p.noteTask(b, 2, [0]);
    p.onGone(b);
    expect(workerIds(tally(p, a, work(2, [0])))).toEqual(['b', 'c']);
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
    expect(() => pool([a, b, c], [], () => 2).idle(a, work(0, [0]))).toThrow(
      /pick\(2\) must give an integer in \[0, 2\), got 2/,
    );
  });
});

describe('WorkerCheckers.idle: what one accomplice can clear', () => {
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(worker);

  it('draws a sole candidate against the coordinator, as if the coordinator were a second candidate', () => {
    const drawn: number[] = [];
    let next = 0;
    // b stands by while c and d compute: it is the only worker eligible to check a's results.
    const p = pool([a, b, c, d], [c, d], (n) => {
      drawn.push(n);
      return next;
    });
    expect(p.idle(a, work(0, [0]))).toBe(b);
    next = 1;
    expect(p.idle(a, work(0, [0]))).toBeNull();
    expect(drawn).toEqual([2, 2]);
  });

  it('leaves about half the audits to the coordinator when one worker is eligible, with the OS generator', () => {
    const counts = tally(pool([a, b, c], [c]), a, work(0, [0]));
    expect(workerIds(counts)).toEqual(['b']);
    // Expected 0.48 of the picks for b (its count caps its runs) and 0.52 here; standard deviation under 0.02.
    expect(counts.get('b')).toBeGreaterThan(PICKS / 2 - 300);
    expect(counts.get(null)).toBeGreaterThan(PICKS / 2 - 300);
  });

  it(`sends one checker at most ${MAX_CHECKS_IN_A_ROW} of an author's audits in a row, then keeps one here`, () => {
    // The draw always picks the first candidate: b, whenever it is eligible.
    const p = pool([a, b, c], [], () => 0);
    for (let i = 0; i < MAX_CHECKS_IN_A_ROW; i++) expect(p.idle(a, work(i, [0]))).toBe(b);
    expect(p.idle(a, work(9, [0]))).toBeNull();
    // The coordinator's recomputation starts the count over.
    for (let i = 0; i < MAX_CHECKS_IN_A_ROW; i++) expect(p.idle(a, work(i, [0]))).toBe(b);
    expect(p.idle(a, work(9, [0]))).toBeNull();
  });

  it("counts each author apart, and each checker of an author's apart", () => {
    let next = 0;
    const p = pool([a, b, c, d], [], () => next);
    for (let i = 0; i < MAX_CHECKS_IN_A_ROW; i++) expect(p.idle(a, work(i, [0]))).toBe(b);
    // b's count for a is spent; for d's audits it is not.
    expect(p.idle(d, work(0, [0]))).toBe(a);
    next = 1;
    for (let i = 0; i < MAX_CHECKS_IN_A_ROW; i++) expect(p.idle(a, work(i, [0]))).toBe(c);
    // b and c have each cleared their count of a's audits: neither gets another before a recomputation.
    expect(p.idle(a, work(9, [0]))).toBeNull();
    next = 0;
    expect(p.idle(a, work(9, [0]))).toBe(b);
    next = 1;
    expect(p.idle(a, work(9, [0]))).toBe(c);
  });

  it('starts the count over when an audit finds nobody eligible and runs on the coordinator', () => {
    const busy = new Set<StepWorker>();
    const p = new WorkerCheckers({
      workers: () => [a, b, c],
      busy: () => busy,
      send: () => {},
      deadlineMs: 1000,
      startTimer: () => () => {},
      pick: () => 0,
    });
    for (let i = 0; i < MAX_CHECKS_IN_A_ROW; i++) expect(p.idle(a, work(i, [0]))).toBe(b);
    busy.add(b).add(c);
    expect(p.idle(a, work(9, [0]))).toBeNull();
    busy.clear();
    expect(p.idle(a, work(10, [0]))).toBe(b);
  });

  it('forgets the counts of a worker that left, as author and as checker', () => {
    const p = pool([a, b, c], [], () => 0);
    for (let i = 0; i < MAX_CHECKS_IN_A_ROW; i++) expect(p.idle(a, work(i, [0]))).toBe(b);
    p.onGone(b);
    // A reconnection is a new worker; the same object stands in for it here.
    expect(p.idle(a, work(9, [0]))).toBe(b);
  });
});

/** The worker ids picked at least once, sorted (the coordinator's null left out). */
function workerIds(counts: Map<string | null, number>): string[] {
  return [...counts.keys()].filter((id) => id !== null).sort() as string[];
}

/** `id`'s share of the picks that went to a worker. */
function share(counts: Map<string | null, number>, id: string): number {
  let picked = 0;
  for (const [k, n] of counts) if (k !== null) picked += n;
  return (counts.get(id) ?? 0) / picked;
}
