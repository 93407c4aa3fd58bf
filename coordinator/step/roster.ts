// The workers that take tasks, and the speed model that decides how much each gets
// and how long it may take. Speeds are measured per task (samples per ms, wall time
// from sending to the result) and smoothed; a worker not yet measured counts as the
// fleet's mean. Nothing here touches a step's results: speed changes who computes
// what and when, never the bits.

import { ConfigError } from '../../shared/errors.js';
import { alignedShares } from './shares.js';
import type { StepWorker } from './worker.js';

export interface RosterOptions {
  /** Bounds of a task's deadline, in ms; in between it is derived from the worker's measured speed. */
  readonly taskTimeoutMinMs: number;
  readonly taskTimeoutMaxMs: number;
}

/** A deadline is this many times the expected duration, plus a fixed allowance for the wire. */
const DEADLINE_FACTOR = 4;
const DEADLINE_SLACK_MS = 250;
/** Per starved dispatch, how much a worker's speed estimate is raised (see #optimisticSpeed). */
const STARVED_BOOST = 1.25;
/** Weight of the newest measurement in a worker's throughput average. */
const EWMA_ALPHA = 0.3;

/** One worker's contiguous run of a step's open shards. */
export interface Assignment {
  readonly worker: StepWorker;
  readonly shards: number[];
}

export class Roster {
  readonly #options: RosterOptions;
  /** In joining order: the order shares are cut in. */
  readonly #ready: StepWorker[] = [];
  /** Measured samples per ms of each worker. */
  readonly #speed = new Map<StepWorker, number>();
  /** Dispatches in a row each worker got no shards, to give starved workers a fresh chance. */
  readonly #starved = new Map<StepWorker, number>();

  constructor(options: RosterOptions) {
    const { taskTimeoutMinMs: min, taskTimeoutMaxMs: max } = options;
    if (!(min > 0 && min <= max))
      throw new ConfigError(`task timeouts must satisfy 0 < min ≤ max, got ${min} and ${max}`);
    this.#options = options;
  }

  get size(): number {
    return this.#ready.length;
  }

  /** The ready workers, in joining order. */
  get members(): readonly StepWorker[] {
    return this.#ready;
  }

  add(worker: StepWorker): void {
    this.#ready.push(worker);
  }

  /** Forgets the worker and everything measured of it. */
  remove(worker: StepWorker): void {
    const index = this.#ready.indexOf(worker);
    if (index >= 0) this.#ready.splice(index, 1);
    this.#speed.delete(worker);
    this.#starved.delete(worker);
  }

  /** Records that `worker` computed `samples` samples in `elapsedMs` (wall time, wire included). */
  measure(worker: StepWorker, samples: number, elapsedMs: number): void {
    const speed = samples / Math.max(elapsedMs, 0.01);
    const previous = this.#speed.get(worker);
    this.#speed.set(worker, previous === undefined ? speed : EWMA_ALPHA * speed + (1 - EWMA_ALPHA) * previous);
  }

  /** Samples/s of each worker measured so far (workers not yet measured are left out). */
  throughput(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const w of this.#ready) {
      const s = this.#speed.get(w);
      if (s !== undefined) out[w.id] = Math.round(s * 1000);
    }
    return out;
  }

  /**
   * Cuts `open` (shard ids, ascending) into contiguous runs, one per idle worker
   * (every worker if none is idle), sized in proportion to speed. Workers that get
   * nothing are counted as starved. Empty when no worker is ready.
   */
  share(open: readonly number[], busy: ReadonlySet<StepWorker>): Assignment[] {
    const idle = this.#ready.filter((w) => !busy.has(w));
    const targets = idle.length > 0 ? idle : this.#ready;
    if (targets.length === 0) return [];
    const shares = alignedShares(
      open.length,
      targets.map((w) => this.#optimisticSpeed(w)),
    );
    const assignments: Assignment[] = [];
    let start = 0;
    targets.forEach((worker, k) => {
      if (shares[k] === 0) {
        this.#starved.set(worker, (this.#starved.get(worker) ?? 0) + 1);
        return;
      }
      this.#starved.delete(worker);
      assignments.push({ worker, shards: open.slice(start, start + shares[k]) });
      start += shares[k];
    });
    return assignments;
  }

  /** ms a task of `samples` samples may take on `worker` before its shards are handed out again. */
  deadline(worker: StepWorker, samples: number): number {
    const { taskTimeoutMinMs: min, taskTimeoutMaxMs: max } = this.#options;
    // A worker not yet measured is given the fleet's mean speed; with none measured, the ceiling.
    const known = [...this.#speed.values()];
    const speed =
      this.#speed.get(worker) ?? (known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : undefined);
    if (speed === undefined) return max;
    return Math.min(max, Math.max(min, DEADLINE_FACTOR * (samples / speed) + DEADLINE_SLACK_MS));
  }

  /**
   * The speed used to share work: the measured one, raised by a quarter for every
   * dispatch in a row that gave the worker nothing, so a worker measured slow once
   * (a cold start, a busy moment) is tried again and re-measured rather than
   * starved for the rest of the run.
   */
  #optimisticSpeed(worker: StepWorker): number | undefined {
    const speed = this.#speed.get(worker);
    if (speed === undefined) return undefined;
    return speed * STARVED_BOOST ** (this.#starved.get(worker) ?? 0);
  }
}
