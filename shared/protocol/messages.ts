// Every message of the flocktrain protocol, defined once. Both directions are
// discriminated unions on `type`. Float32Array and Uint32Array fields travel as
// msgpack `bin` (raw little-endian bytes), never as arrays of numbers; weights and
// gradients in the run's wire dtype (f32, or bf16: the upper halves of the floats),
// and in memory always as Float32Array.
//
// Conversation (worker ⇄ coordinator):
//   hello →            ← welcome (spec, dataset descriptor; no weights)
//   ready →  (after the dataset is loaded and its hash checked)
//                      ← weights (the current version, once, on joining)
//                      ← task (version, shards, and the weights at that version
//                              when this worker has not been sent them yet, or
//                              with --weights-over-http a weightsRef to GET them by)
//   result →           ← task … (one message each way per step)
//                      ← standby (no shard for this worker in a whole step, and why)
//                      ← stop (training over, or coordinator going away)
//                      ← check (an idle worker recomputes another's task)
//   digest →           (the SHA-256 of that recomputation, nothing else)
//   banReport →        (from a relay: it banned one of its own workers for a forgery)

import type { FeatureDtype, TaskKind } from '../data/dataset.js';
import type { KernelSetName } from '../kernels/kernel-set.js';
import type { ModelSpec } from '../model/spec.js';
import type { WireDtype } from '../wire-dtype.js';

export type WorkerKind = 'node' | 'browser';

/** What a worker needs to fetch and verify the dataset; the bytes come over HTTP. */
export interface DatasetDescriptor {
  readonly name: string;
  readonly kind: TaskKind;
  readonly numSamples: number;
  readonly numFeatures: number;
  readonly labelWidth: number;
  readonly numClasses: number;
  readonly classNames: readonly string[];
  /** How the features travel: f32, or bytes into a 256-entry table (shared/data/transfer.ts). */
  readonly dtype: FeatureDtype;
  /** Hex SHA-256 of the dataset's canonical encoding (node/dataset-hash.ts). */
  readonly hash: string;
  /** Path on the coordinator's HTTP server, immutable for the hash; the body is shared/data/transfer.ts's. */
  readonly path: string;
}

export interface HelloMessage {
  readonly type: 'hello';
  readonly protocol: number;
  readonly token: string;
  readonly kind: WorkerKind;
  /** Free-form host or browser description, for logs and the dashboard. */
  readonly agent: string;
}

export interface ReadyMessage {
  readonly type: 'ready';
  /** Hash of the dataset the worker loaded; must equal the descriptor's. */
  readonly datasetHash: string;
}

/** Statistics of one reduction-tree node, in the order of the result's gradients. */
export interface NodeStats {
  readonly lo: number;
  readonly size: number;
  /** Σ per-sample loss over the node's samples. */
  readonly lossSum: number;
  readonly count: number;
  readonly correct: number;
}

export interface ResultMessage {
  readonly type: 'result';
  readonly taskId: number;
  readonly version: number;
  readonly nodes: readonly NodeStats[];
  /** How `grads` travels: the run's wire dtype (bf16 values are rounded already). */
  readonly dtype: WireDtype;
  /**
   * The worker's gradient (or loss) came out NaN or ±Inf: training diverged, or the
   * worker is broken. Then `grads` is empty and every lossSum 0; the coordinator
   * recomputes the task to tell the two apart.
   */
  readonly diverged: boolean;
  /** (nodes.length, paramCount): the gradient sum of each node, concatenated; empty when diverged. */
  readonly grads: Float32Array;
  /** Milliseconds the worker spent computing, for throughput estimates. */
  readonly computeMs: number;
}

/** The answer to a `check`: only a hash of the recomputed result, so a check costs no gradient bytes. */
export interface DigestMessage {
  readonly type: 'digest';
  readonly checkId: number;
  /** Hex SHA-256 of the recomputed result (shared/result-digest.ts), 64 lowercase characters. */
  readonly digest: string;
}

/**
 * From a relay (coordinator/relay/): it caught one of its own workers forging and
 * banned it. Information for the coordinator's log and dashboard: the relay's
 * results are still audited upstream as one worker's, whatever it reports.
 */
