// The seam every result passes through before it counts. A verifier sees a result
// that already belongs to its task (right worker, right weights version) and says
// whether to accept it (and whether it checked its bits), to reject it and its
// worker, to ban its worker for a forgery, or that training diverged.
//
// Results are bit-deterministic, so an honest result has exactly one byte pattern:
// checking one is an exact comparison with a recomputation (resultMismatch), never a
// tolerance. The AuditingVerifier (auditor.ts) does that on probation and at random.
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
  /** Weights version the task was computed at. */
  readonly version: number;
  /** Samples the task covered, and ms from sending it to its result (for the speed model once verified). */
  readonly samples: number;
  readonly elapsedMs: number;
  /** Check it before it counts, whatever the worker's standing (a replay after a divergence). */
  readonly mustVerify: boolean;
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
  /**
   * The result counts (a `diverged` result is never accepted). `verified`: its bits
   * were checked against a recomputation, so its timing may feed the speed model.
   */
  | { readonly kind: 'accept'; readonly verified: boolean }
  /** The result differs from its recomputation: its worker is banned, and the steps it touched are undone. */
  | { readonly kind: 'forged'; readonly detail: string; readonly undoFrom: number | null }
  /** The result is dropped and its worker disconnected with `reason`; its shards go to others. */
  | { readonly kind: 'reject'; readonly reason: RejectReason; readonly detail: string }
  /** The gradient is non-finite for the model, not for the worker: the step fails with DivergedError. */
  | { readonly kind: 'diverged' };

export interface Verifier {
  /** A promise must settle: the step waits for it (the task's deadline no longer runs). */
  verify(claim: Claim): Verdict | Promise<Verdict>;
  /** Called once by the scheduler: where findings about results accepted unverified go. */
  attach?(sink: VerifierSink): void;
  /** The step these workers' unverified results were in came out non-finite: check their next results first. */
  suspect?(workers: readonly StepWorker[]): void;
  /** A rollback undid every step at versions ≥ `version`; results applied there no longer matter. */
  rolledBack?(version: number): void;
  /** Runs every check still pending at once (the end of a run); findings go to the sink. */
  drain?(): void;
  /** The first weights version at which a result that nobody checked still counts, or null. */
  unverifiedFrom?(): number | null;
  /** Recomputations compared so far, and workers banned. */
  tally?(): VerificationTally;
  /** Called once by the scheduler: idle workers that may recompute results in its stead. */
  delegateTo?(checkers: CheckerPool): void;
}

/** A task to recompute elsewhere: its shards at a weights version and step. */
export interface CheckWork {
  readonly version: number;
  readonly step: number;
  readonly numShards: number;
  readonly shards: readonly ShardInput[];
  /** As the author received them. */
  readonly weights: Float32Array;
}

/**
 * Where a check may run instead of on the coordinator's thread: on an idle worker,
 * which recomputes the task and sends back only its digest (the scheduler's checkers.ts).
 */
export interface CheckerPool {
  /**
   * A ready worker to recompute `work`: not `author`, not computing a task of the current
   * step, no check out, drawn at random among those (one that was sent the same shards only
   * when no other is); or null, and the coordinator recomputes it. Called once per audit:
   * the pick counts as sent.
   */
  idle(author: StepWorker, work: CheckWork): StepWorker | null;
  /** Sends `checker` the work; resolves with its hex digest, or null when it misses the deadline or leaves. */
  check(checker: StepWorker, work: CheckWork): Promise<string | null>;
}

export interface VerificationTally {
  readonly audited: number;
  readonly banned: number;
}

/** What a verifier reports after the fact, about results it let count before checking them. */
export interface VerifierSink {
  /**
   * A result proved forged: ban its worker and undo every step from weights version
   * `undoFrom` on (null: none of its unverified results is still applied).
   */
  forged(worker: StepWorker, detail: string, undoFrom: number | null): void;
  /** A result proved honest: its timing may feed the speed model. */
  verified(claim: Claim): void;
}

/**
 * Recomputes shards at the given weights with the run's kernels, as a worker would;
 * `step` (the step's global index, StepPlan.globalStep) seeds the dropout masks.
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
    if (!claim.result.diverged) return { kind: 'accept', verified: false };
    const recompute = this.#recompute;
    const shards = claim.shards.map((id) => ({ id, indices: claim.plan.shards[id] }));
    if (
      recompute !== null &&
      !allNodesFinite(recompute(shards, claim.plan.shards.length, claim.weights, claim.plan.globalStep))
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

/**
 * Null when the result carries exactly the recomputed nodes: every gradient bit, every
 * lossSum, count and correct; else the first difference. No tolerance: an honest
 * worker computes the same bits (bf16 results are compared after widening, which is exact).
 */
export function resultMismatch(claim: Claim, recomputed: readonly NodeGradient[]): string | null {
  const { taskId, result } = claim;
  if (result.diverged) return `task ${taskId}: reported a non-finite gradient, which is finite when recomputed here`;
  if (recomputed.length !== result.nodes.length)
    return `task ${taskId}: ${result.nodes.length} nodes, recomputation has ${recomputed.length}`;
  const P = recomputed.length === 0 ? 0 : recomputed[0].partial.grad.length;
  if (result.grads.length !== P * recomputed.length)
    return `task ${taskId}: ${result.grads.length} gradient values, recomputation has ${P * recomputed.length}`;
  const got = new Uint32Array(result.grads.buffer, result.grads.byteOffset, result.grads.length);
  for (let k = 0; k < recomputed.length; k++) {
    const want = recomputed[k].partial;
    const n = result.nodes[k];
    if (!Object.is(n.lossSum, want.lossSum))
      return `task ${taskId} node ${k}: lossSum ${n.lossSum}, recomputed ${want.lossSum}`;
    if (n.count !== want.count) return `task ${taskId} node ${k}: count ${n.count}, recomputed ${want.count}`;
    if (n.correct !== want.correct) return `task ${taskId} node ${k}: correct ${n.correct}, recomputed ${want.correct}`;
    const bits = new Uint32Array(want.grad.buffer, want.grad.byteOffset, want.grad.length);
    const base = k * P;
    for (let i = 0; i < P; i++) {
      if (got[base + i] !== bits[i])
        return `task ${taskId} node ${k}: gradient[${i}] is ${result.grads[base + i]}, recomputed ${want.grad[i]}`;
    }
  }
  return null;
}
