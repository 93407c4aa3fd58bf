// The workers that take tasks, and the speed model that decides how much each gets
// and how long it may take. Speeds are measured per task (samples per ms, wall time
// from sending to the result) and smoothed; a worker not yet measured counts as the
// fleet's mean. A missed deadline halves the worker's estimate (its share shrinks),
// and a worker that misses several in a row with no result in between is to be
// ejected. Nothing here touches a step's results: speed changes who computes what
// and when, never the bits.
//
// A result nobody checked cannot raise a worker's share: measurements from results
// verified against a recomputation are kept apart, and a worker counts at most as
// fast as those say (a forger answering garbage fast wins no extra work by it).
//
// Deadlines are asked for every task, so the fleet's mean speed is a running sum kept
// up to date as speeds change, not an average over the roster each time.

import { DEFAULTS } from '../../shared/defaults.js';
import { ConfigError } from '../../shared/errors.js';
import { alignedShares } from './shares.js';
import type { StepWorker } from './worker.js';

export interface RosterOptions {
  /** Bounds of a task's deadline, in ms; in between it is derived from the worker's measured speed. */
  readonly taskTimeoutMinMs: number;
  readonly taskTimeoutMaxMs: number;
  /**
   * Deadlines missed in a row (no accepted result between them) after which a worker
   * is ejected; default DEFAULTS.coordinator.ejectAfterMisses.
   */
  readonly ejectAfterMisses?: number;
}

/** A deadline is this many times the expected duration, plus a fixed allowance for the wire. */
const DEADLINE_FACTOR = 4;
const DEADLINE_SLACK_MS = 250;
/** Per starved dispatch, how much a worker's speed estimate is raised (see #optimisticSpeed). */
const STARVED_BOOST = 1.25;
/** Weight of the newest measurement in a worker's throughput average. */
const EWMA_ALPHA = 0.3;
/**
 * Deadline of a task while no worker has been measured (clamped to the bounds): long
 * enough for a first task's warm-up, short enough that workers which join first and
 * never answer hold the first step for seconds, not for taskTimeoutMax. A task that
 * misses it is handed out again; its result still counts if it comes first.
 */
const UNMEASURED_DEADLINE_MS = 10_000;
/** A missed deadline multiplies the worker's speed estimate by this. */
const MISS_PENALTY = 0.5;
/**
 * The running sum of speeds is summed afresh after this many changes per ready worker
 * (plus a floor), and whenever it falls below half its peak since the last fresh sum:
 * each change's rounding error is a fraction ε of the sum it is made to, so between
 * fresh sums the relative error stays below about 2ε per change (under 1e-12 for a
 * thousand workers), at an amortized cost of O(1) per change. Without the second rule,
 * a fast worker leaving a fleet of slow ones would leave its rounding error behind in
 * a much smaller sum.
 */
const RESUM_PER_WORKER = 4;
const RESUM_MIN = 64;

/** One worker's contiguous run of a step's open shards. */
export interface Assignment {
  readonly worker: StepWorker;
  readonly shards: number[];
}

export class Roster {
  readonly #options: RosterOptions;
  readonly ejectAfterMisses: number;
  /** In joining order: the order shares are cut in. */
  readonly #ready: StepWorker[] = [];
  readonly #isReady = new Set<StepWorker>();
  /** Measured samples per ms of each worker: from every result, and from verified results only. */
  readonly #speed = new Map<StepWorker, number>();
  readonly #verifiedSpeed = new Map<StepWorker, number>();
  /** Dispatches in a row each worker got no shards, to give starved workers a fresh chance. */
  readonly #starved = new Map<StepWorker, number>();
  /** Deadlines each worker missed since its last accepted result. */
  readonly #misses = new Map<StepWorker, number>();
  /** Σ and count of #measured over the ready workers that have one: the fleet's mean speed. */
  #speedSum = 0;
  #speedCount = 0;
  /** Changes to #speedSum since it was last summed afresh, and its largest value since. */
  #speedChanges = 0;
  #speedPeak = 0;
  /** Workers whose speed was measured since the last takeRemeasured(). */
  readonly #remeasured = new Set<StepWorker>();

  constructor(options: RosterOptions) {
    const { taskTimeoutMinMs: min, taskTimeoutMaxMs: max } = options;
    if (!(min > 0 && min <= max))
      throw new ConfigError(`task timeouts must satisfy 0 < min ≤ max, got ${min} and ${max}`);
    const eject = options.ejectAfterMisses ?? DEFAULTS.coordinator.ejectAfterMisses;
    if (!(Number.isInteger(eject) && eject >= 1))
      throw new ConfigError(`ejectAfterMisses must be an integer ≥ 1, got ${eject}`);
    this.#options = options;
    this.ejectAfterMisses = eject;
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
    this.#isReady.add(worker);
    this.#count(worker);
    this.#resumIfDue();
  }

  /** Forgets the worker and everything measured of it. */
  remove(worker: StepWorker): void {
    this.#uncount(worker);
    const index = this.#ready.indexOf(worker);
    if (index >= 0) this.#ready.splice(index, 1);
    this.#isReady.delete(worker);
    this.#speed.delete(worker);
    this.#verifiedSpeed.delete(worker);
    this.#starved.delete(worker);
    this.#misses.delete(worker);
    this.#remeasured.delete(worker);
    this.#resumIfDue();
  }

