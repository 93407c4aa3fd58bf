// The distributed step executor: hands each step's micro-shards to the ready
// workers, collects their per-node gradients, reassigns the shards of workers that
// vanish, and reduces along the fixed tree once every shard is covered.
//
// Assignment: the step's unassigned shards are cut into contiguous runs, one per
// idle worker (all ready workers if none is idle), so a worker usually fills whole
// tree nodes and uploads one gradient per step. Which worker gets what changes only
// speed, never the result: the reduction order is fixed by the tree.

import type { Logger } from 'pino';
import { combineInto, type PartialGradient } from '../shared/gradient.js';
import { encode } from '../shared/protocol/codec.js';
import type { ResultMessage } from '../shared/protocol/messages.js';
import { coverNodes, nodeKey, reduceNode, rootNode, type TreeNode } from '../shared/tree.js';
import type { WorkerConnection } from './hub.js';
import type { StepPlan } from './plan.js';
import { StepCancelled, type StepExecutor } from './trainer.js';

interface Task {
  readonly id: number;
  readonly worker: WorkerConnection;
  readonly version: number;
  readonly shards: readonly number[];
  /** The nodes the result must carry, in order, and the samples under each. */
  readonly nodes: readonly TreeNode[];
  readonly counts: readonly number[];
}

interface ActiveStep {
  readonly plan: StepPlan;
  readonly version: number;
  readonly numShards: number;
  readonly results: Map<string, PartialGradient>;
  readonly tasks: Map<number, Task>;
  /** Shard ids not assigned to any live task, ascending. */
  pending: number[];
  covered: number;
  readonly started: number;
  resolve(result: PartialGradient): void;
  reject(err: Error): void;
}

/** How the scheduler talks to the workers; implemented by the hub. */
export interface WorkerChannel {
  broadcast(bytes: Uint8Array): void;
  reject(worker: WorkerConnection, reason: 'not_assigned' | 'bad_length' | 'malformed', detail: string): void;
}

/** Wire traffic and time spent, for the step log and the benchmark. */
export interface SchedulerStats {
  bytesOut: number;
  bytesIn: number;
  /** ms from a step's dispatch until its last result arrived. */
  waitMs: number;
  /** ms spent reducing node gradients. */
  reduceMs: number;
  steps: number;
  reassignedShards: number;
}

export class Scheduler implements StepExecutor {
  readonly stats: SchedulerStats = { bytesOut: 0, bytesIn: 0, waitMs: 0, reduceMs: 0, steps: 0, reassignedShards: 0 };
  readonly #log: Logger;
  readonly #paramCount: number;
  readonly #minWorkers: number;
  readonly #ready: WorkerConnection[] = [];
  #channel: WorkerChannel | null = null;
  #active: ActiveStep | null = null;
  #nextTaskId = 1;
  #started = false;
  #waitingLogged = false;
  #startWaiters: (() => void)[] = [];
  #cancelWhenStarved: string | null = null;
  #cancelled: string | null = null;
  #weightsBytes: Uint8Array | null = null;
  #weights: Float32Array | null = null;
  #version = -1;

  constructor(log: Logger, paramCount: number, minWorkers: number) {
    this.#log = log;
    this.#paramCount = paramCount;
    this.#minWorkers = minWorkers;
  }

  attach(channel: WorkerChannel): void {
    this.#channel = channel;
  }

  get workerCount(): number {
    return this.#ready.length;
  }

  get version(): number {
    return this.#version;
  }

