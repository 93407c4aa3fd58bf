// The seam every result passes through before it counts. A verifier sees a result
// that already belongs to its task (right worker, right weights version) and says
// whether to accept it, to reject it and its worker, or that training diverged.
//
// The default, StructuralVerifier, accepts any result whose nodes and sample counts
// are exactly its task's, and judges a worker's claim of a non-finite gradient by
// recomputing the shards here. A stricter verifier plugs in behind the same
// interface: it may recompute any result through its own `recompute` and compare
// bits, or answer asynchronously (a promise) after asking a second worker for the
// same shards; while a verdict is pending the task's shards stay held, and a verdict
// that arrives after its step ended or its worker left is ignored.

import type { RejectReason } from '../../shared/protocol/codes.js';
import type { ResultMessage } from '../../shared/protocol/messages.js';
import { nodeKey, type TreeNode } from '../../shared/tree.js';
import { allNodesFinite, type NodeGradient, type ShardInput } from '../../worker/compute.js';
import type { StepPlan } from '../plan.js';
import type { StepWorker } from './worker.js';

/** A result, with everything needed to judge it. */
export interface Claim {
  readonly taskId: number;
  readonly worker: StepWorker;
  /** The step: shard s holds the samples plan.shards[s]. */
  readonly plan: StepPlan;
  /** The task's shards, ascending, and the tree nodes (with their sample counts) its result must carry, in order. */
  readonly shards: readonly number[];
  readonly nodes: readonly TreeNode[];
  readonly counts: readonly number[];
  /** The weights the task was computed at, as the worker received them; valid until the step ends. */
  readonly weights: Float32Array;
  readonly result: ResultMessage;
}

export type Verdict =
  /** The result counts (a `diverged` result is never accepted). */
  | { readonly kind: 'accept' }
  /** The result is dropped and its worker disconnected with `reason`; its shards go to others. */
  | { readonly kind: 'reject'; readonly reason: RejectReason; readonly detail: string }
  /** The gradient is non-finite for the model, not for the worker: the step fails with DivergedError. */
  | { readonly kind: 'diverged' };

export interface Verifier {
  /** A promise must settle: the step waits for it (the task's deadline no longer runs). */
  verify(claim: Claim): Verdict | Promise<Verdict>;
}

/**
 * Recomputes shards at the given weights with the run's kernels, as a worker would;
 * `step` (the weights version) seeds the dropout masks.
 */
export type Recompute = (
  shards: readonly ShardInput[],
  numShards: number,
  weights: Float32Array,
  step: number,
) => NodeGradient[];

export class StructuralVerifier implements Verifier {
  readonly #recompute: Recompute | null;

  /** Without `recompute`, every claim of divergence is rejected (it cannot be checked). */
  constructor(recompute: Recompute | null) {
    this.#recompute = recompute;
  }

  verify(claim: Claim): Verdict {
    const mismatch = nodeMismatch(claim);
    if (mismatch !== null) return { kind: 'reject', reason: 'not_assigned', detail: mismatch };
    if (!claim.result.diverged) return { kind: 'accept' };
    const recompute = this.#recompute;
    const shards = claim.shards.map((id) => ({ id, indices: claim.plan.shards[id] }));
    if (
      recompute !== null &&
      !allNodesFinite(recompute(shards, claim.plan.shards.length, claim.weights, claim.result.version))
    )
      return { kind: 'diverged' };
    const why = recompute === null ? 'which this coordinator cannot check' : 'which is finite when recomputed here';
    return {
      kind: 'reject',
      reason: 'non_finite',
      detail: `task ${claim.taskId}: reported a non-finite gradient, ${why}`,
    };
  }
}

/** Null when the result carries exactly the task's nodes and sample counts, else what differs. */
export function nodeMismatch(claim: Claim): string | null {
  const { taskId, nodes, counts, result } = claim;
  if (result.nodes.length !== nodes.length)
    return `task ${taskId} expects ${nodes.length} nodes, result has ${result.nodes.length}`;
  for (let k = 0; k < nodes.length; k++) {
    const want = nodes[k];
    const got = result.nodes[k];
    if (got.lo !== want.lo || got.size !== want.size)
      return `task ${taskId} node ${k} should be ${nodeKey(want)}, got ${got.lo}/${got.size}`;
    if (got.count !== counts[k]) return `task ${taskId} node ${k} should count ${counts[k]} samples, got ${got.count}`;
    if (got.correct > got.count) return `task ${taskId} node ${k} claims ${got.correct} correct of ${got.count}`;
  }
  return null;
}
