// Cuts one task's shards into runs for parallel compute threads (worker/node/threaded-compute.ts).
//
// Any cut gives the same bits. Each run is pre-reduced along the fixed tree into its
// own maximal nodes (coverNodes, as ShardComputer.computeNodes does), and each such
// node lies inside one of the task's maximal nodes: a run's node is fully held by
// the task too, so it cannot be larger than the task's node around it. Completing
// the task's nodes from the runs' nodes with reduceNode then adds the same operands
// in the same order as reducing from the leaves would. The cut only decides how
// long each thread works and how many nodes come back to be added on the caller's
// thread: runs are contiguous in shard id, of about equal samples, and cut where the
// tree is aligned (a shard id divisible by a large power of two) when that costs
// little balance, since an aligned cut leaves fewer, larger nodes.

import type { ShardInput } from './compute.js';

/** A cut may stray this fraction of a run's samples from even to land on a more aligned shard id. */
const ALIGN_SLACK = 1 / 8;

/**
 * At most `parts` non-empty runs of `shards` (sorted by id, duplicates dropped),
 * contiguous in id order, with about equal sample counts. Fewer runs when there are
 * fewer shards than parts; none for no shards.
 */
export function splitShards(shards: readonly ShardInput[], parts: number): ShardInput[][] {
  if (!(Number.isInteger(parts) && parts >= 1))
    throw new RangeError(`splitShards: parts must be an integer ≥ 1, got ${parts}`);
  const byId = new Map<number, ShardInput>();
  for (const s of shards) byId.set(s.id, s);
  const sorted = [...byId.values()].sort((a, b) => a.id - b.id);
  const n = sorted.length;
  const runs = Math.min(parts, n);
  if (runs <= 1) return n === 0 ? [] : [sorted];
  // before[i]: samples in sorted[0..i).
  const before = new Array<number>(n + 1);
  before[0] = 0;
  for (let i = 0; i < n; i++) before[i + 1] = before[i] + sorted[i].indices.length;
  const total = before[n];
  const slack = (total / runs) * ALIGN_SLACK;
  const out: ShardInput[][] = [];
  let start = 0;
  for (let r = 1; r < runs; r++) {
    const ideal = (total * r) / runs;
    // A cut before sorted[c]; every run left to make keeps at least one shard.
    const last = n - (runs - r);
    let nearest = Infinity;
    for (let c = start + 1; c <= last; c++) nearest = Math.min(nearest, Math.abs(before[c] - ideal));
    let cut = -1;
    for (let c = start + 1; c <= last; c++) {
      if (Math.abs(before[c] - ideal) > nearest + slack) continue;
      const better =
        cut < 0 ||
        alignment(sorted[c].id) > alignment(sorted[cut].id) ||
        (alignment(sorted[c].id) === alignment(sorted[cut].id) &&
          Math.abs(before[c] - ideal) < Math.abs(before[cut] - ideal));
      if (better) cut = c;
    }
    out.push(sorted.slice(start, cut));
    start = cut;
  }
  out.push(sorted.slice(start));
  return out;
}

/** Trailing zero bits of a shard id (> 0): how large an aligned tree node may start there. */
function alignment(id: number): number {
  return 31 - Math.clz32(id & -id);
}
