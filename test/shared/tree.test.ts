// shared/tree.ts with shared/gradient.ts: the fixed reduction tree is what makes a
// step's gradient a function of its shards alone, so a run's bits depend on its config
// and seed and never on how many workers held which shards or in what order their
// results arrived. coverNodes cuts any held set into maximal aligned nodes; reducing
// the root from any split of them, in any arrival order, gives the same bits, loss
// sums and counts, and a missing shard is reported rather than skipped.

import { describe, it, expect } from 'vitest';
import { combineInto, type PartialGradient } from '../../shared/gradient.js';
import { type Rng, deriveRng, permutation, shuffleInPlace } from '../../shared/rng.js';
import { coverNodes, nodeKey, reduceNode, rootNode, type TreeNode } from '../../shared/tree.js';
import type { NodeGradient } from '../../worker/compute.js';
import { bits, randomPartition, reduceFrom, SEED } from '../support/determinism.js';

/** The leaves a node stands for: its in-range shard indices. */
function leavesOf(node: TreeNode, numShards: number): number[] {
  const out: number[] = [];
  for (let i = node.lo; i < Math.min(node.lo + node.size, numShards); i++) out.push(i);
  return out;
}

/** A random subset of 0..n-1, sometimes empty or full, in shuffled order. */
function randomSubset(rng: Rng, n: number): number[] {
  const mode = rng.nextInt(6);
  if (mode === 0) return [];
  if (mode === 1) return Array.from(permutation(n, rng));
  const p = rng.nextFloat();
  return Array.from(permutation(n, rng)).filter(() => rng.nextFloat() < p);
}

/** Everything wrong with coverNodes(held, numShards), as messages (empty when it is right). */
function coverProblems(held: number[], numShards: number): string[] {
  const problems: string[] = [];
  const root = rootNode(numShards);
  const have = new Set(held);
  const covered: number[] = [];
  let prevLo = -1;
  for (const node of coverNodes(held, numShards)) {
    const key = nodeKey(node);
    if (!Number.isInteger(Math.log2(node.size)) || node.size > root.size) problems.push(`${key}: bad size`);
    if (node.lo % node.size !== 0) problems.push(`${key}: not aligned`);
    if (node.lo >= numShards) problems.push(`${key}: starts past the last shard`);
    if (node.lo <= prevLo) problems.push(`${key}: not in ascending order`);
    prevLo = node.lo;
    const leaves = leavesOf(node, numShards);
    if (!leaves.every((s) => have.has(s))) problems.push(`${key}: covers a shard not held`);
    covered.push(...leaves);
    // Maximal: the parent does not have all its in-range shards held.
    if (node.size < root.size) {
      const parent = { lo: node.lo - (node.lo % (2 * node.size)), size: 2 * node.size };
      if (leavesOf(parent, numShards).every((s) => have.has(s)))
        problems.push(`${key}: parent ${nodeKey(parent)} is fully held`);
    }
  }
  // Disjoint and complete: the concatenated leaves are exactly the held set, ascending.
  const want = [...have].sort((a, b) => a - b);
  if (covered.join(',') !== want.join(',')) problems.push(`leaves ${covered.join(',')} ≠ held ${want.join(',')}`);
  return problems;
}

describe('coverNodes', () => {
  it('partitions the held shards into maximal aligned nodes, ascending, for many subsets of 1..40 shards', () => {
    const rng = deriveRng(SEED, 'cover');
    for (let numShards = 1; numShards <= 40; numShards++) {
      const root = rootNode(numShards);
      expect(root.lo).toBe(0);
      expect(root.size >= numShards && root.size < 2 * numShards).toBe(true);
      for (let trial = 0; trial < 40; trial++) {
        const held = randomSubset(rng, numShards);
        expect(coverProblems(held, numShards), `numShards=${numShards} held=${held.join(',')}`).toEqual([]);
      }
      expect(
        coverNodes(
          Array.from({ length: numShards }, (_, i) => i),
          numShards,
        ),
      ).toEqual([root]);
      expect(coverNodes([], numShards)).toEqual([]);
    }
  });
});

/** Random float32 partials of wildly different magnitudes, so summation order shows in the bits. */
function randomLeaves(rng: Rng, numShards: number, len: number): Float32Array[] {
  return Array.from({ length: numShards }, () =>
    Float32Array.from({ length: len }, () => (2 * rng.nextFloat() - 1) * 2 ** (rng.nextInt(40) - 20)),
  );
}

function partialOf(grad: Float32Array, shard: number): PartialGradient {
  return {
    grad: grad.slice(),
    lossSum: 0.1 * (shard + 1) + 1e-9 * shard * shard,
    count: shard + 1,
    correct: shard % 3,
  };
}

/** What a worker holding `held` sends: one pre-reduced partial per maximal node. */
function workerNodes(leaves: Float32Array[], held: number[], numShards: number): NodeGradient[] {
  return coverNodes(held, numShards).map((node) => ({
    node,
    partial: reduceNode(
      node,
      numShards,
      (n) => (n.size === 1 ? partialOf(leaves[n.lo], n.lo) : undefined),
      combineInto,
    ),
  }));
}

describe('reduceNode over any split of the shards', () => {
  it('gives bit-identical sums, loss sums and counts for every partition into 1..6 workers (1..40 shards)', () => {
    const rng = deriveRng(SEED, 'reduce');
    let orderMattered = 0;
    for (let numShards = 1; numShards <= 40; numShards++) {
      const leaves = randomLeaves(rng, numShards, 16);
      const all = Array.from({ length: numShards }, (_, i) => i);
      const reference = reduceFrom(workerNodes(leaves, all, numShards), numShards);
      expect(reference.count).toBe((numShards * (numShards + 1)) / 2);
      // A left-to-right sum generally rounds differently: the tree is what fixes the bits.
      const linear = new Float32Array(16);
      for (const leaf of leaves) for (let k = 0; k < 16; k++) linear[k] += leaf[k];
      if (bits(linear).some((v, k) => v !== bits(reference.grad)[k])) orderMattered++;
      for (let trial = 0; trial < 25; trial++) {
        const sets = randomPartition(rng, numShards, 1 + rng.nextInt(6));
        const arrived = sets.flatMap((held) => workerNodes(leaves, held, numShards));
        // Arrival order must not matter either.
        shuffleInPlace(Uint32Array.from(arrived.keys()), rng).forEach((j, i) => {
          [arrived[i], arrived[j]] = [arrived[j], arrived[i]];
        });
        const got = reduceFrom(arrived, numShards);
        const where = `numShards=${numShards} sets=${JSON.stringify(sets)}`;
        expect(bits(got.grad), where).toEqual(bits(reference.grad));
        expect(got.lossSum, where).toBe(reference.lossSum);
        expect(got.count, where).toBe(reference.count);
        expect(got.correct, where).toBe(reference.correct);
      }
    }
    expect(orderMattered).toBeGreaterThan(10);
  });

  it('reports a missing shard instead of silently skipping it', () => {
    const leaves = randomLeaves(deriveRng(SEED, 'missing'), 7, 4);
    const nodes = workerNodes(leaves, [0, 1, 2, 4, 5, 6], 7);
    expect(() => reduceFrom(nodes, 7)).toThrow('missing shard 3');
  });
});
