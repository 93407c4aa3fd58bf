// Platform-neutral gradient computation: weights + shard indices in, one partial
// gradient per maximal tree node out. The Node worker, the browser worker and the
// single-process `flocktrain train` all run exactly this, which is why their results
// are bit-identical. (A Node worker with --threads > 1 runs it on several threads:
// worker/node/threaded-compute.ts, behind the GradientComputer interface below.)

import type { Dataset } from '../shared/data/dataset.js';
import { gatherRows } from '../shared/data/gather.js';
import { allFinite } from '../shared/finite.js';
import type { PartialGradient } from '../shared/gradient.js';
import type { KernelSetName } from '../shared/kernels/kernel-set.js';
import { Network } from '../shared/model/network.js';
import type { ModelSpec } from '../shared/model/spec.js';
import { coverNodes, reduceNode, type TreeNode } from '../shared/tree.js';
import type { WireDtype } from '../shared/wire-dtype.js';
import type { BanReportMessage } from '../shared/protocol/messages.js';

export interface ShardInput {
  readonly id: number;
  readonly indices: Uint32Array;
}

export interface NodeGradient {
  readonly node: TreeNode;
  readonly partial: PartialGradient;
}

/**
 * Whether every node's gradient and loss are finite. A worker that finds otherwise
 * reports its result as diverged, and the coordinator, recomputing, asks the same.
 */
export function allNodesFinite(nodes: readonly NodeGradient[]): boolean {
  for (const { partial } of nodes) if (!Number.isFinite(partial.lossSum) || !allFinite(partial.grad)) return false;
  return true;
}

/** What a worker computes with: a ShardComputer on the calling thread, or a pool of threads each running one. */
export interface GradientComputer {
  readonly paramCount: number;
  /**
   * As ShardComputer.computeNodes, and with the same bits; results are valid until the
   * next call. `version`: the weights version `params` are (a relay republishes them under it).
   */
  computeNodes(
    params: Float32Array,
    shards: readonly ShardInput[],
    numShards: number,
    step?: number,
    version?: number,
  ): Promise<NodeGradient[]> | NodeGradient[];
}

/** What a computer is built from, as the coordinator's welcome gives it. */
export interface ComputerSetup {
  readonly spec: ModelSpec;
  readonly dataset: Dataset;
  /** The dataset's SHA-256 (the welcome's): equal hashes, equal data. */
  readonly datasetHash: string;
  readonly shardSize: number;
  readonly kernels: KernelSetName;
  /** The run's wire dtype: bf16 rounds every shard sum and tree node (shared/wire-dtype.ts). */
  readonly wireDtype: WireDtype;
  /** Sends a message to the coordinator on this connection (a relay's ban reports). */
  readonly report?: (message: BanReportMessage) => void;
}

/** Gradient slots in kernel memory: enough to reduce a node of 8 shards without leaving it. */
const WORKING_SLOTS = 4;

export class ShardComputer implements GradientComputer {
  readonly #net: Network;
  readonly #data: Dataset;
  /** (shardSize, numFeatures): the gathered input rows of the current shard, in kernel memory. */
  readonly #x: Float32Array;
  /** (shardSize, labelWidth): the gathered labels. */
  readonly #y: Float32Array;
  /** Gradient buffers (paramCount each) handed out as results, reused from one computeNodes call to the next. */
  readonly #pool: Float32Array[] = [];
  #lent = 0;
  /** Free gradient buffers in kernel memory, where leaves are computed and combined (a stack). */
  readonly #freeSlots: Float32Array[];
  readonly #slots: ReadonlySet<Float32Array>;

  readonly #wireDtype: WireDtype;

  /**
   * `kernels` is the run's kernel set and `wireDtype` its wire dtype: every participant
   * of a run must use the same ones.
   */
  constructor(
    spec: ModelSpec,
    data: Dataset,
    shardSize: number,
    kernels: KernelSetName = 'js',
    wireDtype: WireDtype = 'f32',
  ) {
    this.#wireDtype = wireDtype;
    if (data.numFeatures !== spec.inputSize) {
      throw new RangeError(`dataset has ${data.numFeatures} features but the model expects ${spec.inputSize}`);
    }
    this.#net = new Network(spec, shardSize, kernels, WORKING_SLOTS);
    this.#slots = new Set(this.#net.gradientSlots);
    this.#freeSlots = [];
    this.#data = data;
    this.#x = this.#net.inputBuffer;
    this.#y = new Float32Array(shardSize * data.labelWidth);
  }

