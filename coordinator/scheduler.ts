// The distributed step executor: hands each step's micro-shards to the ready
// workers, collects their per-node gradients, gives the shards of workers that
// vanish or miss their deadline to others, and reduces along the fixed tree once
// every shard is covered.
//
// It composes the parts in step/: the roster and its speed model decide who gets
// which contiguous run of the open shards and how long it may take (a task past its
// deadline has its shards handed out again: straggler mitigation and recovery from
// results that never come); the broadcaster sends the tasks, each with the weights
// its worker lacks (one message per worker and step); every result passes
// the verifier before it counts; the step's own bookkeeping is a StepRun. The first
// accepted result for a shard wins, later ones are dropped. Which worker computes
// what changes only speed, never the result: the reduction order is fixed by the tree.
//
// The scheduler itself is the state machine of steps (SchedulerState):
//
//   not_started ─run─▶ awaiting_workers ─minWorkers ready─▶ collecting ─covered or diverged─▶ idle
//   not_started or idle ─run─▶ collecting      (not_started: once minWorkers are ready)
//   (with a cache in front to prime, each ─▶ collecting above is ─▶ priming ─weights cached or failed─▶ collecting)
//   any ─cancel─▶ cancelled                    (terminal: later steps are refused)
//   collecting ─forgery found─▶ idle           (the step fails with RollbackRequired)
//   collecting ─not finite, unverified results─▶ collecting   (the step again, its workers on probation)
//   collecting ─diverged, unchecked results applied before─▶ idle   (RollbackRequired: replay, all checked)
//
// Verification (step/auditor.ts) reaches in at three points, kept apart below: a
// verdict may ban a worker; a verifier may report a forgery later, after the result
// counted (then every step from the forger's first unchecked result is undone: the
// trainer rolls back, see rollback.ts); and a step whose sum is not finite is never
// handed on while results in it are unchecked.
//
// run() covers a whole step and yields its root, for the trainer; runScope() covers
// some of a step's shards and yields the maximal tree nodes they fill, for a relay
// (relay/relay-computer.ts) that answers for those shards upstream as one worker.

import { allFinite } from '../shared/finite.js';
import { DivergedError, StepCancelled } from '../shared/errors.js';
import type { PartialGradient } from '../shared/gradient.js';
import type { DigestMessage, ResultMessage } from '../shared/protocol/messages.js';
import { wireCombine, type WireDtype } from '../shared/wire-dtype.js';
import type { Events } from './events.js';
import type { StepPlan } from './plan.js';
import { RollbackRequired } from './rollback.js';
import { type CurrentWeights, type PublisherFactory, WeightsBroadcaster } from './step/broadcaster.js';
import { WorkerCheckers } from './step/checkers.js';
import { Roster, type RosterOptions } from './step/roster.js';
import { StepRun, type Task } from './step/step-run.js';
import { Utilization } from './step/utilization.js';
import type { Claim, Verdict, VerificationTally, Verifier } from './step/verifier.js';
import type { StepWorker } from './step/worker.js';
import type { NodeGradient } from '../worker/compute.js';
import type { StepExecutor } from './trainer.js';

export interface SchedulerOptions extends RosterOptions {
  /** Workers to wait for before the first step. */
  readonly minWorkers: number;
  /** The run's wire dtype: how weights go out and gradients come in, and how nodes combine. */
  readonly wireDtype: WireDtype;
  /** Judges every result before it counts. */
  readonly verifier: Verifier;
  /** Makes where each version is published for workers to fetch over HTTP; absent: weights ride in the messages. */
  readonly weightsOverHttp?: PublisherFactory;
  /** Starts a check's deadline (taskTimeoutMaxMs); tests inject one they fire themselves. */
  readonly checkTimer?: (ms: number, onExpired: () => void) => () => void;
  /** Draws a checker among n candidates (default: node:crypto's randomInt); tests inject one they steer. */
  readonly checkPick?: (n: number) => number;
}

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

