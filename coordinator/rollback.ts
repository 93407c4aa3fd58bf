// What undoing steps needs: the signal (RollbackRequired, thrown by an executor's
// run() once a forged result is found among results that already counted) and the
// states to go back to (SnapshotStore: weights, optimizer state and training
// position before each step).
//
// Memory is bounded: at most `capacity` snapshots besides the run's starting state,
// which is always kept. The newest half are kept step by step; older ones are thinned
// so that the survivors are spread out (the one whose removal leaves the smallest gap
// goes first), which leaves gaps growing roughly geometrically with age. A rollback
// goes to the newest snapshot at or before the version asked for, so it may replay
// more steps than strictly needed, never fewer: the result is the same bits, only
// later. Each snapshot holds the parameters and the optimizer's state (P floats for
// SGD with momentum, 2P for Adam) plus a few numbers.

import type { TrainingState } from './checkpoint.js';

/** Thrown by StepExecutor.run(): every step from weights version `version` on must be undone first. */
export class RollbackRequired extends Error {
  readonly version: number;
  constructor(version: number) {
    super(`steps from weights version ${version} on must be undone`);
    this.version = version;
    this.name = 'RollbackRequired';
  }
}

export interface Snapshot {
  /** The training position; its version is the weights version the next step computes at. */
  readonly state: TrainingState;
  readonly params: Float32Array;
  readonly optimizer: Readonly<Record<string, Float32Array>>;
}

export class SnapshotStore {
  readonly #capacity: number;
  /** Ascending by version (and by globalStep: snapshots of undone steps are discarded). The first is the base. */
  readonly #snapshots: Snapshot[] = [];
  /** Buffers of dropped snapshots, reused for new ones. */
  readonly #spare: Float32Array[] = [];

  /** `capacity`: snapshots kept besides the base, at least 2. */
  constructor(capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 2))
      throw new RangeError(`a snapshot store keeps at least 2 snapshots, got ${capacity}`);
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#snapshots.length;
  }

  /** Versions held, ascending (for tests and logs). */
  versions(): number[] {
    return this.#snapshots.map((s) => s.state.version);
  }

  /** Keeps a copy of the state before the step at `state.version`; the first one saved is the base, never dropped. */
  save(state: TrainingState, params: Float32Array, optimizer: Readonly<Record<string, Float32Array>>): void {
    const last = this.#snapshots.at(-1);
    if (last !== undefined && state.version <= last.state.version)
      throw new Error(`snapshot versions must grow: ${state.version} after ${last.state.version}`);
    const copy: Record<string, Float32Array> = {};
    for (const [name, buffer] of Object.entries(optimizer)) copy[name] = this.#copy(buffer);
    this.#snapshots.push({ state, params: this.#copy(params), optimizer: copy });
    if (this.#snapshots.length > this.#capacity + 1) this.#thin();
  }

  /** The newest snapshot at or before `version` (the base when every later one is gone). */
  restorePoint(version: number): Snapshot {
    for (let i = this.#snapshots.length - 1; i >= 0; i--)
      if (this.#snapshots[i].state.version <= version) return this.#snapshots[i];
    if (this.#snapshots.length === 0) throw new Error('no snapshot saved');
    return this.#snapshots[0];
  }

  /**
   * Rewrites the training position of every snapshot from `version` on (bookkeeping
   * that was settled after they were taken); weights and optimizer state stay.
   */
  amend(version: number, change: (state: TrainingState) => TrainingState): void {
    const s = this.#snapshots;
    for (let i = 0; i < s.length; i++) if (s[i].state.version >= version) s[i] = { ...s[i], state: change(s[i].state) };
  }

  /** Drops every snapshot after `version`: those steps were undone. */
  discardAfter(version: number): void {
    while (this.#snapshots.length > 1 && this.#snapshots.at(-1)!.state.version > version)
      this.#release(this.#snapshots.pop()!);
  }

  /** Drops the snapshot among the older half whose removal leaves the smallest gap in steps. */
  #thin(): void {
    const s = this.#snapshots;
    const dense = Math.ceil(this.#capacity / 2);
    let best = -1;
    let bestGap = Infinity;
    for (let i = 1; i < s.length - dense; i++) {
      const gap = s[i + 1].state.globalStep - s[i - 1].state.globalStep;
      if (gap < bestGap) {
        best = i;
        bestGap = gap;
      }
    }
    this.#release(s.splice(best, 1)[0]);
  }

  #copy(source: Float32Array): Float32Array {
    const k = this.#spare.findIndex((b) => b.length === source.length);
    const buffer = k >= 0 ? this.#spare.splice(k, 1)[0] : new Float32Array(source.length);
    buffer.set(source);
    return buffer;
  }

  #release(snapshot: Snapshot): void {
    this.#spare.push(snapshot.params, ...Object.values(snapshot.optimizer));
  }
}
