// The executor of `flocktrain train`: computes every shard of a step in this process
// with the same ShardComputer workers use, and reduces along the same tree. It is the
// reference that distributed training must equal bit for bit. With --threads N > 1 it
// runs the worker's thread pool (worker/node/threaded-compute.ts): same bits, more cores.

import type { PartialGradient } from '../shared/gradient.js';
import { rootNode } from '../shared/tree.js';
import { roundToWire, type WireDtype } from '../shared/wire-dtype.js';
import { ComputeError } from '../shared/errors.js';
import { ShardComputer, type GradientComputer } from '../worker/compute.js';
import { ThreadedComputer } from '../worker/node/threaded-compute.js';
import type { PreparedRun } from './setup.js';
import type { StepPlan } from './plan.js';
import type { StepExecutor } from './trainer.js';

/** run() lets the event loop turn at most this often (a turn costs microseconds, an MLP step ~0.2 ms). */
const YIELD_EVERY_MS = 20;

export interface LocalExecutorOptions {
  /** Compute threads; 1 computes on this thread, without a pool. */
  readonly threads: number;
  /** Told once the pool's threads have started (with the first step worth cutting). */
  readonly onThreadsStarted?: (threads: number) => void;
}

export class LocalExecutor implements StepExecutor {
  readonly workerCount = 1;
  readonly #computer: GradientComputer & { close?(): Promise<void> };
  #crash: string | null = null;
  #weights: Float32Array | null = null;
  #version = -1;
  /** performance.now() when run() last let the event loop turn. */
  #lastYield = 0;

  readonly #wireDtype: WireDtype;
  /** The weights rounded to the wire dtype, as workers would receive them (bf16 only). */
  readonly #rounded: Float32Array | null;

  constructor(run: PreparedRun, options: LocalExecutorOptions = { threads: 1 }) {
    const { spec, dataset, datasetHash, config } = run;
    this.#wireDtype = config.wireDtype;
    this.#computer =
      options.threads > 1
        ? new ThreadedComputer(
            {
              spec,
              dataset,
              datasetHash,
              shardSize: config.shardSize,
              kernels: config.kernels,
              wireDtype: config.wireDtype,
            },
            {
              threads: options.threads,
              onCrash: (detail) => (this.#crash = detail),
              ...(options.onThreadsStarted ? { onStarted: options.onThreadsStarted } : {}),
            },
          )
        : new ShardComputer(spec, dataset, config.shardSize, config.kernels, this.#wireDtype);
    this.#rounded = this.#wireDtype === 'f32' ? null : new Float32Array(this.#computer.paramCount);
  }

  /** Stops the compute threads, if any. */
  async close(): Promise<void> {
    await this.#computer.close?.();
  }

  publish(version: number, weights: Float32Array): void {
    this.#version = version;
    if (this.#rounded === null) {
      this.#weights = weights;
      return;
    }
    this.#rounded.set(weights);
    roundToWire(this.#rounded, this.#wireDtype);
    this.#weights = this.#rounded;
  }

  async run(plan: StepPlan, version: number): Promise<PartialGradient> {
    if (this.#weights === null || version !== this.#version)
      throw new Error(`local executor has weights version ${this.#version}, step needs ${version}`);
    // Computing on this thread never leaves the microtask queue: let the event loop turn
    // now and then, or a signal (Ctrl-C) would wait for the whole run.
    if (performance.now() - this.#lastYield > YIELD_EVERY_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.#lastYield = performance.now();
    }
    const shards = plan.shards.map((indices, id) => ({ id, indices }));
    let nodes: Awaited<ReturnType<GradientComputer['computeNodes']>>;
    try {
      nodes = await this.#computer.computeNodes(this.#weights, shards, shards.length, plan.globalStep);
    } catch (err) {
      if (this.#crash !== null) throw new ComputeError(this.#crash);
      throw err;
    }
    const root = rootNode(shards.length);
    // Holding every shard, the cover is the root itself.
    if (nodes.length !== 1 || nodes[0].node.lo !== root.lo || nodes[0].node.size !== root.size) {
      throw new Error('local executor: the cover of all shards must be the root');
    }
    return nodes[0].partial;
  }
}
