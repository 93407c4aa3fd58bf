// Idle workers as checkers: an audit sent to a worker with no task in the current step,
// answered with only the SHA-256 of its recomputation (a `digest` message). The auditor
// decides what a digest means; this file only finds a checker, sends the check, and
// resolves it with the digest, or with null when the checker leaves or misses its
// deadline (the auditor then recomputes on the coordinator).

import type { DigestMessage } from '../../shared/protocol/messages.js';
import type { CheckerPool, CheckWork } from './verifier.js';
import type { StepWorker } from './worker.js';

export interface CheckerDeps {
  /** Ready workers, in join order. */
  readonly workers: () => Iterable<StepWorker>;
  /** Workers with a task in the current step: never checkers. */
  readonly busy: () => ReadonlySet<StepWorker>;
  /** Encodes and sends the check (with the weights when the worker lacks them). */
  readonly send: (worker: StepWorker, checkId: number, work: CheckWork) => void;
  /** ms a checker has to answer. */
  readonly deadlineMs: number;
  /** Starts the deadline; returns its cancel. Injected so tests drive it without waiting. */
  readonly startTimer?: (ms: number, onExpired: () => void) => () => void;
}

interface PendingCheck {
  readonly worker: StepWorker;
  readonly resolve: (digest: string | null) => void;
  readonly cancelTimer: () => void;
}

const realTimer = (ms: number, onExpired: () => void): (() => void) => {
  const timer = setTimeout(onExpired, ms);
  timer.unref?.();
  return () => clearTimeout(timer);
};

export class WorkerCheckers implements CheckerPool {
  readonly #deps: CheckerDeps;
  readonly #pending = new Map<number, PendingCheck>();
  #nextCheckId = 1;

  constructor(deps: CheckerDeps) {
    this.#deps = deps;
  }

  idle(author: StepWorker): StepWorker | null {
    const busy = this.#deps.busy();
    const checking = new Set([...this.#pending.values()].map((p) => p.worker));
    for (const w of this.#deps.workers()) if (w !== author && !busy.has(w) && !checking.has(w)) return w;
    return null;
  }

  check(checker: StepWorker, work: CheckWork): Promise<string | null> {
    const checkId = this.#nextCheckId++;
    return new Promise<string | null>((resolve) => {
      const cancelTimer = (this.#deps.startTimer ?? realTimer)(this.#deps.deadlineMs, () => {
        checker.log.warn({ checkId, deadlineMs: this.#deps.deadlineMs }, 'check not answered in time');
        this.#finish(checkId, null);
      });
      this.#pending.set(checkId, { worker: checker, resolve, cancelTimer });
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

  /** A worker left: its checks will not be answered. */
  onGone(worker: StepWorker): void {
    for (const [checkId, p] of [...this.#pending]) if (p.worker === worker) this.#finish(checkId, null);
  }

  #finish(checkId: number, digest: string | null): void {
    const pending = this.#pending.get(checkId);
    if (pending === undefined) return;
    this.#pending.delete(checkId);
    pending.cancelTimer();
    pending.resolve(digest);
  }
}
