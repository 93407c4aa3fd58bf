// The distributed step executor: hands each step's micro-shards to the ready
// workers, collects their per-node gradients, gives the shards of workers that
// vanish or miss their deadline to others, and reduces along the fixed tree once
// every shard is covered.
//
// Assignment: the step's open shards (neither covered by a result nor held by a
// task still within its deadline) are cut into contiguous runs, one per idle worker
// (every ready worker if none is idle), sized in proportion to each worker's
// measured throughput, so a worker ten times slower gets a tenth of the work and
// does not set the pace. A task that outlives its deadline (derived from its
// worker's speed, between a floor and a ceiling) has its shards handed out again:
// that is both straggler mitigation (speculative re-execution) and recovery from
// results that never come. The first valid result for a shard wins; later ones are
// dropped. Which worker computes what changes only speed, never the result: the
// reduction order is fixed by the tree.

import type { Logger } from 'pino';
import type { PartialGradient } from '../shared/gradient.js';
import { roundToWire, wireBytesPer, wireCombine, type WireDtype } from '../shared/wire-dtype.js';
import { encode } from '../shared/protocol/codec.js';
import { MessagePool, type PooledMessage } from '../shared/protocol/message-pool.js';
import type { ResultMessage } from '../shared/protocol/messages.js';
import { coverNodes, nodeKey, reduceNode, rootNode, type TreeNode } from '../shared/tree.js';
import type { WorkerConnection } from './hub.js';
import type { StepPlan } from './plan.js';
import { DivergedError, StepCancelled, type StepExecutor } from './trainer.js';

interface Task {
  readonly id: number;
  readonly worker: WorkerConnection;
  readonly version: number;
  readonly shards: readonly number[];
  /** The nodes the result must carry, in order, and the samples under each. */
  readonly nodes: readonly TreeNode[];
  readonly counts: readonly number[];
  readonly samples: number;
  readonly sentAt: number;
  readonly timer: NodeJS.Timeout;
  /** Past its deadline: its shards are open again, but its result still counts if first. */
  expired: boolean;
}

interface ActiveStep {
  readonly plan: StepPlan;
  readonly version: number;
  readonly numShards: number;
  readonly results: Map<string, PartialGradient>;
  /** Tasks sent and not yet answered. */
  readonly tasks: Map<number, Task>;
  readonly covered: boolean[];
  coveredCount: number;
  readonly started: number;
  resolve(result: PartialGradient): void;
  reject(err: Error): void;
}

/** How the scheduler talks to the workers beyond sending them messages; implemented by the hub. */
export interface WorkerChannel {
  reject(
    worker: WorkerConnection,
    reason: 'not_assigned' | 'bad_length' | 'malformed' | 'non_finite',
    detail: string,
  ): void;
}

export interface SchedulerOptions {
  /** Workers to wait for before the first step. */
  readonly minWorkers: number;
  /** Bounds of a task's deadline, in ms; in between it is derived from the worker's measured speed. */
  readonly taskTimeoutMinMs: number;
  readonly taskTimeoutMaxMs: number;
  /** The run's wire dtype: how weights go out and gradients come in, and how nodes combine. */
  readonly wireDtype: WireDtype;
  /**
   * Recomputes shards at the given weights and says whether their gradient is
   * non-finite here too, to judge a worker's `diverged` result: true means training
   * diverged (the step fails with DivergedError), false that the worker is broken
   * (it is rejected). Without it every such claim is rejected.
   */
  readonly confirmDivergence?: (
    shards: readonly { id: number; indices: Uint32Array }[],
    numShards: number,
    weights: Float32Array,
    step: number,
  ) => boolean;
}

export const SCHEDULER_DEFAULTS: SchedulerOptions = {
  minWorkers: 1,
  taskTimeoutMinMs: 2_000,
  taskTimeoutMaxMs: 60_000,
  wireDtype: 'f32',
};

/** A deadline is this many times the expected duration, plus a fixed allowance for the wire. */
const DEADLINE_FACTOR = 4;
const DEADLINE_SLACK_MS = 250;
/** Per starved dispatch, how much a worker's speed estimate is raised (see #optimisticSpeed). */
const STARVED_BOOST = 1.25;
/** Weight of the newest measurement in a worker's throughput average. */
const EWMA_ALPHA = 0.3;

