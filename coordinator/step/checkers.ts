// Idle workers as checkers: an audit sent to a worker that is not computing a task of the
// current step, answered with only the SHA-256 of its recomputation (a `digest`
// message). The auditor decides what a digest means; this file only picks a checker,
// sends the check, and resolves it with the digest, or with null when the checker leaves
// or misses its deadline (the auditor then recomputes on the coordinator).
//
// Who checks is drawn at random (node:crypto's randomInt by default) among the eligible:
// ready, not the result's author, not computing (`busy`), no check out. A worker
// that was sent the same shards at the same weights version (a task handed out again
// after a deadline) is passed over while anyone else is eligible, so the check is an
// independent recomputation. A fixed rule (join order, fewest checks so far) would let
// workers that join together, or watch the order, arrange to check each other; a fresh
// uniform draw for every audit spreads checks over everyone eligible and leaves an
// accomplice its share of them and no more. The draw decides only who recomputes, never
// a bit of the result.
//
// Two rules bound what one accomplice can clear (docs/security.md, "Colluding workers"):
// - A sole candidate is drawn against the coordinator: with one worker eligible, the
//   audit goes to it with probability 1/2 and stays on the coordinator otherwise. An
//   accomplice that stands by while every honest worker computes would else be picked
//   for every audit; this way it is picked for at most half of any author's audits,
//   as with two candidates.
// - A checker is sent at most MAX_CHECKS_IN_A_ROW of one author's audits between two of
//   that author's audits left to the coordinator; the next one it is drawn for stays on
//   the coordinator. Whatever the draws, a forger's accomplices clear at most that many
//   audits each before a recomputation here.
// An audit whose check fails (no answer, a digest that differs) is recomputed on the
// coordinator too but does not restart the count: it errs towards more recomputation.
//
// Cost: a coordinator with N workers audits a share of the N results of every step, so a
// pick must not look at every worker. Told of each change (`told`: a worker ready or gone,
// computing or not, a check out or back), the pool keeps the eligible workers in an array
// with each one's index (swap-remove), and the workers sent each shard at each version: an
// audit then costs O(1) plus the few workers sent the same shards (a task handed out again).
// The draw is one pick(n) as in a scan: the k-th entry of the array not excluded (author,
// and those sent the same shards unless nobody else is left) for k below the candidates'
// count. The candidates are the set a scan gives (a randomized test holds them to one),
// k maps one to one onto them, so each has probability 1/n as before; only their order
// differs, which a uniform k cannot see. Untold, the pool rebuilds the array from `workers`
// and `busy` at every audit, O(N), in join order: a pick then equals a scan's exactly.

import { randomInt } from 'node:crypto';
import type { DigestMessage } from '../../shared/protocol/messages.js';
import type { CheckerPool, CheckWork } from './verifier.js';
import type { StepWorker } from './worker.js';

export interface CheckerDeps {
  /** Ready workers. */
  readonly workers: () => Iterable<StepWorker>;
  /**
   * Workers computing a task of the current step (sent, not answered): never checkers. One
   * whose result is in may check; its next task then waits behind the check, which with
   * the small CNN measured no slower than keeping it out (docs/performance.md).
   */
  readonly busy: () => ReadonlySet<StepWorker>;
  /**
   * The pool is told of every change to `workers` and `busy` (onReady, onGone, onBusy) and
   * keeps the eligible workers up to date: O(1) per audit instead of O(N). `workers` is then
   * never called, and `busy` only asked whether the worker told of is in it. Default false.
   */
  readonly told?: boolean;
  /** Encodes and sends the check (with the weights when the worker lacks them). */
  readonly send: (worker: StepWorker, checkId: number, work: CheckWork) => void;
  /** ms a checker has to answer. */
  readonly deadlineMs: number;
  /** Starts the deadline; returns its cancel. Injected so tests drive it without waiting. */
  readonly startTimer?: (ms: number, onExpired: () => void) => () => void;
  /** A uniform integer in [0, n), n ≥ 1: which candidate checks. Default: the OS's generator (unpredictable). */
  readonly pick?: (n: number) => number;
}

interface PendingCheck {
  readonly worker: StepWorker;
  readonly resolve: (digest: string | null) => void;
  readonly cancelTimer: () => void;
}

/** Checks of one author's audits a checker is sent between two of them left to the coordinator. */
export const MAX_CHECKS_IN_A_ROW = 4;

/** Weights versions whose tasks are remembered (audits run within a few steps of their result). */
const VERSIONS_REMEMBERED = 64;

const realTimer = (ms: number, onExpired: () => void): (() => void) => {
  const timer = setTimeout(onExpired, ms);
  timer.unref?.();
  return () => clearTimeout(timer);
};

