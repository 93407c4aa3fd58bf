// The fixed reduction tree over the micro-shards of one step. This is what makes
// distributed training bit-identical to one process: the gradient of a step is
// defined as a pairwise sum over shard indices in a tree that depends only on the
// number of shards, never on which worker computed what or when it arrived.
//
// A node is an aligned range [lo, lo + size) of shard indices, size a power of two.
// Its value is the leaf's value when size is 1; when its right half lies wholly past
// the last shard, the value of its left half; otherwise left + right. Any party that
// holds all the shards under a node can compute the node's value, and gets the same
// bits as anyone else, so workers pre-reduce what they hold and send one value per
// maximal node.

export interface TreeNode {
  readonly lo: number;
  /** A power of two. */
  readonly size: number;
}

export function nodeKey(node: TreeNode): string {
  return `${node.lo}/${node.size}`;
}

/** The root covering shards 0..numShards-1. */
export function rootNode(numShards: number): TreeNode {
  let size = 1;
  while (size < numShards) size *= 2;
  return { lo: 0, size };
}

/**
 * Maximal tree nodes whose in-range shards are all in `held` (sorted or not), in
 * ascending order of lo. Their leaves partition `held`. Only subtrees holding some
 * of `held` are visited: a task's few shards cost O(held · log numShards) rather than a
 * walk of the whole step's tree, which, once per task, would grow as workers² per step.
 */
export function coverNodes(held: readonly number[], numShards: number): TreeNode[] {
  // The distinct in-range shards, ascending; those under a node are a contiguous run of it.
  const shards = [...new Set(held)].filter((s) => Number.isInteger(s) && s >= 0 && s < numShards);
  shards.sort((a, b) => a - b);
  const out: TreeNode[] = [];
  /** Visits `node`, under which lie exactly shards[from..to). */
  const visit = (node: TreeNode, from: number, to: number): void => {
    if (from === to) return;
    // Distinct integers in [lo, end): all held when there are as many as the range is long.
    if (to - from === Math.min(node.lo + node.size, numShards) - node.lo) {
      out.push(node);
      return;
    }
    const half = node.size / 2;
    const mid = firstAtLeast(shards, node.lo + half, from, to);
    visit({ lo: node.lo, size: half }, from, mid);
    visit({ lo: node.lo + half, size: half }, mid, to);
  };
  visit(rootNode(numShards), 0, shards.length);
  return out;
}

/** The first index in sorted[from..to) whose value is ≥ v (to when none is). */
function firstAtLeast(sorted: readonly number[], v: number, from: number, to: number): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (sorted[m] < v) lo = m + 1;
    else hi = m;
  }
  return lo;
}

/**
 * Reduces a node top-down: takes a provided value where one exists for a node,
 * otherwise combines its children. `get` returns undefined for nodes it lacks; a
 * missing leaf is an error (the caller must have every shard covered).
 */
export function reduceNode<T>(
  node: TreeNode,
  numShards: number,
  get: (node: TreeNode) => T | undefined,
  combine: (left: T, right: T) => T,
): T {
  const have = get(node);
  if (have !== undefined) return have;
  if (node.size === 1) throw new Error(`reduction is missing shard ${node.lo}`);
  const half = node.size / 2;
  const left = reduceNode({ lo: node.lo, size: half }, numShards, get, combine);
  if (node.lo + half >= numShards) return left;
  const right = reduceNode({ lo: node.lo + half, size: half }, numShards, get, combine);
  return combine(left, right);
}