/** Wire traffic and time spent, for the step log and the benchmark. */
export interface SchedulerStats {
  /** Message bytes sent and received (WebSocket and TCP headers not included). */
  bytesOut: number;
  bytesIn: number;
  /** Of those, the tensors themselves (weights and gradients); the rest is framing. */
  tensorBytes: number;
  /** ms from a step's dispatch until its last result arrived. */
  waitMs: number;
  /** ms spent reducing node gradients. */
  reduceMs: number;
  steps: number;
  /** Shards handed out again after their worker left. */
  reassignedShards: number;
  /** Shards handed out again after their task missed its deadline. */
  timedOutShards: number;
  /** Results dropped because another worker covered their shards first. */
  duplicateResults: number;
  /** performance.now() at which a departed worker's shards were last sent to others, or null. */
  lastReassignAt: number | null;
}

export class Scheduler implements StepExecutor {
  readonly stats: SchedulerStats = {
    bytesOut: 0,
    bytesIn: 0,
    tensorBytes: 0,
    waitMs: 0,
    reduceMs: 0,
    steps: 0,
    reassignedShards: 0,
    timedOutShards: 0,
    duplicateResults: 0,
    lastReassignAt: null,
  };
  readonly #log: Logger;
  readonly #paramCount: number;
  readonly #options: SchedulerOptions;
  readonly #ready: WorkerConnection[] = [];
  /** Measured samples per ms of each worker (wall time from task sent to result received). */
  readonly #speed = new Map<WorkerConnection, number>();
  /** The weights version each worker was last sent: weights go only to workers given work. */
  readonly #sentVersion = new Map<WorkerConnection, number>();
  /** Steps in a row each worker got no shards, to give starved workers a fresh chance. */
  readonly #starved = new Map<WorkerConnection, number>();
  #channel: WorkerChannel | null = null;
  #active: ActiveStep | null = null;
  #nextTaskId = 1;
  #started = false;
  #waitingLogged = false;
  #startWaiters: (() => void)[] = [];
  #cancelWhenStarved: string | null = null;
  #cancelled: string | null = null;
  /** Shards orphaned by a departure wait to be sent to others (for lastReassignAt). */
  #orphaned = false;
  /** The current weights message, encoded once for every worker, in a reused buffer. */
  #weightsMessage: PooledMessage | null = null;
  /** The weights workers compute with: a view into that message (f32), or a rounded copy (bf16). */
  #weights: Float32Array | null = null;
  readonly #combine: (left: PartialGradient, right: PartialGradient) => PartialGradient;
  readonly #pool = new MessagePool();
  /** bf16 results are widened into these (tensorBuffer). */
  readonly #lentTensors: Float32Array[] = [];
  readonly #spareTensors: Float32Array[] = [];
  #version = -1;

