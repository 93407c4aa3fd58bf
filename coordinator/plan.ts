// The data order of a run: which samples form each step and how each step is cut
// into micro-shards. A pure function of (training indices, seed, epoch, batch size,
// shard size); the number of workers never enters it.

import { deriveRng, shuffleInPlace } from '../shared/rng.js';

export interface StepPlan {
  readonly epoch: number;
  /** Step index within the epoch, from 0. */
  readonly step: number;
  /**
   * The step's index in the whole run, from 0, counted across epochs: it seeds the
   * dropout masks, so a step recomputed under another weights version (after a
   * rollback) draws the same masks.
   */
  readonly globalStep: number;
  /** Sample indices of each micro-shard, in order; shard i is shards[i]. */
  readonly shards: readonly Uint32Array[];
  /** Samples in the step (the last step of an epoch may be short). */
  readonly count: number;
}

/** The training indices in epoch `epoch`'s order (a fresh array). */
export function epochOrder(train: Uint32Array, seed: number, epoch: number): Uint32Array {
  return shuffleInPlace(train.slice(), deriveRng(seed, 'epoch', epoch));
}

export function stepsPerEpoch(numTrain: number, batchSize: number): number {
  return Math.ceil(numTrain / batchSize);
}

/** Step `step` of an epoch whose order is `order`; `globalStep` is its index in the whole run. */
export function planStep(
  order: Uint32Array,
  epoch: number,
  step: number,
  globalStep: number,
  batchSize: number,
  shardSize: number,
): StepPlan {
  const start = step * batchSize;
  const end = Math.min(start + batchSize, order.length);
  const shards: Uint32Array[] = [];
  for (let s = start; s < end; s += shardSize) shards.push(order.subarray(s, Math.min(s + shardSize, end)));
  return { epoch, step, globalStep, shards, count: end - start };
}