export class WorkerCheckers implements CheckerPool {
  readonly #deps: CheckerDeps;
  readonly #pick: (n: number) => number;
  readonly #pending = new Map<number, PendingCheck>();
  /** Shards each worker was sent a task for, by weights version (the newest VERSIONS_REMEMBERED versions). */
  readonly #tasks = new Map<number, Map<StepWorker, Set<number>>>();
  /** The same, by version and shard: the workers sent it (usually one; more when it was handed out again). */
  readonly #sentTo = new Map<number, Map<number, StepWorker[]>>();
  /** Ready, not busy, no check out: who may check, in an array for uniform draws and with each one's index. */
  readonly #eligible: StepWorker[] = [];
  readonly #index = new Map<StepWorker, number>();
  /** Told: the ready workers. */
  readonly #ready = new Set<StepWorker>();
  /** Checks out, by checker. */
  readonly #checksOut = new Map<StepWorker, number>();
  /** By author: checks of its audits sent to each checker since its last audit left to the coordinator. */
  readonly #inARow = new Map<StepWorker, Map<StepWorker, number>>();
  #nextCheckId = 1;

  constructor(deps: CheckerDeps) {
    this.#deps = deps;
    this.#pick = deps.pick ?? ((n) => randomInt(n));
  }

  /** `worker` was sent a task over `shards` at weights `version`: it is a last resort to check those shards. */
  noteTask(worker: StepWorker, version: number, shards: readonly number[]): void {
    let byWorker = this.#tasks.get(version);
    let byShard = this.#sentTo.get(version);
    if (byWorker === undefined || byShard === undefined) {
      byWorker = new Map();
      byShard = new Map();
      this.#tasks.set(version, byWorker);
      this.#sentTo.set(version, byShard);
      // Versions only grow: the first key is the oldest.
      if (this.#tasks.size > VERSIONS_REMEMBERED) {
        const oldest = this.#tasks.keys().next().value!;
        this.#tasks.delete(oldest);
        this.#sentTo.delete(oldest);
      }
    }
    const set = byWorker.get(worker) ?? new Set<number>();
    byWorker.set(worker, set);
    for (const s of shards) {
      if (set.has(s)) continue;
      set.add(s);
      const to = byShard.get(s);
      if (to === undefined) byShard.set(s, [worker]);
      else to.push(worker);
    }
  }

  /** Told: `worker` is ready. */
  onReady(worker: StepWorker): void {
    this.#ready.add(worker);
    this.#refresh(worker);
  }

  /** Told: `worker` started or stopped computing (it joined or left `busy`). */
  onBusy(worker: StepWorker): void {
    this.#refresh(worker);
  }