  constructor(log: Logger, paramCount: number, options: Partial<SchedulerOptions> | number = {}) {
    this.#log = log;
    this.#paramCount = paramCount;
    const o = typeof options === 'number' ? { minWorkers: options } : options;
    this.#options = { ...SCHEDULER_DEFAULTS, ...o };
    this.#combine = wireCombine(this.#options.wireDtype);
    if (!(this.#options.taskTimeoutMinMs > 0 && this.#options.taskTimeoutMinMs <= this.#options.taskTimeoutMaxMs)) {
      throw new RangeError(
        `task timeouts must satisfy 0 < min ≤ max, got ${this.#options.taskTimeoutMinMs} and ${this.#options.taskTimeoutMaxMs}`,
      );
    }
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

  wireBytes(): number {
    return this.stats.bytesIn + this.stats.bytesOut;
  }

  /** Samples/s of each ready worker measured so far (workers not yet measured are left out). */
  workerThroughput(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const w of this.#ready) {
      const s = this.#speed.get(w);
      if (s !== undefined) out[w.id] = Math.round(s * 1000);
    }
    return out;
  }

  /**
   * The current weights (a buffer owned by the scheduler: copy it to keep it past the
   * next publish) and their encoding, to send with sendWeights.
   */
  currentWeights(): { version: number; weights: Float32Array; bytes: Uint8Array } {
    if (this.#weights === null || this.#weightsMessage === null) throw new Error('no weights published yet');
    return { version: this.#version, weights: this.#weights, bytes: this.#weightsMessage.bytes };
  }

  /** Sends the current weights to a worker; their buffer is not reused until the OS has the bytes. */
  sendWeights(worker: WorkerConnection): void {
    const message = this.#weightsMessage;
    if (message === null) throw new Error('no weights published yet');
    message.retain();
    this.#sentVersion.set(worker, this.#version);
    this.stats.bytesOut += message.bytes.byteLength;
    this.stats.tensorBytes += this.#weights!.length * wireBytesPer(this.#options.wireDtype);
    worker.send(message.bytes, () => message.release());
  }

  /**
   * Makes `weights` the current version. Encoded once for all workers, and sent
   * lazily: a worker receives it just before its first task at this version, so an
   * idle worker (or a slow link) is not flooded with weights it has no use for.
   */
  publish(version: number, weights: Float32Array): void {
    this.#weightsMessage?.release();
    const dtype = this.#options.wireDtype;
    const message = this.#pool.encode({ type: 'weights', version, dtype, weights });
    this.#version = version;
    this.#weightsMessage = message;
    if (dtype === 'f32') {
      // The tensor is the message's tail (codec.ts), 4-byte aligned.
      this.#weights = new Float32Array(
        message.bytes.buffer,
        message.bytes.byteOffset + message.bytes.byteLength - weights.byteLength,
        weights.length,
      );
    } else {
      // Rounded as the encoding rounded them (the welcome re-encodes these, unchanged).
      if (this.#weights === null || this.#weights.length !== weights.length)
        this.#weights = new Float32Array(weights.length);
      this.#weights.set(weights);
      roundToWire(this.#weights, dtype);
    }
  }

  /**
   * A buffer to widen a bf16 result into. Buffers lent during one step are reused from
   * the start of the next: by then the step's reduced sum (one of them) has been
   * consumed by the trainer, and nothing else keeps results of a finished step.
   */
  tensorBuffer(length: number): Float32Array {
    const k = this.#spareTensors.findIndex((b) => b.length === length);
    const buffer = k >= 0 ? this.#spareTensors.splice(k, 1)[0] : new Float32Array(length);
    this.#lentTensors.push(buffer);
    return buffer;
  }

  async run(plan: StepPlan, version: number): Promise<PartialGradient> {
    if (version !== this.#version)
      throw new Error(`step at version ${version} but version ${this.#version} is published`);
    this.#spareTensors.push(...this.#lentTensors.splice(0));
    if (!this.#started) {
      if (this.#ready.length < this.#options.minWorkers && this.#cancelled === null) {
        this.#log.info({ workers: this.#ready.length, minWorkers: this.#options.minWorkers }, 'waiting for workers');
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
        covered: plan.shards.map(() => false),
        coveredCount: 0,
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
    this.#endStep(active);
    active.reject(new StepCancelled(reason));
  }

  /** Cancels now if no worker is there to finish the step, or later the moment that happens. */
  cancelWhenStarved(reason: string): void {
    this.#cancelWhenStarved = reason;
    if (this.#ready.length === 0) this.cancel(reason);
  }

  /**
   * A worker that finished its handshake. It gets the current weights at once (its
   * welcome's may be stale after the time it took to load the data), tasks when
   * there is work.
   */
  onReady(worker: WorkerConnection): void {
    this.#ready.push(worker);
    if (this.#weights !== null) this.sendWeights(worker);
    this.#waitingLogged = false;
    this.#log.info(
      {
        workerId: worker.id,
        workers: this.#ready.length,
        kind: worker.kind,
        agent: worker.agent,
        remote: worker.remote,
      },
      'worker joined',
    );
    if (!this.#started && this.#ready.length >= this.#options.minWorkers)
      for (const wake of this.#startWaiters.splice(0)) wake();
    this.#dispatch();
  }

  onGone(worker: WorkerConnection, why: string): void {
    const index = this.#ready.indexOf(worker);
    if (index >= 0) this.#ready.splice(index, 1);
    this.#speed.delete(worker);
    this.#sentVersion.delete(worker);
    this.#starved.delete(worker);
    const active = this.#active;
    const orphaned: number[] = [];
    if (active !== null) {
      for (const task of [...active.tasks.values()]) {
        if (task.worker !== worker) continue;
        this.#dropTask(active, task);
        if (!task.expired) orphaned.push(...task.shards.filter((s) => !active.covered[s]));
      }
    }
    this.#log.info(
      { workerId: worker.id, workers: this.#ready.length, reason: why, tasksDone: worker.tasksDone },
      'worker left',
    );
    if (active !== null && orphaned.length > 0) {
      orphaned.sort((a, b) => a - b);
      this.stats.reassignedShards += orphaned.length;
      this.#orphaned = true;
      this.#log.info({ workerId: worker.id, epoch: active.plan.epoch + 1, shards: orphaned }, 'reassigning shards');
      this.#dispatch();
    }
  }

  /** `byteLength`: the size of the message on the wire, for the stats. */
  onResult(worker: WorkerConnection, result: ResultMessage, byteLength = result.grads.byteLength): void {
    const channel = this.#channel!;
    const active = this.#active;
    const task = active?.tasks.get(result.taskId);
    if (active === null || task === undefined) {
      // A task of a finished step, or one whose shards someone else covered first.
      if (result.taskId < this.#nextTaskId && result.version <= this.#version) {
        worker.log.debug({ taskId: result.taskId, version: result.version }, 'stale result dropped');
        return;
      }
      channel.reject(worker, 'not_assigned', `result for task ${result.taskId}, which was never assigned`);
      return;
    }
    if (task.worker !== worker)
      return channel.reject(worker, 'not_assigned', `task ${task.id} belongs to ${task.worker.id}`);
    if (result.version !== task.version)
      return channel.reject(
        worker,
        'not_assigned',
        `task ${task.id} is at version ${task.version}, result says ${result.version}`,
      );
    const mismatch = checkNodes(task, result);
    if (mismatch !== null) return channel.reject(worker, 'not_assigned', mismatch);
    if (result.diverged) return this.#judgeDivergence(active, task);
    this.stats.bytesIn += byteLength;
    this.stats.tensorBytes += result.grads.byteLength;
    this.#dropTask(active, task);
    this.#measure(worker, task);
    worker.tasksDone++;
    worker.samplesDone += task.samples;
    worker.computeMs += result.computeMs;
    if (task.shards.some((s) => active.covered[s])) {
      // Another worker's copy of these shards won; the values would be the same bits.
      this.stats.duplicateResults++;
      worker.log.debug({ taskId: task.id, shards: task.shards }, 'duplicate result dropped');
      this.#dispatch();
      return;
    }
    const P = this.#paramCount;
    result.nodes.forEach((n, k) => {
      // A view, no copy: the decoded message's buffer is ours alone from here on.
      const grad = result.grads.subarray(k * P, (k + 1) * P);
      active.results.set(nodeKey(n), { grad, lossSum: n.lossSum, count: n.count, correct: n.correct });
    });
    for (const s of task.shards) active.covered[s] = true;
    active.coveredCount += task.shards.length;
    if (active.coveredCount === active.numShards) this.#finish(active);
    else this.#dispatch();
  }

  /** A worker says its gradient is not finite: confirm by recomputing here, then fail the step or reject the worker. */
  #judgeDivergence(active: ActiveStep, task: Task): void {
    const shards = task.shards.map((id) => ({ id, indices: active.plan.shards[id] }));
    const judge = this.#options.confirmDivergence;
    if (judge === undefined || !judge(shards, active.numShards, this.#weights!, this.#version)) {
      const why = judge === undefined ? 'which this coordinator cannot check' : 'which is finite when recomputed here';
      this.#channel!.reject(task.worker, 'non_finite', `task ${task.id}: reported a non-finite gradient, ${why}`);
      return;
    }
    this.#log.error(
      { workerId: task.worker.id, taskId: task.id, epoch: active.plan.epoch + 1 },
      "a worker's gradient is not finite, and so is the coordinator's recomputation: training diverged",
    );
    this.#endStep(active);
    active.reject(new DivergedError(active.plan.epoch + 1, active.plan.step));
  }

  #measure(worker: WorkerConnection, task: Task): void {
    const elapsed = Math.max(performance.now() - task.sentAt, 0.01);
    const speed = task.samples / elapsed;
    const previous = this.#speed.get(worker);
    this.#speed.set(worker, previous === undefined ? speed : EWMA_ALPHA * speed + (1 - EWMA_ALPHA) * previous);
  }

  #finish(active: ActiveStep): void {
    const t0 = performance.now();
    this.stats.waitMs += t0 - active.started;
    const total = reduceNode(
      rootNode(active.numShards),
      active.numShards,
      (n) => active.results.get(nodeKey(n)),
      this.#combine,
    );
    this.stats.reduceMs += performance.now() - t0;
    this.stats.steps++;
    this.#endStep(active);
    active.resolve(total);
  }

  #endStep(active: ActiveStep): void {
    for (const task of active.tasks.values()) clearTimeout(task.timer);
    active.tasks.clear();
    if (this.#active === active) this.#active = null;
  }

  #dropTask(active: ActiveStep, task: Task): void {
    clearTimeout(task.timer);
    active.tasks.delete(task.id);
  }

  /** Shards neither covered nor held by a task within its deadline, ascending. */
  #openShards(active: ActiveStep): number[] {
    const held = new Set<number>();
    for (const t of active.tasks.values()) if (!t.expired) for (const s of t.shards) held.add(s);
    const open: number[] = [];
    for (let s = 0; s < active.numShards; s++) if (!active.covered[s] && !held.has(s)) open.push(s);
    return open;
  }

  #dispatch(): void {
    const active = this.#active;
    if (active === null) return;
    const open = this.#openShards(active);
    if (open.length === 0) return;
    if (this.#ready.length === 0) {
      if (this.#cancelWhenStarved !== null) return this.cancel(this.#cancelWhenStarved);
      if (!this.#waitingLogged) this.#log.warn({ pendingShards: open.length }, 'no workers: waiting for one to join');
      this.#waitingLogged = true;
      return;
    }
    const busy = new Set<WorkerConnection>();
    for (const t of active.tasks.values()) busy.add(t.worker);
    const idle = this.#ready.filter((w) => !busy.has(w));
    const targets = idle.length > 0 ? idle : this.#ready;
    const shares = alignedShares(
      open.length,
      targets.map((w) => this.#optimisticSpeed(w)),
    );
    let start = 0;
    targets.forEach((worker, k) => {
      if (shares[k] === 0) {
        this.#starved.set(worker, (this.#starved.get(worker) ?? 0) + 1);
        return;
      }
      this.#starved.delete(worker);
      this.#assign(active, worker, open.slice(start, start + shares[k]));
      start += shares[k];
    });
    if (this.#orphaned) {
      this.stats.lastReassignAt = performance.now();
      this.#orphaned = false;
    }
  }

  #assign(active: ActiveStep, worker: WorkerConnection, shards: number[]): void {
    const nodes = coverNodes(shards, active.numShards);
    const counts = nodes.map((n) => {
      let c = 0;
      for (let i = n.lo; i < Math.min(n.lo + n.size, active.numShards); i++) c += active.plan.shards[i].length;
      return c;
    });
    const samples = counts.reduce((a, b) => a + b, 0);
    const id = this.#nextTaskId++;
    const timeoutMs = this.#deadline(worker, samples);
    const timer = setTimeout(() => this.#expire(active, id), timeoutMs);
    timer.unref();
    const task: Task = {
      id,
      worker,
      version: active.version,
      shards,
      nodes,
      counts,
      samples,
      sentAt: performance.now(),
      timer,
      expired: false,
    };
    active.tasks.set(id, task);
    if (this.#sentVersion.get(worker) !== active.version) this.sendWeights(worker);
    const bytes = encode({
      type: 'task',
      taskId: id,
      version: active.version,
      numShards: active.numShards,
      shards: shards.map((s) => ({ id: s, indices: active.plan.shards[s] })),
    });
    this.stats.bytesOut += bytes.byteLength;
    worker.send(bytes);
  }

  /**
   * The speed used to share work: the measured one, raised by a quarter for every
   * dispatch in a row that gave the worker nothing, so a worker measured slow once
   * (a cold start, a busy moment) is tried again and re-measured rather than
   * starved for the rest of the run.
   */
  #optimisticSpeed(worker: WorkerConnection): number | undefined {
    const speed = this.#speed.get(worker);
    if (speed === undefined) return undefined;
    return speed * STARVED_BOOST ** (this.#starved.get(worker) ?? 0);
  }

  /** ms a task of `samples` samples may take on `worker` before its shards are handed out again. */
  #deadline(worker: WorkerConnection, samples: number): number {
    const { taskTimeoutMinMs: min, taskTimeoutMaxMs: max } = this.#options;
    // A worker not yet measured is given the fleet's mean speed; with none measured, the ceiling.
    const known = [...this.#speed.values()];
    const speed =
      this.#speed.get(worker) ?? (known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : undefined);
    if (speed === undefined) return max;
    return Math.min(max, Math.max(min, DEADLINE_FACTOR * (samples / speed) + DEADLINE_SLACK_MS));
  }

  #expire(active: ActiveStep, taskId: number): void {
    const task = active.tasks.get(taskId);
    if (this.#active !== active || task === undefined || task.expired) return;
    task.expired = true;
    const open = task.shards.filter((s) => !active.covered[s]);
    this.stats.timedOutShards += open.length;
    task.worker.log.warn(
      { taskId, shards: open, waitedMs: Math.round(performance.now() - task.sentAt) },
      'task deadline missed; handing its shards to others',
    );
    this.#dispatch();
  }
}

/**
 * Splits `n` items among workers in proportion to their speeds (largest remainder).
 * Workers not yet measured count as the mean of the measured ones (1 when none is).
 */
export function proportionalShares(n: number, speeds: readonly (number | undefined)[]): number[] {
  const weights = effectiveSpeeds(speeds);
  const total = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (n * w) / total);
  const shares = exact.map(Math.floor);
  let left = n - shares.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left === 0) break;
    shares[i]++;
    left--;
  }
  return shares;
}

/** How much slower than a perfect proportional split a tree-aligned split may be. */
const ALIGNMENT_SLACK = 0.25;

/**
 * Like proportionalShares, but cuts at multiples of the largest power of two that
 * keeps the slowest worker within ALIGNMENT_SLACK of the proportional ideal. A share
 * that starts and ends on such a multiple is one tree node (or a few), so its worker
 * pre-reduces it to one gradient and uploads that, instead of one per node a ragged
 * cut leaves it: on 16 shards, shares 9 + 7 upload 5 gradients, 8 + 8 upload 2.
 */
export function alignedShares(n: number, speeds: readonly (number | undefined)[]): number[] {
  const exact = proportionalShares(n, speeds);
  const weights = effectiveSpeeds(speeds);
  const total = weights.reduce((a, b) => a + b, 0);
  const ideal = n / total;
  const makespan = (shares: readonly number[]): number => Math.max(...shares.map((s, i) => s / weights[i]));
  let granule = 1;
  while (granule * 2 <= n) granule *= 2;
  for (; granule > 1; granule /= 2) {
    const shares: number[] = [];
    let cut = 0;
    let before = 0;
    for (let i = 0; i < weights.length; i++) {
      before += weights[i];
      const next =
        i === weights.length - 1 ? n : Math.min(n, Math.max(cut, Math.round((n * before) / total / granule) * granule));
      shares.push(next - cut);
      cut = next;
    }
    if (makespan(shares) <= ideal * (1 + ALIGNMENT_SLACK)) return shares;
  }
  return exact;
}

/** Each worker's speed for sharing; workers not yet measured count as the mean of the measured ones (1 when none is). */
function effectiveSpeeds(speeds: readonly (number | undefined)[]): number[] {
  const known = speeds.filter((s): s is number => s !== undefined && s > 0);
  const fallback = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 1;
  return speeds.map((s) => (s !== undefined && s > 0 ? s : fallback));
}

/** Null when the result carries exactly the task's nodes and sample counts, else what differs. */
function checkNodes(task: Task, result: ResultMessage): string | null {
  if (result.nodes.length !== task.nodes.length)
    return `task ${task.id} expects ${task.nodes.length} nodes, result has ${result.nodes.length}`;
  for (let k = 0; k < task.nodes.length; k++) {
    const want = task.nodes[k];
    const got = result.nodes[k];
    if (got.lo !== want.lo || got.size !== want.size)
      return `task ${task.id} node ${k} should be ${nodeKey(want)}, got ${got.lo}/${got.size}`;
    if (got.count !== task.counts[k])
      return `task ${task.id} node ${k} should count ${task.counts[k]} samples, got ${got.count}`;
    if (got.correct > got.count) return `task ${task.id} node ${k} claims ${got.correct} correct of ${got.count}`;
  }
  return null;
}