  /** The current weights (a copy owned by the scheduler) and their encoding. */
  currentWeights(): { version: number; weights: Float32Array; bytes: Uint8Array } {
    if (this.#weights === null || this.#weightsBytes === null) throw new Error('no weights published yet');
    return { version: this.#version, weights: this.#weights, bytes: this.#weightsBytes };
  }

  publish(version: number, weights: Float32Array): void {
    this.#version = version;
    this.#weights = weights.slice();
    // Encoded once for all workers.
    this.#weightsBytes = encode({ type: 'weights', version, weights: this.#weights });
    if (this.#channel !== null && this.#ready.length > 0) {
      this.#channel.broadcast(this.#weightsBytes);
      this.stats.bytesOut += this.#weightsBytes.byteLength * this.#ready.length;
    }
  }

  async run(plan: StepPlan, version: number): Promise<PartialGradient> {
    if (version !== this.#version) throw new Error(`step at version ${version} but version ${this.#version} is published`);
    if (!this.#started) {
      if (this.#ready.length < this.#minWorkers) {
        this.#log.info({ workers: this.#ready.length, minWorkers: this.#minWorkers }, 'waiting for workers');
        await new Promise<void>((resolve) => this.#startWaiters.push(resolve));
      }
      this.#started = true;
    }
    if (this.#cancelled !== null) throw new StepCancelled(this.#cancelled);
    return new Promise<PartialGradient>((resolve, reject) => {
      this.#active = {
        plan,
        version,
        numShards: plan.shards.length,
        results: new Map(),
        tasks: new Map(),
        pending: plan.shards.map((_, i) => i),
        covered: 0,
        started: performance.now(),
        resolve,
        reject,
      };
      this.#dispatch();
    });
  }

  /** Abandons the step in progress (and any wait for workers); later steps are refused. */
  cancel(reason: string): void {
    this.#cancelled = reason;
    for (const wake of this.#startWaiters.splice(0)) wake();
    const active = this.#active;
    if (active === null) return;
    this.#active = null;
    active.reject(new StepCancelled(reason));
  }

  /** Cancels now if no worker is there to finish the step, or later the moment that happens. */
  cancelWhenStarved(reason: string): void {
    this.#cancelWhenStarved = reason;
    if (this.#ready.length === 0) this.cancel(reason);
  }

  onReady(worker: WorkerConnection): void {
    this.#ready.push(worker);
    this.#waitingLogged = false;
    this.#log.info({ workerId: worker.id, workers: this.#ready.length, kind: worker.kind, agent: worker.agent, remote: worker.remote }, 'worker joined');
    if (!this.#started && this.#ready.length >= this.#minWorkers) for (const wake of this.#startWaiters.splice(0)) wake();
    this.#dispatch();
  }

  onGone(worker: WorkerConnection, why: string): void {
    const index = this.#ready.indexOf(worker);
    if (index >= 0) this.#ready.splice(index, 1);
    const active = this.#active;
    const orphaned: number[] = [];
    if (active !== null) {
      for (const task of [...active.tasks.values()]) {
        if (task.worker !== worker) continue;
        active.tasks.delete(task.id);
        orphaned.push(...task.shards);
      }
    }
    this.#log.info({ workerId: worker.id, workers: this.#ready.length, reason: why, tasksDone: worker.tasksDone }, 'worker left');
    if (active !== null && orphaned.length > 0) {
      active.pending = [...active.pending, ...orphaned].sort((a, b) => a - b);
      this.stats.reassignedShards += orphaned.length;
      this.#log.info({ workerId: worker.id, epoch: active.plan.epoch + 1, shards: orphaned }, 'reassigning shards');
      this.#dispatch();
    }
  }

  onResult(worker: WorkerConnection, result: ResultMessage): void {
    const channel = this.#channel!;
    const active = this.#active;
    const task = active?.tasks.get(result.taskId);
    if (active === null || task === undefined) {
      // A task of a finished step (a duplicate) or one taken back: harmless, dropped.
      if (result.taskId < this.#nextTaskId && result.version <= this.#version) {
        worker.log.debug({ taskId: result.taskId, version: result.version }, 'stale result dropped');
        return;
      }
      channel.reject(worker, 'not_assigned', `result for task ${result.taskId}, which was never assigned`);
      return;
    }
    if (task.worker !== worker) return channel.reject(worker, 'not_assigned', `task ${task.id} belongs to ${task.worker.id}`);
    if (result.version !== task.version) return channel.reject(worker, 'not_assigned', `task ${task.id} is at version ${task.version}, result says ${result.version}`);
    const mismatch = checkNodes(task, result);
    if (mismatch !== null) return channel.reject(worker, 'not_assigned', mismatch);
    this.stats.bytesIn += result.grads.byteLength;
    const P = this.#paramCount;
    result.nodes.forEach((n, k) => {
      // A view, no copy: the decoded message's buffer is ours alone from here on.
      const grad = result.grads.subarray(k * P, (k + 1) * P);
      active.results.set(nodeKey(n), { grad, lossSum: n.lossSum, count: n.count, correct: n.correct });
    });
    active.tasks.delete(task.id);
    active.covered += task.shards.length;
    worker.tasksDone++;
    worker.samplesDone += task.counts.reduce((a, b) => a + b, 0);
    worker.computeMs += result.computeMs;
    if (active.covered === active.numShards) this.#finish(active);
    else if (active.pending.length > 0) this.#dispatch();
  }

  #finish(active: ActiveStep): void {
    const t0 = performance.now();
    this.stats.waitMs += t0 - active.started;
    const total = reduceNode(rootNode(active.numShards), active.numShards, (n) => active.results.get(nodeKey(n)), combineInto);
    this.stats.reduceMs += performance.now() - t0;
    this.stats.steps++;
    this.#active = null;
    active.resolve(total);
  }

  #dispatch(): void {
    const active = this.#active;
    if (active === null || active.pending.length === 0) return;
    if (this.#ready.length === 0) {
      if (this.#cancelWhenStarved !== null) return this.cancel(this.#cancelWhenStarved);
      if (!this.#waitingLogged) this.#log.warn({ pendingShards: active.pending.length }, 'no workers: waiting for one to join');
      this.#waitingLogged = true;
      return;
    }
    const busy = new Set([...active.tasks.values()].map((t) => t.worker));
    const idle = this.#ready.filter((w) => !busy.has(w));
    const targets = idle.length > 0 ? idle : this.#ready;
    const pending = active.pending;
    active.pending = [];
    const chunks = Math.min(targets.length, pending.length);
    let start = 0;
    for (let k = 0; k < chunks; k++) {
      const end = start + Math.floor(pending.length / chunks) + (k < pending.length % chunks ? 1 : 0);
      this.#assign(active, targets[k], pending.slice(start, end));
      start = end;
    }
  }

  #assign(active: ActiveStep, worker: WorkerConnection, shards: number[]): void {
    const nodes = coverNodes(shards, active.numShards);
    const counts = nodes.map((n) => {
      let c = 0;
      for (let i = n.lo; i < Math.min(n.lo + n.size, active.numShards); i++) c += active.plan.shards[i].length;
      return c;
    });
    const task: Task = { id: this.#nextTaskId++, worker, version: active.version, shards, nodes, counts };
    active.tasks.set(task.id, task);
    const bytes = encode({
      type: 'task',
      taskId: task.id,
      version: active.version,
      numShards: active.numShards,
      shards: shards.map((id) => ({ id, indices: active.plan.shards[id] })),
    });
    this.stats.bytesOut += bytes.byteLength;
    worker.send(bytes);
  }
}

/** Null when the result carries exactly the task's nodes and sample counts, else what differs. */
function checkNodes(task: Task, result: ResultMessage): string | null {
  if (result.nodes.length !== task.nodes.length) return `task ${task.id} expects ${task.nodes.length} nodes, result has ${result.nodes.length}`;
  for (let k = 0; k < task.nodes.length; k++) {
    const want = task.nodes[k];
    const got = result.nodes[k];
    if (got.lo !== want.lo || got.size !== want.size) return `task ${task.id} node ${k} should be ${nodeKey(want)}, got ${got.lo}/${got.size}`;
    if (got.count !== task.counts[k]) return `task ${task.id} node ${k} should count ${task.counts[k]} samples, got ${got.count}`;
    if (got.correct > got.count) return `task ${task.id} node ${k} claims ${got.correct} correct of ${got.count}`;
  }
  return null;
}
