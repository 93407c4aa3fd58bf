// A GradientComputer on a pool of compute threads, platform-neutral: the transport
// that starts a thread and carries its messages is injected (worker/node/threaded-compute.ts:
// Node worker_threads for --threads; worker/browser/web-threads.ts: Web Workers for
// a browser tab), everything else is here. Each thread runs worker/thread-serve.ts
// with its own ShardComputer and wasm instance. A task's shards are cut into at most
// one run per thread (split-task.ts); each thread pre-reduces its run along the fixed
// tree, and the calling thread completes the task's maximal nodes from the runs'
// nodes with reduceNode and the same float32 add. The same operands added in the
// same tree order give the same bits on any thread, so the result is
// ShardComputer.computeNodes's on the whole task, bit for bit, whatever N.
//
// Threads pay only for big tasks: each extra run costs the calling thread about
// 0.3 ms on the MNIST MLP (messages, the gradient copied out of the thread and added
// up the tree), so a task is cut into no more runs than hold MIN_RUN_WORK each, and
// one too small for two is computed on the calling thread, by a ShardComputer of its
// own. The threads start with the first task worth cutting: a small model never
// starts them.
//
// Memory is shared, not copied per step: the dataset lives in one SharedArrayBuffer
// every thread reads (copied there once if the loader did not already put it in one);
// each call writes the weights and the shard indices into two more that every thread
// reads; each thread writes its nodes' gradients into its own shared slots, which
// the calling thread adds in place and returns as they are (valid until the next
// call). In steady state a call allocates only small request and reply objects.
//
// A thread that dies (an uncaught error, an exit) is fatal: `onCrash` hears of it
// once, every pending and later call rejects, and the other threads are stopped.

import type { PartialGradient } from '../shared/gradient.js';
import { wireCombine } from '../shared/wire-dtype.js';
import { coverNodes, nodeKey, reduceNode } from '../shared/tree.js';
import {
  ShardComputer,
  type ComputerSetup,
  type GradientComputer,
  type NodeGradient,
  type ShardInput,
} from './compute.js';
import { splitShards } from './split-task.js';
import type { ThreadInit, ThreadReply, ThreadRequest } from './thread-serve.js';

export interface PoolOptions {
  /** Compute threads, ≥ 1. */
  readonly threads: number;
  /** Called once if a thread dies while the pool is open, with a one-line reason. */
  readonly onCrash: (detail: string) => void;
  /**
   * Least work of a run, in samples × parameters (default MIN_RUN_WORK). 0: every task
   * is cut into as many runs as there are threads (and shards), however small.
   */
  readonly minRunWork?: number;
  /** Called once the threads have started (with the first task worth cutting). */
  readonly onStarted?: (threads: number) => void;
}

/** One started compute thread, as the pool drives it. */
export interface ThreadHandle {
  postMessage(request: ThreadRequest): void;
  terminate(): unknown;
}

/** What the transport reports about a thread it started. */
export interface ThreadEvents {
  /** Each message the thread sends. */
  reply(reply: ThreadReply): void;
  /** The thread crashed, exited or sent something unreadable: a one-line reason. */
  die(detail: string): void;
}

/** Starts one compute thread running thread-serve.ts over `init`; it answers 'ready' first. */
export type SpawnThread = (init: ThreadInit, name: string, events: ThreadEvents) => ThreadHandle;

interface Thread {
  readonly handle: ThreadHandle;
  /** (paramCount) each: views of the thread's shared gradient slots. */
  slots: Float32Array[];
  /** Whether the thread holds the current shared indices buffer. */
  hasIndices: boolean;
  /** Settles the request it is working on (at most one: calls run one at a time). */
  pending: { resolve: (reply: ThreadReply) => void; reject: (err: Error) => void } | null;
}

/** Shared index buffers start at this many indices and double when a task needs more. */
const MIN_INDICES = 4096;

/**
 * Least work worth a run of its own, in samples × parameters (compute grows with both):
 * 64 samples of the 101,770-parameter MNIST MLP, about 0.7 ms of compute, against the
 * ~0.3 ms a run costs. Smaller runs would make the task slower than one thread.
 */
export const MIN_RUN_WORK = 64 * 101_770;

