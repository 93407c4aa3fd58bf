// Helpers for the tests that hold a run's bits to its config and seed alone: the seed
// they share, a bit view for exact float32 comparison, and the two sides of a step's
// reduction (workers holding a random split of the shards; the coordinator reducing
// whatever arrived).

import { expect } from 'vitest';
import type { PartialGradient } from '../../shared/gradient.js';
import { combineInto } from '../../shared/gradient.js';
import type { Rng } from '../../shared/rng.js';
import { nodeKey, reduceNode, rootNode } from '../../shared/tree.js';
import type { NodeGradient } from '../../worker/compute.js';

export const SEED = 0xd37e;

/** A view of the float32 values' bit patterns: comparing two of these compares bits, not values. */
export function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/**
 * Assigns each shard to one of `workers` workers, half the time as contiguous runs
 * (as a scheduler handing out ranges would), otherwise scattered.
 */
export function randomPartition(rng: Rng, numShards: number, workers: number): number[][] {
  const sets: number[][] = Array.from({ length: workers }, () => []);
  if (rng.nextInt(2) === 0) {
    const cuts = Array.from({ length: workers - 1 }, () => rng.nextInt(numShards + 1)).sort((a, b) => a - b);
    let w = 0;
    for (let s = 0; s < numShards; s++) {
      while (w < cuts.length && s >= cuts[w]) w++;
      sets[w].push(s);
    }
  } else {
    for (let s = 0; s < numShards; s++) sets[rng.nextInt(workers)].push(s);
  }
  return sets;
}

/** The coordinator's side: reduce the root from whatever nodes arrived, keyed by node. */
export function reduceFrom(nodes: NodeGradient[], numShards: number): PartialGradient {
  const byKey = new Map<string, PartialGradient>();
  for (const { node, partial } of nodes) {
    expect(byKey.has(nodeKey(node)), `node ${nodeKey(node)} sent twice`).toBe(false);
    byKey.set(nodeKey(node), partial);
  }
  return reduceNode(rootNode(numShards), numShards, (n) => byKey.get(nodeKey(n)), combineInto);
}