  /**
   * Records that `worker` computed `samples` samples in `elapsedMs` (wall time, wire
   * included); `verified`: the result was checked against a recomputation.
   */
  measure(worker: StepWorker, samples: number, elapsedMs: number, verified = false): void {
    if (!this.#isReady.has(worker)) return;
    const speed = samples / Math.max(elapsedMs, 0.01);
    this.#uncount(worker);
    for (const table of verified ? [this.#speed, this.#verifiedSpeed] : [this.#speed]) {
      const previous = table.get(worker);
      table.set(worker, previous === undefined ? speed : EWMA_ALPHA * speed + (1 - EWMA_ALPHA) * previous);
    }
    this.#count(worker);
    this.#resumIfDue();
    this.#misses.delete(worker);
    this.#remeasured.add(worker);
  }

  /** Whether the worker's speed is its own (measured, or cut after a miss), not the fleet's mean. */
  isMeasured(worker: StepWorker): boolean {
    return this.#speed.has(worker);
  }

  /**
   * The workers measured since the last call: with those that have no speed of their
   * own (isMeasured), the only ones whose deadline (deadline()) may have shrunk.
   */
  takeRemeasured(): StepWorker[] {
    const workers = [...this.#remeasured];
    this.#remeasured.clear();
    return workers;
  }

  /**
   * Records that a task of `worker` passed its deadline unanswered: its speed estimate
   * (the fleet's mean if it has none) is halved, so its share shrinks. True when it has
   * now missed ejectAfterMisses deadlines in a row: the caller should eject it.
   */
  missed(worker: StepWorker): boolean {
    const speed = this.#measured(worker) ?? this.meanSpeed();
    if (speed !== undefined) {
      this.#uncount(worker);
      this.#speed.set(worker, speed * MISS_PENALTY);
      if (this.#verifiedSpeed.has(worker)) this.#verifiedSpeed.set(worker, speed * MISS_PENALTY);
      this.#count(worker);
      this.#resumIfDue();
    }
    const misses = (this.#misses.get(worker) ?? 0) + 1;
    this.#misses.set(worker, misses);
    return misses >= this.ejectAfterMisses;
  }

  /** The speed work is shared by: the measured one, capped by the verified one once there is one. */
  #measured(worker: StepWorker): number | undefined {
    const speed = this.#speed.get(worker);
    const verified = this.#verifiedSpeed.get(worker);
    return speed === undefined || verified === undefined ? speed : Math.min(speed, verified);
  }

  /** Samples/s of each worker measured so far (workers not yet measured are left out). */
  throughput(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const w of this.#ready) {
      const s = this.#measured(w);
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
    // A worker not yet measured is given the fleet's mean speed; with none measured, a fixed allowance.
    const speed = this.#measured(worker) ?? this.meanSpeed();
    if (speed === undefined) return Math.min(max, Math.max(min, UNMEASURED_DEADLINE_MS));
    return Math.min(max, Math.max(min, DEADLINE_FACTOR * (samples / speed) + DEADLINE_SLACK_MS));
  }

  /** Mean samples per ms of the ready workers measured; undefined when none is. */
  meanSpeed(): number | undefined {
    if (this.#speedCount === 0) return undefined;
    const mean = this.#speedSum / this.#speedCount;
    if (mean > 0) return mean;
    // Speeds are positive: a sum that is not has lost its precision to cancellation.
    this.#resum();
    return this.#speedSum / this.#speedCount;
  }

  /** Takes a ready worker's current speed out of the running sum, before it changes or goes. */
  #uncount(worker: StepWorker): void {
    const speed = this.#isReady.has(worker) ? this.#measured(worker) : undefined;
    if (speed === undefined) return;
    this.#speedCount--;
    this.#speedSum = this.#speedCount === 0 ? 0 : this.#speedSum - speed;
    this.#speedChanges++;
  }

  /** Puts a ready worker's current speed into the running sum, after it changed or came. */
  #count(worker: StepWorker): void {
    const speed = this.#isReady.has(worker) ? this.#measured(worker) : undefined;
    if (speed === undefined) return;
    this.#speedCount++;
    this.#speedSum += speed;
    this.#speedChanges++;
    this.#speedPeak = Math.max(this.#speedPeak, this.#speedSum);
  }

  /** After a change is complete (never between #uncount and #count: the tables would be half-way). */
  #resumIfDue(): void {
    const many = this.#speedChanges > RESUM_PER_WORKER * this.#ready.length + RESUM_MIN;
    if (many || this.#speedSum < this.#speedPeak / 2) this.#resum();
  }

  /** Sums the speeds afresh, in joining order. */
  #resum(): void {
    let sum = 0;
    let count = 0;
    for (const w of this.#ready) {
      const speed = this.#measured(w);
      if (speed === undefined) continue;
      sum += speed;
      count++;
    }
    this.#speedSum = sum;
    this.#speedCount = count;
    this.#speedChanges = 0;
    this.#speedPeak = sum;
  }

  /**
   * The speed used to share work: the measured one, raised by a quarter for every
   * dispatch in a row that gave the worker nothing, so a worker measured slow once
   * (a cold start, a busy moment) is tried again and re-measured rather than
   * starved for the rest of the run.
   */
  #optimisticSpeed(worker: StepWorker): number | undefined {
    const speed = this.#measured(worker);
    if (speed === undefined) return undefined;
    return speed * STARVED_BOOST ** (this.#starved.get(worker) ?? 0);
  }
}
