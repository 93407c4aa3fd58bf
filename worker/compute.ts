// Platform-neutral gradient computation: weights + shard indices in, one partial
// gradient per maximal tree node out. The Node worker, the browser worker and the
// single-process `flocktrain train` all run exactly this, which is why their results
// are bit-identical.

import type { Dataset } from '../shared/data/dataset.js';
import { combineInto, type PartialGradient } from '../shared/gradient.js';
import type { KernelSetName } from '../shared/kernels/kernel-set.js';
import { Network } from '../shared/model/network.js';
import type { ModelSpec } from '../shared/model/spec.js';
import { coverNodes, reduceNode, type TreeNode } from '../shared/tree.js';

export interface ShardInput {
  readonly id: number;
  readonly indices: Uint32Array;
}

export interface NodeGradient {
  readonly node: TreeNode;
  readonly partial: PartialGradient;
}

export class ShardComputer {
  readonly #net: Network;
  readonly #data: Dataset;
  /** (shardSize, numFeatures): the gathered input rows of the current shard, in kernel memory. */
  readonly #x: Float32Array;
  /** (shardSize, labelWidth): the gathered labels. */
  readonly #y: Float32Array;
  /** Gradient buffers (paramCount each), reused from one computeNodes call to the next. */
  readonly #pool: Float32Array[] = [];
  #lent = 0;

  /** `kernels` is the run's kernel set: every participant of a run must use the same one. */
  constructor(spec: ModelSpec, data: Dataset, shardSize: number, kernels: KernelSetName = 'js') {
    if (data.numFeatures !== spec.inputSize) {
      throw new RangeError(`dataset has ${data.numFeatures} features but the model expects ${spec.inputSize}`);
    }
    this.#net = new Network(spec, shardSize, kernels);
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
  computeShard(params: Float32Array, indices: Uint32Array): PartialGradient {
    return this.#computeShardInto(new Float32Array(this.paramCount), this.#net.stageParams(params), indices);
  }

  /** Gradient sum of one shard, written into `grad` (whatever it held). */
  #computeShardInto(grad: Float32Array, params: Float32Array, indices: Uint32Array): PartialGradient {
    const { numFeatures: F, labelWidth: L, features, labels, numSamples } = this.#data;
    const n = indices.length;
    if (n > this.#net.maxBatch) throw new RangeError(`shard of ${n} samples exceeds the shard size ${this.#net.maxBatch}`);
    for (let r = 0; r < n; r++) {
      const s = indices[r];
      if (s >= numSamples) throw new RangeError(`sample index ${s} is out of range (dataset has ${numSamples})`);
      this.#x.set(features.subarray(s * F, s * F + F), r * F);
      this.#y.set(labels.subarray(s * L, s * L + L), r * L);
    }
    const stats = this.#net.computeGradient(params, grad, this.#x, this.#y, n);
    return { grad, lossSum: stats.lossSum, count: n, correct: stats.correct };
  }

  /**
   * Computes the given shards of a step with `numShards` shards and pre-reduces them
   * along the fixed tree: one partial per maximal node the shards fill. The returned
   * gradients live in reused buffers: they are valid until the next call.
   */
  computeNodes(params: Float32Array, shards: readonly ShardInput[], numShards: number): NodeGradient[] {
    this.#lent = 0;
    const staged = this.#net.stageParams(params); // one copy per task, not per shard
    const leaves = new Map<number, PartialGradient>();
    for (const shard of shards) leaves.set(shard.id, this.#computeShardInto(this.#borrow(), staged, shard.indices));
    return coverNodes([...leaves.keys()], numShards).map((node) => ({
      node,
      partial: reduceNode(node, numShards, (n) => (n.size === 1 ? leaves.get(n.lo) : undefined), combineInto),
    }));
  }

  /** A gradient buffer (overwritten by the shard computed into it); steady state allocates nothing. */
  #borrow(): Float32Array {
    if (this.#lent === this.#pool.length) this.#pool.push(new Float32Array(this.paramCount));
    return this.#pool[this.#lent++];
  }
}
