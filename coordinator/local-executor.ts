// The executor of `flocktrain train`: computes every shard of a step in this process
// with the same ShardComputer workers use, and reduces along the same tree. It is the
// reference that distributed training must equal bit for bit.

import type { PartialGradient } from '../shared/gradient.js';
import { rootNode } from '../shared/tree.js';
import { roundToWire, type WireDtype } from '../shared/wire-dtype.js';
import { ShardComputer } from '../worker/compute.js';
import type { PreparedRun } from './setup.js';
import type { StepPlan } from './plan.js';
import type { StepExecutor } from './trainer.js';

export class LocalExecutor implements StepExecutor {
  readonly workerCount = 1;
  readonly #computer: ShardComputer;
  #weights: Float32Array | null = null;
  #version = -1;

  readonly #wireDtype: WireDtype;
  /** The weights rounded to the wire dtype, as workers would receive them (bf16 only). */
  readonly #rounded: Float32Array | null;

  constructor(run: PreparedRun) {
    this.#wireDtype = run.config.wireDtype;
    this.#computer = new ShardComputer(run.spec, run.dataset, run.config.shardSize, run.config.kernels, this.#wireDtype);
    this.#rounded = this.#wireDtype === 'f32' ? null : new Float32Array(this.#computer.paramCount);
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
    if (this.#weights === null || version !== this.#version) throw new Error(`local executor has weights version ${this.#version}, step needs ${version}`);
    const shards = plan.shards.map((indices, id) => ({ id, indices }));
    const nodes = this.#computer.computeNodes(this.#weights, shards, shards.length);
    const root = rootNode(shards.length);
    // Holding every shard, the cover is the root itself.
    if (nodes.length !== 1 || nodes[0].node.lo !== root.lo || nodes[0].node.size !== root.size) {
      throw new Error('local executor: the cover of all shards must be the root');
    }
    return nodes[0].partial;
  }
}