  /** The workers that may check an audit now (any author's), in no particular order. */
  eligible(): StepWorker[] {
    if (this.#deps.told !== true) this.#rebuild();
    return [...this.#eligible];
  }

  /**
   * The checker of one audit of `author`'s, or null: the coordinator recomputes it. Called
   * once per audit, and its answer is final: a checker it returns counts as sent the check.
   */
  idle(author: StepWorker, work: CheckWork): StepWorker | null {
    if (this.#deps.told !== true) this.#rebuild();
    const excluded = this.#excluded(author, work);
    const candidates = this.#eligible.length - excluded.length;
    if (candidates === 0) return this.#leftHere(author);
    // A sole candidate is drawn against the coordinator, which stands at index 1.
    const n = Math.max(2, candidates);
    const k = this.#pick(n);
    if (!(Number.isInteger(k) && k >= 0 && k < n))
      throw new RangeError(`pick(${n}) must give an integer in [0, ${n}), got ${k}`);
    if (k >= candidates) return this.#leftHere(author);
    const checker = this.#candidate(excluded, k);
    let inARow = this.#inARow.get(author);
    if (inARow === undefined) {
      inARow = new Map();
      this.#inARow.set(author, inARow);
    }
    const count = inARow.get(checker) ?? 0;
    if (count >= MAX_CHECKS_IN_A_ROW) return this.#leftHere(author);
    inARow.set(checker, count + 1);
    return checker;
  }

  /** Who an audit of `author`'s may go to, in the order the draw indexes them (a draw of k ≥ their count: none). */
  candidates(author: StepWorker, work: CheckWork): StepWorker[] {
    if (this.#deps.told !== true) this.#rebuild();
    const excluded = this.#excluded(author, work);
    return Array.from({ length: this.#eligible.length - excluded.length }, (_, k) => this.#candidate(excluded, k));
  }

  check(checker: StepWorker, work: CheckWork): Promise<string | null> {
    const checkId = this.#nextCheckId++;
    return new Promise<string | null>((resolve) => {
      const cancelTimer = (this.#deps.startTimer ?? realTimer)(this.#deps.deadlineMs, () => {
        checker.log.warn({ checkId, deadlineMs: this.#deps.deadlineMs }, 'check not answered in time');
        this.#finish(checkId, null);
      });
      this.#pending.set(checkId, { worker: checker, resolve, cancelTimer });
      this.#checksOut.set(checker, (this.#checksOut.get(checker) ?? 0) + 1);
      this.#refresh(checker);
      checker.log.debug({ checkId, version: work.version, shards: work.shards.map((s) => s.id) }, 'check sent');
      this.#deps.send(checker, checkId, work);
    });
  }

  /**
   * A digest from `worker`: false when it answers a check never sent (the caller rejects it). One
   * past its deadline is dropped: the coordinator has recomputed already.
   */
  onDigest(worker: StepWorker, message: DigestMessage): boolean {
    const pending = this.#pending.get(message.checkId);
    if (pending === undefined) return message.checkId < this.#nextCheckId;
    if (pending.worker !== worker) return false;
    this.#finish(message.checkId, message.digest);
    return true;
  }

  /** A worker left: its checks will not be answered, and its tasks no longer matter. */
  onGone(worker: StepWorker): void {
    this.#ready.delete(worker);
    this.#refresh(worker);
    for (const [checkId, p] of [...this.#pending]) if (p.worker === worker) this.#finish(checkId, null);
    for (const [version, byWorker] of this.#tasks) {
      const shards = byWorker.get(worker);
      if (shards === undefined) continue;
      byWorker.delete(worker);
      const byShard = this.#sentTo.get(version)!;
      for (const s of shards) {
        const to = byShard.get(s)!;
        to.splice(to.indexOf(worker), 1);
        if (to.length === 0) byShard.delete(s);
      }
    }
    this.#inARow.delete(worker);
    for (const inARow of this.#inARow.values()) inARow.delete(worker);
  }

  /** `author`'s audit stays on the coordinator: every checker's count for it starts over. */
  #leftHere(author: StepWorker): null {
    this.#inARow.delete(author);
    return null;
  }

  #finish(checkId: number, digest: string | null): void {
    const pending = this.#pending.get(checkId);
    if (pending === undefined) return;
    this.#pending.delete(checkId);
    const out = this.#checksOut.get(pending.worker)! - 1;
    if (out > 0) this.#checksOut.set(pending.worker, out);
    else this.#checksOut.delete(pending.worker);
    this.#refresh(pending.worker);
    pending.cancelTimer();
    pending.resolve(digest);
  }

  /**
   * Indices into #eligible that are not candidates, ascending: the author and those sent
   * any of the shards at this version, or, when that leaves none, the author alone. O(the
   * workers sent those shards), never a scan of the eligible.
   */
  #excluded(author: StepWorker, work: CheckWork): number[] {
    const authorAt = this.#index.get(author);
    const notAuthor = authorAt === undefined ? [] : [authorAt];
    const stale = new Set(notAuthor);
    const byShard = this.#sentTo.get(work.version);
    for (const s of work.shards)
      for (const w of byShard?.get(s.id) ?? []) {
        const i = this.#index.get(w);
        if (i !== undefined) stale.add(i);
      }
    return [...(stale.size < this.#eligible.length ? stale : notAuthor)].sort((x, y) => x - y);
  }

  /** The k-th entry of #eligible not excluded: each excluded index at or before it moves it one on. */
  #candidate(excluded: readonly number[], k: number): StepWorker {
    let at = k;
    for (const x of excluded) if (x <= at) at++;
    return this.#eligible[at];
  }

  /** Told: puts `worker` in #eligible or takes it out, as it now is. */
  #refresh(worker: StepWorker): void {
    if (this.#deps.told !== true) return;
    const may = this.#ready.has(worker) && !this.#checksOut.has(worker) && !this.#deps.busy().has(worker);
    const i = this.#index.get(worker);
    if (may && i === undefined) {
      this.#index.set(worker, this.#eligible.length);
      this.#eligible.push(worker);
    } else if (!may && i !== undefined) {
      const last = this.#eligible.pop()!;
      this.#index.delete(worker);
      if (last !== worker) {
        this.#eligible[i] = last;
        this.#index.set(last, i);
      }
    }
  }

  /** Untold: #eligible afresh from `workers` and `busy`, in join order. */
  #rebuild(): void {
    const busy = this.#deps.busy();
    this.#eligible.length = 0;
    this.#index.clear();
    for (const w of this.#deps.workers())
      if (!busy.has(w) && !this.#checksOut.has(w)) {
        this.#index.set(w, this.#eligible.length);
        this.#eligible.push(w);
      }
  }
}