export class PooledComputer implements GradientComputer {
  readonly paramCount: number;
  /** Compute threads the pool runs once started. */
  readonly threads: number;
  readonly #setup: ComputerSetup;
  readonly #options: PoolOptions;
  readonly #spawnThread: SpawnThread;
  readonly #minRunWork: number;
  /** The threads, once the first task worth cutting has started them. */
  #threads: Thread[] | null = null;
  #started: Promise<Thread[]> | null = null;
  /** (paramCount): the weights of the current call, read by every thread. */
  readonly #weights: Float32Array<SharedArrayBuffer>;
  /** The current call's sample indices, shard after shard, read by every thread. */
  #indices = new Uint32Array(new SharedArrayBuffer(MIN_INDICES * 4));
  #calls = 0;
  /** Calls run one after another: results live in the shared slots until the next call. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #crash: Error | null = null;
  /** The reduction tree's combine for the run's wire dtype. */
  readonly #combine: (left: PartialGradient, right: PartialGradient) => PartialGradient;
  /** Computes the tasks too small to cut, on the calling thread. */
  readonly #local: ShardComputer;

  constructor(setup: ComputerSetup, options: PoolOptions, spawnThread: SpawnThread) {
    if (!(Number.isInteger(options.threads) && options.threads >= 1))
      throw new RangeError(`threads must be an integer ≥ 1, got ${options.threads}`);
    const min = options.minRunWork ?? MIN_RUN_WORK;
    if (!(Number.isFinite(min) && min >= 0)) throw new RangeError(`minRunWork must be ≥ 0, got ${min}`);
    this.#local = new ShardComputer(setup.spec, setup.dataset, setup.shardSize, setup.kernels, setup.wireDtype);
    this.paramCount = this.#local.paramCount;
    this.threads = options.threads;
    this.#setup = setup;
    this.#options = options;
    this.#spawnThread = spawnThread;
    this.#minRunWork = min;
    this.#weights = new Float32Array(new SharedArrayBuffer(this.paramCount * 4));
    this.#combine = wireCombine(setup.wireDtype);
  }

  /** Whether a thread has died: every call fails from then on. */
  get crashed(): boolean {
    return this.#crash !== null;
  }

  computeNodes(
    params: Float32Array,
    shards: readonly ShardInput[],
    numShards: number,
    step = 0,
  ): Promise<NodeGradient[]> {
    const call = this.#queue.then(() => this.#compute(params, shards, numShards, step));
    this.#queue = call.catch(() => undefined);
    return call;
  }