  get paramCount(): number {
    return this.#net.layout.totalSize;
  }

  get kernels(): KernelSetName {
    return this.#net.kernels;
  }

  /** Gradient sum of one shard, in a fresh buffer. */
  computeShard(params: Float32Array, indices: Uint32Array, step = 0): PartialGradient {
    return this.#computeShardInto(new Float32Array(this.paramCount), this.#net.stageParams(params), indices, step);
  }

  /** Gradient sum of one shard, written into `grad` (whatever it held). */
  #computeShardInto(grad: Float32Array, params: Float32Array, indices: Uint32Array, step: number): PartialGradient {
    const n = indices.length;
    if (n > this.#net.maxBatch)
      throw new RangeError(`shard of ${n} samples exceeds the shard size ${this.#net.maxBatch}`);
    gatherRows(this.#x, this.#y, this.#data, indices);
    const stats = this.#net.computeGradient(params, grad, this.#x, this.#y, n, { step, indices });
    if (this.#wireDtype === 'bf16') this.#net.roundBf16(grad);
    return { grad, lossSum: stats.lossSum, count: n, correct: stats.correct };
  }

  /**
   * Computes the given shards of a step with `numShards` shards and pre-reduces them
   * along the fixed tree: one partial per maximal node the shards fill. The returned
   * gradients live in reused buffers: they are valid until the next call. `step` is
   * the step's index in the whole run (the task's `step`, never its weights version):
   * with the shards' sample indices it fixes dropout's masks, so they do not depend on
   * who computes which shard, nor on the version a rollback recomputes the step under.
   *
   * Leaves are computed as the tree walk reaches them, left to right, into kernel-memory
   * slots, and combined there (a node of 2^d shards needs d + 1 slots at once); each
   * finished node is copied out once. Past WORKING_SLOTS, plain buffers take over:
   * slower, same bits (a float32 add is the same wherever it runs).
   */
  computeNodes(params: Float32Array, shards: readonly ShardInput[], numShards: number, step = 0): NodeGradient[] {
    this.#lent = 0;
    this.#freeSlots.length = 0; // all free again, even after a call that threw midway
    this.#freeSlots.push(...[...this.#slots].reverse());
    const staged = this.#net.stageParams(params); // one copy per task, not per shard
    const byId = new Map<number, Uint32Array>();
    for (const shard of shards) byId.set(shard.id, shard.indices);
    const leaf = (id: number): PartialGradient | undefined => {
      const indices = byId.get(id);
      return indices === undefined
        ? undefined
        : this.#computeShardInto(this.#freeSlots.pop() ?? this.#borrow(), staged, indices, step);
    };
    const combine = (left: PartialGradient, right: PartialGradient): PartialGradient => {
      this.#net.addInto(left.grad, right.grad);
      if (this.#wireDtype === 'bf16') this.#net.roundBf16(left.grad);
      this.#release(right.grad);
      return {
        grad: left.grad,
        lossSum: left.lossSum + right.lossSum,
        count: left.count + right.count,
        correct: left.correct + right.correct,
      };
    };
    return coverNodes([...byId.keys()], numShards).map((node) => {
      const partial = reduceNode(node, numShards, (n) => (n.size === 1 ? leaf(n.lo) : undefined), combine);
      if (!this.#slots.has(partial.grad)) return { node, partial };
      const out = this.#borrow();
      out.set(partial.grad);
      this.#release(partial.grad);
      return { node, partial: { ...partial, grad: out } };
    });
  }

  #release(buffer: Float32Array): void {
    if (this.#slots.has(buffer)) this.#freeSlots.push(buffer);
  }

  /** A gradient buffer (overwritten by the shard computed into it); steady state allocates nothing. */
  #borrow(): Float32Array {
    if (this.#lent === this.#pool.length) this.#pool.push(new Float32Array(this.paramCount));
    return this.#pool[this.#lent++];
  }
}