/** A step the trainer (or a relay) is waiting on. */
interface PendingStep {
  readonly plan: StepPlan;
  readonly version: number;
  /** The shard ids to cover; undefined: all of them. */
  readonly scope: readonly number[] | undefined;
  /** With the root, or the nodes of coverNodes(scope), ascending. */
  resolve(result: NodeGradient[]): void;
  reject(err: Error): void;
}

type SchedulerState =
  /** No step asked yet; the first waits for minWorkers. */
  | { readonly name: 'not_started' }
  /** The first step is asked, and fewer than minWorkers are ready. */
  | { readonly name: 'awaiting_workers'; readonly pending: PendingStep }
  /** The step's weights are being put in the cache in front, so that no worker waits on its lock (weights-prime.ts). */
  | { readonly name: 'priming'; readonly pending: PendingStep }
  /** Tasks are out; results come in. */
  | { readonly name: 'collecting'; readonly step: StepRun; readonly pending: PendingStep }
  /** Between steps. */
  | { readonly name: 'idle' }
  /** Shut down: no step runs any more. */
  | { readonly name: 'cancelled'; readonly reason: string };

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
  readonly #events: Events;
  readonly #paramCount: number;
  readonly #options: SchedulerOptions;
  readonly #roster: Roster;
  readonly #broadcaster: WeightsBroadcaster;
  readonly #combine: (left: PartialGradient, right: PartialGradient) => PartialGradient;
  #state: SchedulerState = { name: 'not_started' };
  #nextTaskId = 1;
  /** Cancel the moment no worker is left to finish the step (a first Ctrl-C). */
  #cancelWhenStarved: string | null = null;
  /** 'no workers' is said once per drought. */
  #waitingLogged = false;
  /** Shards orphaned by a departure wait to be sent to others (for lastReassignAt). */
  #orphaned = false;
  /** A forgery was found: every step from this weights version on must be undone before the next. */
  #undoFrom: number | null = null;
  /** Workers with a result in the current step that counted unverified. */
  #unverified = new Set<StepWorker>();
  /** Until the step at this position (epoch, step) is done, every result is checked before it counts. */
  #checkAllThrough: readonly [number, number] | null = null;
  /** The step before the current one, judged once the current one's tasks are out. */
  #previous: StepRun | null = null;
  /** The last standby reason logged for each worker: a worker that stands by most of the time is logged once. */
  readonly #standbyLogged = new Map<StepWorker, string>();
  readonly #utilization = new Utilization();
  /** The communication-bound warning is given once per run. */
  #warnedBound = false;
  /** Idle workers the verifier may hand audits to. */
  readonly #checkers: WorkerCheckers;
  /** Tasks of the current step sent to a worker with no speed of its own: their deadlines follow the fleet's mean. */
  #provisional = new Set<Task>();
  /**
   * The lowest fleet mean speed (samples/ms) a provisional task's deadline was set or last
   * brought forward at: 0 when one was set with no worker measured (the fixed allowance),
   * +∞ when there is none.
   */
  #provisionalMean = Number.POSITIVE_INFINITY;

  /** `events`: where joins, departures, reassignments and deadlines are announced. */
  constructor(events: Events, paramCount: number, options: SchedulerOptions) {
    this.#events = events;
    this.#paramCount = paramCount;
    this.#options = options;
    this.#roster = new Roster(options);
    this.#broadcaster = new WeightsBroadcaster(options.wireDtype, this.stats, options.weightsOverHttp ?? null);
    this.#combine = wireCombine(options.wireDtype);
    options.verifier.attach?.({
      forged: (worker, detail, undoFrom) => this.#ban(worker, detail, undoFrom),
      verified: (claim) => this.#roster.measure(claim.worker, claim.samples, claim.elapsedMs, true),
    });
    this.#checkers = new WorkerCheckers({
      workers: () => this.#roster.members,
      // Computing: a task of the step out and not answered. A worker whose result is in is idle.
      // Told of every change: onReady, onGone, and each step's watcher (#collect).
      busy: () => (this.#state.name === 'collecting' ? this.#state.step.computingWorkers() : NOBODY),
      told: true,
      send: (worker, checkId, work) => this.#broadcaster.sendCheck(worker, checkId, work),
      deadlineMs: options.taskTimeoutMaxMs,
      startTimer: options.checkTimer,
      pick: options.checkPick,
    });
    options.verifier.delegateTo?.(this.#checkers);
  }

  /** The answer to a check this worker was sent. */
  onDigest(worker: StepWorker, message: DigestMessage): void {
    if (!this.#checkers.onDigest(worker, message))
      worker.reject('not_assigned', `digest for check ${message.checkId}, which was never sent to it`);
  }

  /** Recomputations compared and workers banned so far (zeros without an auditing verifier). */
  verification(): VerificationTally {
    return this.#options.verifier.tally?.() ?? { audited: 0, banned: 0 };
  }

  /** Runs every audit still queued; the version from which steps must be undone, or null. */
  settle(): number | null {
    this.#options.verifier.drain?.();
    return this.#undoFrom;
  }

  /**
   * The trainer restored the state before weights version `version` (≤ what
   * RollbackRequired asked): steps from there on are undone, and steps may run again.
   */
  rolledBack(version: number): void {
    this.#undoFrom = null;
    this.#options.verifier.rolledBack?.(version);
  }

  get workerCount(): number {
    return this.#roster.size;
  }

  /** The current weights version (-1 before the first publish). */
  get version(): number {
    return this.#broadcaster.version;
  }

  wireBytes(): number {
    return this.stats.bytesIn + this.stats.bytesOut;
  }

  /** Samples/s of each ready worker measured so far (workers not yet measured are left out). */
  workerThroughput(): Record<string, number> {
    return this.#roster.throughput();
  }

  /**
   * The current weights, as workers receive them (owned by the scheduler:
   * copy them to keep them past the next publish).
   */
  currentWeights(): CurrentWeights {
    return this.#broadcaster.current();
  }

  /** Makes `weights` the current version; each worker receives it with its first task at it. */
  publish(version: number, weights: Float32Array): void {
    this.#broadcaster.publish(version, weights);
  }

  /** Where a bf16 result is widened (see WeightsBroadcaster.tensorBuffer). */
  tensorBuffer(length: number): Float32Array {
    return this.#broadcaster.tensorBuffer(length);
  }

  async run(plan: StepPlan, version: number): Promise<PartialGradient> {
    const [root] = await this.#start(plan, version, undefined);
    return root.partial;
  }

  /**
   * Computes only the shards `scope` of the step (the rest of plan.shards may be empty)
   * and resolves with the maximal tree nodes they fill, ascending (coverNodes), each
   * reduced as anyone holding its shards would. Otherwise as run().
   */
  runScope(plan: StepPlan, version: number, scope: readonly number[]): Promise<NodeGradient[]> {
    return this.#start(plan, version, scope);
  }

  async #start(plan: StepPlan, version: number, scope: readonly number[] | undefined): Promise<NodeGradient[]> {
    if (version !== this.version)
      throw new Error(`step at version ${version} but version ${this.version} is published`);
    this.#broadcaster.reclaimTensors();
    return new Promise<NodeGradient[]>((resolve, reject) => {
      if (this.#undoFrom !== null && this.#state.name !== 'cancelled')
        return reject(new RollbackRequired(this.#undoFrom));
      const pending: PendingStep = { plan, version, scope, resolve, reject };
      const state = this.#state;
      switch (state.name) {
        case 'not_started':
          if (this.#roster.size >= this.#options.minWorkers) return this.#collectPrimed(pending);
          this.#events.emit('waitingForWorkers', { workers: this.#roster.size, minWorkers: this.#options.minWorkers });
          this.#state = { name: 'awaiting_workers', pending };
          return;
        case 'idle':
          return this.#collectPrimed(pending);
        case 'cancelled':
          return reject(new StepCancelled(state.reason));
        case 'awaiting_workers':
        case 'priming':
        case 'collecting':
          return reject(new Error(`step ${plan.step} asked while a step is ${state.name}`));
        default:
          return unreachable(state);
      }
    });
  }

  /** Abandons the step in progress (and any wait for workers); later steps are refused. */
  cancel(reason: string): void {
    const state = this.#state;
    this.#state = { name: 'cancelled', reason };
    switch (state.name) {
      case 'not_started':
      case 'idle':
      case 'cancelled':
        return;
      case 'awaiting_workers':
      case 'priming':
        return state.pending.reject(new StepCancelled(reason));
      case 'collecting':
        state.step.end();
        return state.pending.reject(new StepCancelled(reason));
      default:
        return unreachable(state);
    }
  }

  /** Gives up the step in progress, whose run rejects with StepCancelled; unlike cancel, later steps may run. */
  abandon(reason: string): void {
    if (this.#state.name === 'collecting') this.#fail(this.#state.step, new StepCancelled(reason));
  }

  /** Cancels now if no worker is there to finish the step, or later the moment that happens. */
  cancelWhenStarved(reason: string): void {
    this.#cancelWhenStarved = reason;
    if (this.#roster.size === 0) this.cancel(reason);
  }

  /**
   * A worker that finished its handshake. It gets the current weights at once (its
   * welcome's may be stale after the time it took to load the data), tasks when
   * there is work.
   */
  onReady(worker: StepWorker): void {
    this.#roster.add(worker);
    this.#checkers.onReady(worker);
    if (this.#broadcaster.published) this.#broadcaster.send(worker);
    this.#waitingLogged = false;
    this.#events.emit('workerJoined', {
      workerId: worker.id,
      workers: this.#roster.size,
      kind: worker.kind,
      agent: worker.agent,
      remote: worker.remote,
    });
    const state = this.#state;
    switch (state.name) {
      case 'awaiting_workers':
        if (this.#roster.size >= this.#options.minWorkers) this.#collectPrimed(state.pending);
        return;
      case 'collecting':
        return this.#dispatch(state.step);
      case 'priming':
      case 'not_started':
      case 'idle':
      case 'cancelled':
        return;
      default:
        return unreachable(state);
    }
  }

  onGone(worker: StepWorker, why: string): void {
    this.#roster.remove(worker);
    this.#checkers.onGone(worker);
    this.#broadcaster.forget(worker);
    this.#standbyLogged.delete(worker);
    const step = this.#state.name === 'collecting' ? this.#state.step : null;
    const orphaned: number[] = [];
    for (const task of step?.tasksOf(worker) ?? []) {
      step!.drop(task);
      if (!task.expired) orphaned.push(...task.shards.filter((s) => !step!.isCovered(s)));
    }
    this.#events.emit('workerLeft', {
      workerId: worker.id,
      workers: this.#roster.size,
      reason: why,
      tasksDone: worker.tasksDone,
    });
    if (step !== null && orphaned.length > 0) {
      orphaned.sort((a, b) => a - b);
      this.stats.reassignedShards += orphaned.length;
      this.#orphaned = true;
      this.#events.emit('shardsReassigned', { workerId: worker.id, epoch: step.plan.epoch + 1, shards: orphaned });
      this.#dispatch(step);
    }
  }

  /** `byteLength`: the size of the message on the wire, for the stats. */
  onResult(worker: StepWorker, result: ResultMessage, byteLength = result.grads.byteLength): void {
    const step = this.#state.name === 'collecting' ? this.#state.step : null;
    const task = step?.tasks.get(result.taskId);
    if (step === null || step === undefined || task === undefined) {
      // A task of a finished step, or one whose shards someone else covered first.
      if (result.taskId < this.#nextTaskId && result.version <= this.version) {
        worker.log.debug({ taskId: result.taskId, version: result.version }, 'stale result dropped');
        return;
      }
      return worker.reject('not_assigned', `result for task ${result.taskId}, which was never assigned`);
    }
    if (task.worker !== worker) return worker.reject('not_assigned', `task ${task.id} belongs to ${task.worker.id}`);
    if (result.version !== task.version)
      return worker.reject(
        'not_assigned',
        `task ${task.id} is at version ${task.version}, result says ${result.version}`,
      );
    if (task.answered) return worker.reject('unexpected', `task ${task.id} answered twice`);
    const claim: Claim = {
      taskId: task.id,
      worker,
      version: task.version,
      samples: task.samples,
      elapsedMs: performance.now() - task.sentAt,
      mustVerify: this.#checkAllThrough !== null && !after(step.plan, this.#checkAllThrough),
      plan: step.plan,
      shards: task.shards,
      nodes: task.nodes,
      counts: task.counts,
      weights: this.#broadcaster.current().weights,
      result,
    };
    const verdict = this.#options.verifier.verify(claim);
    if (!(verdict instanceof Promise)) return this.#judged(step, task, result, byteLength, verdict, claim.elapsedMs);
    // Held while the verifier decides: the task's shards stay with it, past any deadline.
    step.answer(task);
    clearTimeout(task.timer);
    verdict.then(
      (v) => {
        if (this.#state.name === 'collecting' && this.#state.step === step && step.tasks.get(task.id) === task)
          this.#judged(step, task, result, byteLength, v, claim.elapsedMs);
        // A forgery is banned even when its step is over.
        else if (v.kind === 'forged') this.#ban(task.worker, v.detail, v.undoFrom);
      },
      (err: unknown) => this.#fail(step, err instanceof Error ? err : new Error(String(err))),
    );
  }

  /** `elapsedMs`: from sending the task to its result's arrival (a verdict's wait is not the worker's). */
  #judged(
    step: StepRun,
    task: Task,
    result: ResultMessage,
    byteLength: number,
    verdict: Verdict,
    elapsedMs: number,
  ): void {
    switch (verdict.kind) {
      case 'reject':
        return task.worker.reject(verdict.reason, verdict.detail);
      case 'diverged':
        if (this.#replayChecked(step)) return;
        this.#events.emit('stepDiverged', { workerId: task.worker.id, taskId: task.id, epoch: step.plan.epoch + 1 });
        return this.#fail(step, new DivergedError(step.plan.epoch + 1, step.plan.step));
      case 'accept':
        if (result.diverged) throw new Error(`the verifier accepted task ${task.id}'s claim of divergence`);
        return this.#accept(step, task, result, byteLength, verdict.verified, elapsedMs);
      case 'forged':
        return this.#ban(task.worker, verdict.detail, verdict.undoFrom);
      default:
        return unreachable(verdict);
    }
  }

  #accept(
    step: StepRun,
    task: Task,
    result: ResultMessage,
    byteLength: number,
    verified: boolean,
    elapsedMs: number,
  ): void {
    const worker = task.worker;
    this.stats.bytesIn += byteLength;
    this.stats.tensorBytes += result.grads.byteLength;
    step.drop(task);
    this.#roster.measure(worker, task.samples, elapsedMs, verified);
    if (!verified) this.#unverified.add(worker);
    this.#tightenDeadlines(step);
    worker.tasksDone++;
    worker.samplesDone += task.samples;
    worker.computeMs += result.computeMs;
    if (!step.accept(task, result, this.#paramCount)) {
      // Another worker's copy of these shards won; the values would be the same bits.
      this.stats.duplicateResults++;
      worker.log.debug({ taskId: task.id, shards: task.shards }, 'duplicate result dropped');
      return this.#dispatch(step);
    }
    if (step.complete) this.#finish(step);
    else this.#dispatch(step);
  }

  /** collecting → idle: the step's gradient goes to the trainer. */
  #finish(step: StepRun): void {
    if (this.#state.name !== 'collecting' || this.#state.step !== step) return;
    const pending = this.#state.pending;
    const t0 = performance.now();
    this.stats.waitMs += t0 - step.started;
    const total = step.reduce(this.#combine);
    this.stats.reduceMs += performance.now() - t0;
    if (!total.every((n) => partialFinite(n.partial))) {
      if (this.#unverified.size > 0 && this.#options.verifier.suspect !== undefined)
        return this.#recheck(step, pending);
      if (this.#replayChecked(step)) return;
    }
    if (this.#checkAllThrough !== null && !after(this.#checkAllThrough, step.plan)) this.#checkAllThrough = null;
    this.stats.steps++;
    step.end();
    this.#state = { name: 'idle' };
    pending.resolve(total);
  }

  /** collecting → idle: the step fails with `err`. */
  #fail(step: StepRun, err: Error): void {
    if (this.#state.name !== 'collecting' || this.#state.step !== step) return;
    const pending = this.#state.pending;
    step.end();
    this.#state = { name: 'idle' };
    pending.reject(err);
  }

  /**
   * The step's sum is not finite and some of its results were never checked: before
   * anyone blames the learning rate, the step runs again with those workers on
   * probation, so every one of their results is compared with a recomputation first
   * (a forger is banned; a genuine divergence comes out non-finite again, verified).
   */
  #recheck(step: StepRun, pending: PendingStep): void {
    const suspects = [...this.#unverified];
    this.#events.emit('stepRechecked', {
      epoch: step.plan.epoch + 1,
      step: step.plan.step,
      workerIds: suspects.map((w) => w.id),
    });
    this.#options.verifier.suspect?.(suspects);
    step.end();
    this.#collect(pending);
  }

  /**
   * The weights themselves give a non-finite gradient, and results nobody checked
   * counted in earlier steps: one of them may have poisoned the weights. Before anyone
   * blames the learning rate, every step from the first such result runs again with
   * every result checked, up to this one; diverging again after that is genuine.
   * False (nothing done) when every result still applied was checked.
   */
  #replayChecked(step: StepRun): boolean {
    const from = this.#options.verifier.unverifiedFrom?.() ?? null;
    if (from === null) return false;
    const here = [step.plan.epoch, step.plan.step] as const;
    if (this.#checkAllThrough === null || after(here, this.#checkAllThrough)) this.#checkAllThrough = here;
    this.#events.emit('replayChecked', { epoch: step.plan.epoch + 1, step: step.plan.step, fromVersion: from });
    this.#undoFrom = Math.min(this.#undoFrom ?? from, from);
    this.#fail(step, new RollbackRequired(this.#undoFrom));
    return true;
  }

  /**
   * A forgery: the worker is banned (the hub closes it with BANNED and reports it
   * gone, which hands its shards to others) and, when results of it that nobody
   * checked still count, every step from the first of them is undone.
   */
  #ban(worker: StepWorker, detail: string, undoFrom: number | null): void {
    this.#events.emit('workerBanned', {
      workerId: worker.id,
      reason: 'forged',
      detail,
      agent: worker.agent,
      remote: worker.remote,
      undoFromVersion: undoFrom,
    });
    if (undoFrom !== null) {
      this.#undoFrom = Math.min(this.#undoFrom ?? undoFrom, undoFrom);
      const state = this.#state;
      if (state.name === 'collecting') this.#fail(state.step, new RollbackRequired(this.#undoFrom));
    }
    worker.ban(detail);
  }

  /** → collecting once the step's weights are in the cache in front (→ priming until then), or at once without one. */
  #collectPrimed(pending: PendingStep): void {
    const primed = this.#broadcaster.ready(pending.version);
    if (primed === null) return this.#collect(pending);
    this.#state = { name: 'priming', pending };
    // It never rejects: a failed prime holds nothing up.
    void primed.then(() => {
      if (this.#state.name !== 'priming' || this.#state.pending !== pending) return; // cancelled meanwhile
      if (this.#undoFrom === null) return this.#collect(pending);
      this.#state = { name: 'idle' }; // a forger was found meanwhile
      pending.reject(new RollbackRequired(this.#undoFrom));
    });
  }

  /** → collecting: starts the step and hands out its shards; then, off the critical path, judges the last step. */
  #collect(pending: PendingStep): void {
    this.#unverified = new Set();
    this.#provisional = new Set();
    this.#provisionalMean = Number.POSITIVE_INFINITY;
    const step = new StepRun(pending.plan, pending.version, this.#roster.members, pending.scope);
    step.watchComputing((worker) => this.#checkers.onBusy(worker));
    this.#state = { name: 'collecting', step, pending };
    this.#dispatch(step);
    const previous = this.#previous;
    this.#previous = step;
    if (previous !== null) this.#judgeStep(previous, step);
  }

  /**
   * Tells each worker that got nothing in `done` nor in `next` why (once per stretch:
   * its next task ends it), logging each reason once per worker, and watches how much
   * of their time the workers compute.
   */
  #judgeStep(done: StepRun, next: StepRun): void {
    for (const worker of this.#roster.members) {
      if (!done.present.has(worker) || done.assigned.has(worker) || next.assigned.has(worker)) continue;
      if (worker.standby !== null) continue;
      const n = done.scopeSize;
      worker.standby =
        n < this.#roster.size
          ? `standing by: a step has ${n} shard${n === 1 ? '' : 's'} for ${this.#roster.size} workers, ` +
            'and the faster ones take them'
          : 'standing by: the other workers finish a step before this one could finish a shard';
      this.#broadcaster.sendStandby(worker, worker.standby);
      if (this.#standbyLogged.get(worker) === worker.standby) continue;
      this.#standbyLogged.set(worker, worker.standby);
      this.#events.emit('workerStandingBy', { workerId: worker.id, reason: worker.standby });
    }
    const report = this.#utilization.add(next.started - done.started, done.computeMs, done.computed.size);
    if (report === null || this.#warnedBound || report.computeShare >= 0.5) return;
    this.#warnedBound = true;
    this.#events.emit('communicationBound', {
      workers: this.#roster.size,
      stepMs: round(report.stepMs),
      computeMsPerWorker: round(report.computeMsPerWorker),
      computePercent: Math.round(100 * report.computeShare),
      hint:
        'a larger --batch-size, fewer workers, or a model with more compute per weight (convolutions) ' +
        'would pay better',
    });
  }

  #dispatch(step: StepRun): void {
    const open = step.openShards();
    if (open.length === 0) return;
    if (this.#roster.size === 0) {
      if (this.#cancelWhenStarved !== null) return this.cancel(this.#cancelWhenStarved);
      if (!this.#waitingLogged) this.#events.emit('noWorkers', { pendingShards: open.length });
      this.#waitingLogged = true;
      return;
    }
    for (const { worker, shards } of this.#roster.share(open, step.busyWorkers())) this.#assign(step, worker, shards);
    if (this.#orphaned) {
      this.stats.lastReassignAt = performance.now();
      this.#orphaned = false;
    }
  }

  /** Sends the task first: its bookkeeping (cover, deadline, events) runs while the worker computes. */
  #assign(step: StepRun, worker: StepWorker, shards: number[]): void {
    const id = this.#nextTaskId++;
    const sentAt = performance.now();
    this.#broadcaster.sendTask(worker, {
      taskId: id,
      version: step.version,
      step: step.plan.globalStep,
      numShards: step.numShards,
      shards: shards.map((s) => ({ id: s, indices: step.plan.shards[s] })),
    });
    const { nodes, counts, samples } = step.cover(shards);
    const deadline = this.#roster.deadline(worker, samples);
    const timer = setTimeout(() => this.#expire(step, id), deadline);
    timer.unref();
    const task: Task = {
      id,
      worker,
      version: step.version,
      shards,
      nodes,
      counts,
      samples,
      sentAt,
      dueAt: sentAt + deadline,
      timer,
      expired: false,
      answered: false,
    };
    step.add(task);
    if (!this.#roster.isMeasured(worker)) {
      this.#provisional.add(task);
      this.#provisionalMean = Math.min(this.#provisionalMean, this.#roster.meanSpeed() ?? 0);
    }
    step.assigned.add(worker);
    this.#checkers.noteTask(worker, step.version, shards);
    worker.standby = null;
    this.#events.emit('taskAssigned', { workerId: worker.id, taskId: id, version: step.version, shards });
  }

  #expire(step: StepRun, taskId: number): void {
    const task = step.tasks.get(taskId);
    if (this.#state.name !== 'collecting' || this.#state.step !== step || task === undefined || task.expired) return;
    step.expire(task);
    const open = task.shards.filter((s) => !step.isCovered(s));
    this.stats.timedOutShards += open.length;
    this.#events.emit('taskExpired', {
      workerId: task.worker.id,
      taskId,
      shards: open,
      waitedMs: Math.round(performance.now() - task.sentAt),
    });
    // Ejected before the shards go out again, so they go to the others.
    if (this.#roster.missed(task.worker))
      task.worker.reject('too_slow', `missed ${this.#roster.ejectAfterMisses} task deadlines in a row`);
    this.#dispatch(step);
  }

  /**
   * Brings forward the deadlines of tasks out to workers not yet measured: set while
   * no worker was (a fixed allowance, roster.ts), they shrink to what the fleet's speed
   * implies once one is, so workers that join first and never answer hold a step only
   * until the first result shows how long a task takes.
   *
   * Only the deadlines that can have moved are looked at, so that a result costs O(1)
   * in a fleet that is measured: those of workers measured since the last look, and
   * those that follow the mean (a worker's own speed, once it has one, changes only
   * when it is measured), these only once the mean has grown by PROVISIONAL_MEAN_STEP
   * since they were last set: otherwise every result of a first step, where every
   * deadline follows the mean, would look at every task.
   */
  #tightenDeadlines(step: StepRun): void {
    const now = performance.now();
    const tighten = (task: Task): void => {
      if (task.expired || task.answered) return;
      const due = task.sentAt + this.#roster.deadline(task.worker, task.samples);
      if (due >= task.dueAt) return;
      clearTimeout(task.timer);
      task.dueAt = due;
      task.timer = setTimeout(() => this.#expire(step, task.id), Math.max(0, due - now));
      task.timer.unref();
    };
    for (const worker of this.#roster.takeRemeasured()) for (const task of step.tasksOf(worker)) tighten(task);
    const mean = this.#roster.meanSpeed();
    if (mean === undefined || mean < this.#provisionalMean * PROVISIONAL_MEAN_STEP) return;
    this.#provisionalMean = mean;
    for (const task of this.#provisional) {
      if (step.tasks.get(task.id) !== task) this.#provisional.delete(task);
      else {
        tighten(task);
        if (this.#roster.isMeasured(task.worker)) this.#provisional.delete(task);
      }
    }
  }
}

/**
 * Deadlines that follow the fleet's mean speed are brought forward when the mean has
 * grown by this factor since they were set: such a deadline is at most this much longer
 * in its speed term than the current mean implies, well within the factor of 4 over
 * the expected time that a deadline allows (roster.ts).
 */
const PROVISIONAL_MEAN_STEP = 1.25;

/** Nobody computes between steps. */
const NOBODY: ReadonlySet<StepWorker> = new Set();

/** Whether position `a` (epoch, step) comes after `b`. */
function after(a: StepPlan | readonly [number, number], b: StepPlan | readonly [number, number]): boolean {
  const [ea, sa] = 'epoch' in a ? [a.epoch, a.step] : a;
  const [eb, sb] = 'epoch' in b ? [b.epoch, b.step] : b;
  return ea > eb || (ea === eb && sa > sb);
}

/** Whether a step's sum, loss included, is finite. */
function partialFinite(p: PartialGradient): boolean {
  return Number.isFinite(p.lossSum) && allFinite(p.grad);
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function unreachable(state: never): never {
  throw new Error(`unhandled state ${JSON.stringify(state)}`);
}