export interface BanReportMessage {
  readonly type: 'banReport';
  /** The banned worker's id, agent and address as the relay knows them. */
  readonly workerId: string;
  readonly agent: string;
  readonly remote: string;
  /** The first difference from the relay's recomputation. */
  readonly detail: string;
}

export type WorkerMessage = HelloMessage | ReadyMessage | ResultMessage | DigestMessage | BanReportMessage;

export interface WelcomeMessage {
  readonly type: 'welcome';
  readonly protocol: number;
  readonly workerId: string;
  readonly spec: ModelSpec;
  readonly dataset: DatasetDescriptor;
  /** Micro-shard capacity: the most samples one shard of a task can hold. */
  readonly shardSize: number;
  /**
   * The run's kernel set. Its bits differ from the other set's, so a worker computes
   * with exactly this one or refuses (close code 4008), never with another.
   */
  readonly kernels: KernelSetName;
  /** The run's wire dtype: how weights and gradients travel, and where they are rounded (shared/wire-dtype.ts). */
  readonly wireDtype: WireDtype;
}

export interface WeightsMessage {
  readonly type: 'weights';
  readonly version: number;
  /** How `weights` travel (encoding to bf16 rounds them). */
  readonly dtype: WireDtype;
  readonly weights: Float32Array;
}

/**
 * Where the weights of a version wait on the coordinator's HTTP server (when it
 * publishes them there) instead of riding in the message: the body is the
 * `paramCount` weights in the run's wire dtype, and it must hash to `sha256`.
 */
export interface WeightsRef {
  /** `/weights/<version>-<sha256>`, on the origin the worker joined (never another). */
  readonly path: string;
  /** Hex SHA-256 of the body, 64 lowercase characters. */
  readonly sha256: string;
}

export interface ShardWork {
  readonly id: number;
  /** Sample indices into the dataset, in the step's order. */
  readonly indices: Uint32Array;
}

export interface TaskMessage {
  readonly type: 'task';
  readonly taskId: number;
  /** The weights version the gradients must be computed at. */
  readonly version: number;
  /**
   * The step's index in the whole run (from 0, across epochs): it seeds the dropout
   * masks. Not the version, which a rollback moves on while the step stays the same.
   */
  readonly step: number;
  /** Number of shards in this step: fixes the reduction tree. */
  readonly numShards: number;
  readonly shards: readonly ShardWork[];
  /** The run's wire dtype, which `weights` travel in. */
  readonly dtype: WireDtype;
  /**
   * The weights at `version`, when this worker was not sent them yet (the first task
   * of every step, in the common case), else null. They ride with the task so a step
   * costs one message each way, not a weights message and then a task.
   */
  readonly weights: Float32Array | null;
  /**
   * Instead of `weights` (then null): where to fetch them over HTTP. Absent when the
   * weights ride in the message or the worker holds them.
   */
  readonly weightsRef?: WeightsRef;
}

/**
 * Recompute these shards, as a task would, and answer with a `digest` of the result.
 * An audit of another worker's task: the checker is not told whose it is.
 */
export interface CheckMessage {
  readonly type: 'check';
  readonly checkId: number;
  readonly version: number;
  readonly step: number;
  readonly numShards: number;
  readonly shards: readonly ShardWork[];
  readonly dtype: WireDtype;
  /** The weights at `version` when this worker lacks them, else null (as in a task). */
  readonly weights: Float32Array | null;
  /** Where to fetch them instead, as in a task. */
  readonly weightsRef?: WeightsRef;
}

/**
 * This worker got no shard in a whole step, and why, for its page and log. It stays
 * connected and ready; its next task ends the standby.
 */
export interface StandbyMessage {
  readonly type: 'standby';
  readonly reason: string;
}

export interface StopMessage {
  readonly type: 'stop';
  readonly reason: string;
}

export type CoordinatorMessage =
  | WelcomeMessage
  | WeightsMessage
  | TaskMessage
  | CheckMessage
  | StandbyMessage
  | StopMessage;
