// One compute thread's side of a thread pool (worker/thread-pool.ts), platform-neutral:
// the messages a pool and its threads exchange, and the handler that answers a
// request. A thread owns a ShardComputer, and so its own wasm instance, over the
// dataset its pool shares with every thread, and runs computeNodes on the runs of
// shards it is sent. Each resulting node's gradient goes into this thread's slots, a
// SharedArrayBuffer the pool reads once the reply arrives: nothing is copied through
// postMessage but the small request and reply objects. The entries that put it on a
// real thread are worker/node/compute-thread.ts (Node worker_threads) and
// worker/browser/compute-thread.ts (a Web Worker).

import type { Dataset } from '../shared/data/dataset.js';
import type { KernelSetName } from '../shared/kernels/kernel-set.js';
import type { WireDtype } from '../shared/wire-dtype.js';
import type { ModelSpec } from '../shared/model/spec.js';
import type { TreeNode } from '../shared/tree.js';
import { ShardComputer, type ShardInput } from './compute.js';

/** What a compute thread is started with (Node: its workerData; a Web Worker: its first message). */
export interface ThreadInit {
  readonly spec: ModelSpec;
  readonly shardSize: number;
  readonly kernels: KernelSetName;
  readonly wireDtype: WireDtype;
  /** The Dataset's fields but its two arrays, which are views of `data`. */
  readonly dataset: Omit<Dataset, 'features' | 'labels'>;
  /** (numSamples, numFeatures) features, then (numSamples, labelWidth) labels, float32. */
  readonly data: SharedArrayBuffer;
  /** (paramCount) float32: the weights of the current call, written by the pool before each request. */
  readonly weights: SharedArrayBuffer;
}

/** Pool → compute thread: compute these shards (one run of a task). */
export interface ThreadRequest {
  readonly call: number;
  readonly numShards: number;
  /** The task's step, its index in the whole run (dropout's masks depend on it). */
  readonly step: number;
  /** Per shard, three numbers: its id, where its sample indices start in `indices`, how many. */
  readonly shards: readonly number[];
  /** A new (larger) shared index buffer, when the pool had to grow it; else the last one sent. */
  readonly indices?: SharedArrayBuffer;
}

export interface ThreadNode {
  readonly node: TreeNode;
  readonly lossSum: number;
  readonly count: number;
  readonly correct: number;
}

/** Compute thread → pool. */
export type ThreadReply =
  | { readonly type: 'ready' }
  /** Node k's gradient (paramCount floats) is slot k of the slots buffer; `slots` when the thread had to grow it. */
  | {
      readonly type: 'done';
      readonly call: number;
      readonly nodes: readonly ThreadNode[];
      readonly slots?: SharedArrayBuffer;
    }
  /** computeNodes threw (a bad index, say): the call fails, the thread lives on. */
  | { readonly type: 'failed'; readonly call: number; readonly message: string };

function datasetOver(init: ThreadInit): Dataset {
  const { numSamples, numFeatures, labelWidth } = init.dataset;
  const features = new Float32Array(init.data, 0, numSamples * numFeatures);
  const labels = new Float32Array(init.data, features.byteLength, numSamples * labelWidth);
  return { ...init.dataset, features, labels };
}

/**
 * A compute thread's request handler over `init` (builds its ShardComputer now, so a
 * thread that cannot, say for want of wasm SIMD, fails before it says ready).
 */
export function threadServer(init: ThreadInit): (request: ThreadRequest) => ThreadReply {
  const computer = new ShardComputer(init.spec, datasetOver(init), init.shardSize, init.kernels, init.wireDtype);
  const P = computer.paramCount;
  const weights = new Float32Array(init.weights);
  let indices: Uint32Array = new Uint32Array(0);
  /** (paramCount) each: views of the shared slots buffer, grown when a run returns more nodes. */
  let slots: Float32Array[] = [];
  return (m) => {
    if (m.indices !== undefined) indices = new Uint32Array(m.indices);
    try {
      const shards: ShardInput[] = [];
      for (let i = 0; i < m.shards.length; i += 3) {
        const start = m.shards[i + 1];
        shards.push({ id: m.shards[i], indices: indices.subarray(start, start + m.shards[i + 2]) });
      }
      const nodes = computer.computeNodes(weights, shards, m.numShards, m.step);
      let grown: SharedArrayBuffer | undefined;
      if (nodes.length > slots.length) {
        grown = new SharedArrayBuffer(nodes.length * P * 4);
        const buffer = grown;
        slots = nodes.map((_, k) => new Float32Array(buffer, k * P * 4, P));
      }
      nodes.forEach((n, k) => slots[k].set(n.partial.grad));
      const meta = nodes.map(({ node, partial }) => ({
        node,
        lossSum: partial.lossSum,
        count: partial.count,
        correct: partial.correct,
      }));
      return grown === undefined
        ? { type: 'done', call: m.call, nodes: meta }
        : { type: 'done', call: m.call, nodes: meta, slots: grown };
    } catch (err) {
      return { type: 'failed', call: m.call, message: err instanceof Error ? err.message : String(err) };
    }
  };
}
