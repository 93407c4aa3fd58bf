// Idle workers as checkers: an audit sent to a worker with no task in the current step,
// answered with only the SHA-256 of its recomputation (a `digest` message). The auditor
// decides what a digest means; this file only picks a checker, sends the check, and
// resolves it with the digest, or with null when the checker leaves or misses its
// deadline (the auditor then recomputes on the coordinator).
//
// Who checks is drawn at random (node:crypto's randomInt by default) among the eligible:
// ready, not the result's author, no task in the current step, no check out. A worker
// that was sent the same shards at the same weights version (a task handed out again
// after a deadline) is passed over while anyone else is eligible, so the check is an
// independent recomputation. A fixed rule (join order, fewest checks so far) would let
// workers that join together, or watch the order, arrange to check each other; a fresh
// uniform draw for every audit spreads checks over everyone eligible and leaves an
// accomplice its share of them and no more. The draw decides only who recomputes, never
// a bit of the result.

import { randomInt } from 'node:crypto';
import type { DigestMessage } from '../../shared/protocol/messages.js';
import type { CheckerPool, CheckWork } from './verifier.js';
import type { StepWorker } from './worker.js';

export interface CheckerDeps {
  /** Ready workers. */
  readonly workers: () => Iterable<StepWorker>;
  /** Workers with a task in the current step: never checkers. */
  readonly busy: () => ReadonlySet<StepWorker>;
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
  #nextCheckId = 1;

  constructor(deps: CheckerDeps) {
    this.#deps = deps;
    this.#pick = deps.pick ?? ((n) => randomInt(n));
  }

  /** `worker` was sent a task over `shards` at weights `version`: it is a last resort to check those shards. */
  noteTask(worker: StepWorker, version: number, shards: readonly number[]): void {
    let byWorker = this.#tasks.get(version);
    if (byWorker === undefined) {
      byWorker = new Map();
      this.#tasks.set(version, byWorker);
      // Versions only grow: the first key is the oldest.
      if (this.#tasks.size > VERSIONS_REMEMBERED) this.#tasks.delete(this.#tasks.keys().next().value!);
    }
    const set = byWorker.get(worker) ?? new Set<number>();
    byWorker.set(worker, set);
    for (const s of shards) set.add(s);
  }

  idle(author: StepWorker, work: CheckWork): StepWorker | null {
    const busy = this.#deps.busy();
    const checking = new Set([...this.#pending.values()].map((p) => p.worker));
    const eligible = [...this.#deps.workers()].filter((w) => w !== author && !busy.has(w) && !checking.has(w));
    if (eligible.length === 0) return null;
    const sent = this.#tasks.get(work.version);
    const fresh = eligible.filter((w) => !work.shards.some((s) => sent?.get(w)?.has(s.id) === true));
    const candidates = fresh.length > 0 ? fresh : eligible;
    const k = this.#pick(candidates.length);
    if (!(Number.isInteger(k) && k >= 0 && k < candidates.length))
      throw new RangeError(`pick(${candidates.length}) must give an integer in [0, ${candidates.length}), got ${k}`);
    return candidates[k];
  }

  check(checker: StepWorker, work: CheckWork): Promise<string | null> {
    const checkId = this.#nextCheckId++;
    return new Promise<string | null>((resolve) => {
      const cancelTimer = (this.#deps.startTimer ?? realTimer)(this.#deps.deadlineMs, () => {
        checker.log.warn({ checkId, deadlineMs: this.#deps.deadlineMs }, 'check not answered in time');
        this.#finish(checkId, null);
      });
      this.#pending.set(checkId, { worker: checker, resolve, cancelTimer });
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
    for (const [checkId, p] of [...this.#pending]) if (p.worker === worker) this.#finish(checkId, null);
    for (const byWorker of this.#tasks.values()) byWorker.delete(worker);
  }

  #finish(checkId: number, digest: string | null): void {
    const pending = this.#pending.get(checkId);
    if (pending === undefined) return;
    this.#pending.delete(checkId);
    pending.cancelTimer();
    pending.resolve(digest);
  }
}
