// A relay's GradientComputer: what its upstream connection (a WorkerClient) computes
// with. A task's shards go to the relay's own workers as one partial step, and come
// back as the maximal tree nodes those shards fill (coverNodes), each reduced from its
// workers' node gradients along the fixed tree with the run's combine: the very bits
// the coordinator would get reducing the same nodes itself, so the contract holds
// across levels. The upstream client sends, digests and checks whatever this returns.
//
// What is computed here, on the relay's own thread, with the run's kernels:
// - a task while no worker of the relay is ready (a relay without workers is one
//   plain worker, so the coordinator's block is never stuck waiting for a join);
// - a `check` at an older weights version than the relay's workers hold (an upstream
//   audit of another worker's task): the workers skip work at older versions;
// - a partial step whose recomputation proves it diverged, so that its non-finite
//   gradient is reported upstream as a worker's would be;
// - a partial step whose every worker left before it was covered (it is abandoned:
//   waiting for a join would hold the coordinator's step until its deadline).
//
// Every audit of the relay's own workers is settled before a partial step is answered
// upstream (Scheduler.settle): the relay cannot undo a step once its coordinator applied
// it, so a forgery it finds later must never reach upstream. A forgery found while
// settling bans the forger (close 4010), reports it upstream (banReport), and the same
// partial step runs again without it.

import type { Logger } from 'pino';
import { DivergedError, StepCancelled } from '../../shared/errors.js';
import type { BanReportMessage } from '../../shared/protocol/messages.js';
import type { GradientComputer, NodeGradient, ShardInput } from '../../worker/compute.js';
import type { Events } from '../events.js';
import type { StepPlan } from '../plan.js';
import { RollbackRequired } from '../rollback.js';
import type { Scheduler } from '../scheduler.js';

const NO_SAMPLES = new Uint32Array(0);

/** Where a relay's partial steps and its own computations go. */
export interface RelayFleet {
  readonly scheduler: Scheduler;
  /** Computes on the relay's thread with the run's kernels. */
  readonly local: GradientComputer;
  /** The scheduler's events: the relay watches for its last worker leaving. */
  readonly events: Events;
}

/** Partial steps answered by the relay's workers, and computations done on its own thread. */
export interface RelayTally {
  fleetSteps: number;
  localSteps: number;
  /** Partial steps run again because settling their audits found a forger. */
  reruns: number;
  /** Partial steps computed here after every worker of the relay left. */
  abandoned: number;
}

export class RelayComputer implements GradientComputer {
  readonly paramCount: number;
  readonly tally: RelayTally = { fleetSteps: 0, localSteps: 0, reruns: 0, abandoned: 0 };
  readonly #fleet: RelayFleet;
  readonly #log: Logger;
  #report: ((message: BanReportMessage) => void) | null = null;
  /** Calls run one after another: a reconnected upstream may ask before the last partial step is done. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(fleet: RelayFleet, paramCount: number, log: Logger) {
    this.#fleet = fleet;
    this.paramCount = paramCount;
    this.#log = log;
    fleet.events.on('noWorkers', () => fleet.scheduler.abandon('every worker of the relay left'));
  }

  /** Where ban reports go from now on: the current upstream connection. */
  reportTo(report: ((message: BanReportMessage) => void) | undefined): void {
    this.#report = report ?? null;
  }

  /** Tells the coordinator this relay banned one of its workers (when connected). */
  reportBan(ban: Omit<BanReportMessage, 'type'>): void {
    this.#report?.({ type: 'banReport', ...ban });
  }

  computeNodes(
    params: Float32Array,
    shards: readonly ShardInput[],
    numShards: number,
    step = 0,
    version?: number,
  ): Promise<NodeGradient[]> {
    const run = this.#queue.then(() => this.#compute(params, shards, numShards, step, version));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #compute(
    params: Float32Array,
    shards: readonly ShardInput[],
    numShards: number,
    step: number,
    version: number | undefined,
  ): Promise<NodeGradient[]> {
    const { scheduler } = this.#fleet;
    if (version === undefined || version < scheduler.version || scheduler.workerCount === 0)
      return this.#computeHere(params, shards, numShards, step);
    if (version > scheduler.version) scheduler.publish(version, params);
    const plan = partialPlan(shards, numShards, step);
    const scope = shards.map((s) => s.id);
    for (;;) {
      try {
        const nodes = await scheduler.runScope(plan, version, scope);
        const undoFrom = scheduler.settle();
        if (undoFrom === null) {
          this.tally.fleetSteps++;
          return nodes;
        }
        // A worker of this partial step forged (it is banned by now): the step again without it.
        scheduler.rolledBack(undoFrom);
        this.tally.reruns++;
      } catch (err) {
        if (err instanceof RollbackRequired) {
          scheduler.rolledBack(err.version);
          this.tally.reruns++;
          continue;
        }
        // Proved non-finite by the relay's own recomputation: the same numbers go upstream, which judges them.
        if (err instanceof DivergedError) return this.#computeHere(params, shards, numShards, step);
        if (err instanceof StepCancelled) {
          this.tally.abandoned++;
          this.#log.warn({ step, version, shards: scope.length }, 'every worker left: computing the partial step here');
          return this.#computeHere(params, shards, numShards, step);
        }
        throw err;
      }
      this.#log.warn({ step, version, shards: scope.length }, 'partial step runs again without a banned worker');
    }
  }

  async #computeHere(
    params: Float32Array,
    shards: readonly ShardInput[],
    numShards: number,
    step: number,
  ): Promise<NodeGradient[]> {
    this.tally.localSteps++;
    return this.#fleet.local.computeNodes(params, shards, numShards, step);
  }
}

/**
 * A step of `numShards` shards of which only `shards` hold samples: what a relay
 * knows of its coordinator's step. The epoch is unknown here (0); the step's global
 * index, which seeds dropout, is the task's.
 */
export function partialPlan(shards: readonly ShardInput[], numShards: number, step: number): StepPlan {
  const all: Uint32Array[] = new Array<Uint32Array>(numShards).fill(NO_SAMPLES);
  let count = 0;
  for (const s of shards) {
    all[s.id] = s.indices;
    count += s.indices.length;
  }
  return { epoch: 0, step, globalStep: step, shards: all, count };
}