  /** Stops the threads; pending calls reject. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#rejectPending(new Error('compute threads closed'));
    await Promise.all((this.#threads ?? []).map((t) => t.handle.terminate()));
  }

  /** The threads, started on first use; resolves once each has built its ShardComputer. */
  #start(): Promise<Thread[]> {
    this.#started ??= (async () => {
      const { features, labels, ...meta } = this.#setup.dataset;
      const { spec, shardSize, kernels, wireDtype } = this.#setup;
      const init: ThreadInit = {
        spec,
        shardSize,
        kernels,
        wireDtype,
        dataset: meta,
        data: sharedDataOf(features, labels),
        weights: this.#weights.buffer,
      };
      const threads = Array.from({ length: this.threads }, (_, i) =>
        this.#spawn(init, `compute thread ${i + 1} of ${this.threads}`),
      );
      this.#threads = threads;
      await Promise.all(threads.map((t) => this.#ask(t, null)));
      this.#options.onStarted?.(threads.length);
      return threads;
    })();
    return this.#started;
  }

  #spawn(init: ThreadInit, name: string): Thread {
    // Transports report asynchronously (as worker events are), so `thread` exists by then.
    const events: ThreadEvents = {
      reply: (reply) => {
        const pending = thread.pending;
        thread.pending = null;
        if (pending === null) return this.#die(`${name} sent an unexpected ${reply.type} message`);
        if (reply.type === 'failed') pending.reject(new Error(reply.message));
        else pending.resolve(reply);
      },
      die: (detail) => this.#die(`${name} ${detail}`),
    };
    const thread: Thread = {
      handle: this.#spawnThread(init, name, events),
      slots: [],
      hasIndices: false,
      pending: null,
    };
    return thread;
  }

  async #compute(
    params: Float32Array,
    shards: readonly ShardInput[],
    numShards: number,
    step: number,
  ): Promise<NodeGradient[]> {
    if (this.#crash !== null) throw this.#crash;
    if (this.#closed) throw new Error('compute threads closed');
    if (params.length !== this.paramCount)
      throw new RangeError(`weights of ${params.length} values, the model has ${this.paramCount}`);
    const samples = shards.reduce((n, s) => n + s.indices.length, 0);
    const parts =
      this.#minRunWork === 0
        ? this.threads
        : Math.min(this.threads, Math.floor((samples * this.paramCount) / this.#minRunWork));
    if (parts <= 1 && this.#minRunWork > 0) return this.#local.computeNodes(params, shards, numShards, step);
    const threads = await this.#start();
    const runs = splitShards(shards, parts);
    const needed = runs.reduce((n, run) => run.reduce((m, s) => m + s.indices.length, n), 0);
    if (needed > this.#indices.length) {
      let size = this.#indices.length;
      while (size < needed) size *= 2;
      this.#indices = new Uint32Array(new SharedArrayBuffer(size * 4));
      for (const t of threads) t.hasIndices = false;
    }
    this.#weights.set(params);
    const call = ++this.#calls;
    let at = 0;
    const replies = runs.map((run, r) => {
      const thread = threads[r];
      const list: number[] = [];
      for (const s of run) {
        this.#indices.set(s.indices, at);
        list.push(s.id, at, s.indices.length);
        at += s.indices.length;
      }
      const request: ThreadRequest = thread.hasIndices
        ? { call, numShards, step, shards: list }
        : { call, numShards, step, shards: list, indices: this.#indices.buffer };
      thread.hasIndices = true;
      return this.#ask(thread, request);
    });
    // Every thread must be idle again before this call settles, even when one failed.
    const settled = await Promise.allSettled(replies);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const got = new Map<string, PartialGradient>();
    settled.forEach((s, r) => {
      const reply = (s as PromiseFulfilledResult<ThreadReply>).value;
      if (reply.type !== 'done') throw new Error(`compute thread ${r + 1} answered ${reply.type} to a request`);
      const thread = threads[r];
      if (reply.slots !== undefined) {
        const buffer = reply.slots;
        thread.slots = Array.from(
          { length: buffer.byteLength / (4 * this.paramCount) },
          (_, k) => new Float32Array(buffer, k * 4 * this.paramCount, this.paramCount),
        );
      }
      reply.nodes.forEach((n, k) =>
        got.set(nodeKey(n.node), { grad: thread.slots[k], lossSum: n.lossSum, count: n.count, correct: n.correct }),
      );
    });
    const ids = runs.flatMap((run) => run.map((s) => s.id));
    // The task's maximal nodes, completed from the runs' nodes in tree order (the combine
    // adds into the left operand's slot, as ShardComputer adds into its left buffer, and
    // rounds as it does for the wire dtype).
    return coverNodes(ids, numShards).map((node) => ({
      node,
      partial: reduceNode(node, numShards, (n) => got.get(nodeKey(n)), this.#combine),
    }));
  }

  /** Sends a request (null: none, just await the thread's 'ready') and resolves with the reply. */
  #ask(thread: Thread, request: ThreadRequest | null): Promise<ThreadReply> {
    if (this.#crash !== null) return Promise.reject(this.#crash);
    return new Promise<ThreadReply>((resolve, reject) => {
      thread.pending = { resolve, reject };
      if (request !== null) thread.handle.postMessage(request);
    });
  }

  #die(detail: string): void {
    if (this.#closed || this.#crash !== null) return;
    this.#crash = new Error(detail);
    this.#options.onCrash(detail);
    this.#rejectPending(this.#crash);
    for (const t of this.#threads ?? []) void t.handle.terminate();
  }

  #rejectPending(err: Error): void {
    for (const t of this.#threads ?? []) {
      t.pending?.reject(err);
      t.pending = null;
    }
  }
}

/**
 * Features then labels in one SharedArrayBuffer: the dataset's own buffer when it is
 * laid out so already (the Node worker's loader downloads into one, and so does the
 * browser's store in an isolated tab), else a copy.
 */
function sharedDataOf(features: Float32Array, labels: Float32Array): SharedArrayBuffer {
  const buffer = features.buffer;
  const total = features.byteLength + labels.byteLength;
  if (
    buffer instanceof SharedArrayBuffer &&
    features.byteOffset === 0 &&
    labels.buffer === buffer &&
    labels.byteOffset === features.byteLength &&
    buffer.byteLength === total
  ) {
    return buffer;
  }
  const data = new SharedArrayBuffer(total);
  new Float32Array(data, 0, features.length).set(features);
  new Float32Array(data, features.byteLength, labels.length).set(labels);
  return data;
}
