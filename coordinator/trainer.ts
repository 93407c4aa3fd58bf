// The training loop: schedule → collect → reduce → optimizer.step → publish the new weights.
//
// This is a parameter-server design, not DDP's all-reduce: the coordinator owns the
// weights and the optimizer state, hands each step's micro-shards to an executor
// (remote workers, or this process for `flocktrain train`), receives the step's
// reduced gradient sum, takes the batch mean, applies the optimizer and publishes the
// new weights under a new version. Because the data order, the shard cut and the
// reduction tree are fixed by the config and seed, the weights after every step are
// the same whatever executes the shards.
//
// An executor that lets results count before checking them may later find one forged
// and ask, by throwing RollbackRequired from run(), for every step from a weights
// version on to be undone. The trainer then restores the snapshot kept before that
// step (rollback.ts), republishes its weights under a new version (versions only
// grow, so workers never mistake old weights for new) and runs those steps again:
// their metrics and epoch lines are logged again, from the recomputed steps.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { gatherRows } from '../shared/data/gather.js';
import { ConfigError, DivergedError, StepCancelled } from '../shared/errors.js';
import type { PartialGradient } from '../shared/gradient.js';
import { Network } from '../shared/model/network.js';
import { createOptimizer } from '../shared/optim/create.js';
import type { Optimizer } from '../shared/optim/optimizer.js';
import { learningRate, lrScheduleOptions, type LrScheduleOptions } from '../shared/optim/schedule.js';
import { CheckpointWriter, type Checkpoint, type TrainingState } from './checkpoint.js';
import { Events } from './events.js';
import { RollbackRequired, SnapshotStore } from './rollback.js';
import type { PreparedRun } from './setup.js';
import { epochOrder, planStep, stepsPerEpoch, type StepPlan } from './plan.js';

/** Whatever computes a step's gradient: remote workers or this process. */
export interface StepExecutor {
  /** The reduced partial gradient of the step, computed at weights `version`. */
  run(plan: StepPlan, version: number): Promise<PartialGradient>;
  /** Makes `weights` (owned by the trainer; copy what you keep) the current version. */
  publish(version: number, weights: Float32Array): void;
  /** Workers currently taking part, for the step log. */
  readonly workerCount: number;
  /** Measured samples/s of each worker, for the step log. */
  workerThroughput?(): Record<string, number>;
  /** Bytes sent and received so far over the network, for the step log. */
  wireBytes?(): number;
  /** After a RollbackRequired: the state before weights version `version` is restored; steps may run again. */
  rolledBack?(version: number): void;
  /**
   * At the end of training: finishes every pending check of results that already
   * counted; the weights version from which steps must be undone, or null.
   */
  settle?(): number | null;
}

export interface TrainerOptions {
  /** Log a step line every this many steps (the last step of an epoch is always logged). */
  readonly logEvery: number;
  /** Initial parameters (from --init); default: drawn from the seed. */
  readonly initialParams: Float32Array;
  /** Where and how often to write checkpoints; null: never. */
  readonly checkpoint: CheckpointPolicy | null;
  /** A checkpoint to continue from (its weights replace initialParams). */
  readonly resume: Checkpoint | null;
  /**
   * Where to save the state when the run stops abnormally (interrupted or diverged)
   * and no checkpoint policy is set, so nothing is lost; null: nowhere.
   */
  readonly rescueDir?: string | null;
  /** Where steps and epochs are announced; default: only as lines on the trainer's log. */
  readonly events?: Events;
  /** Stop after this many epochs without a better validation loss; 0 or absent: never. */
  readonly earlyStop?: number;
  /** Told the weights at each epoch end whose validation loss beats every earlier one (copy what you keep). */
  readonly onBest?: (params: Float32Array, epoch: number, valLoss: number) => void;
  /**
   * States kept to roll back to (besides the run's start), for an executor that may
   * ask for a rollback; 0 or absent: none kept, and a RollbackRequired is an error.
   */
  readonly snapshots?: number;
  /**
   * Run an epoch's validation pass one batch per step while the executor computes the
   * next epoch's first steps, instead of before them (for executors whose steps compute
   * elsewhere; the numbers are the same). Only between epochs whose end decides nothing
   * else: never with early stopping or checkpoints, never after the last epoch.
   */
  readonly overlapEvaluation?: boolean;
}

export interface CheckpointPolicy {
  readonly dir: string;
  /** Also write one every this many steps (0: only at epoch ends and on interruption). */
  readonly every: number;
  /** Checkpoints kept in the directory. */
  readonly keep: number;
}

export interface TrainSummary {
  readonly epochs: number;
  readonly steps: number;
  readonly valLoss: number | null;
  readonly valAccuracy: number | null;
  readonly weightsHash: string;
  /** True when training stopped early on request (Ctrl-C). */
  readonly interrupted: boolean;
  /** True when --early-stop ended the run: the validation loss stopped improving. */
  readonly stoppedEarly: boolean;
}

const EVAL_BATCH = 256;

/** An epoch's validation pass under way, a batch at a time, and what its epoch line will say. */
interface PendingEvaluation {
  readonly epoch: number;
  /** The weights version at the epoch's end: snapshots from it on lack this pass's best-loss bookkeeping. */
  readonly version: number;
  /** (paramCount): the weights at the epoch's end. */
  readonly params: Float32Array;
  /** The next validation sample to evaluate. */
  next: number;
  lossSum: number;
  correct: number;
  readonly epochSamples: number;
  readonly epochLossSum: number;
  readonly epochCorrect: number;
  /** Seconds of the epoch's steps: the pass is not on their path. */
  readonly seconds: number;
}

export class Trainer {
  readonly params: Float32Array;
  readonly optimizer: Optimizer;
  readonly #run: PreparedRun;
  readonly #executor: StepExecutor;
  readonly #events: Events;
  readonly #log: Logger;
  readonly #options: TrainerOptions;
  readonly #evalNet: Network;
  readonly #schedule: LrScheduleOptions;
  /** Steps of the whole run, for schedules that decay to the end. */
  readonly #totalSteps: number;
  readonly #checkpoints: CheckpointWriter;
  /** Position and running sums; exactly what a checkpoint stores. */
  #state: TrainingState;
  #stopRequested = false;
  /** The largest weights version published so far: a rollback publishes under the next. */
  #maxVersion = 0;
  #pendingEval: PendingEvaluation | null = null;
  /** Set by train(): where the state before each step is kept, or null. */
  #snapshots: SnapshotStore | null = null;
  /** (EVAL_BATCH × features), (EVAL_BATCH × label width), and the weights a deferred pass evaluates. */
  #evalX: Float32Array | null = null;
  #evalY: Float32Array | null = null;
  #evalParams: Float32Array | null = null;
  /** The validation figures of the last pass that finished, deferred or not. */
  #lastEval: { loss: number; accuracy: number } | null = null;

  constructor(run: PreparedRun, executor: StepExecutor, log: Logger, options: TrainerOptions) {
    this.#run = run;
    this.#executor = executor;
    this.#events = options.events ?? new Events(log);
    this.#log = log;
    this.#options = options;
    const c = run.config;
    const initial = options.resume?.params ?? options.initialParams;
    // The config names its fields as the optimizer and schedule options do: each takes its own.
    this.optimizer = createOptimizer(initial.length, c);
    this.#schedule = lrScheduleOptions(c);
    this.#totalSteps = c.epochs * stepsPerEpoch(run.split.train.length, c.batchSize);
    // The weights live where the optimizer updates them without a copy (wasm memory for the wasm twins).
    this.params = this.optimizer.params;
    this.params.set(initial);
    if (options.resume !== null) this.optimizer.loadState(options.resume.optimizer);
    this.#state = options.resume?.state ?? {
      epoch: 0,
      stepInEpoch: 0,
      globalStep: 0,
      version: 0,
      epochLossSum: 0,
      epochCorrect: 0,
      epochSamples: 0,
      epochSeconds: 0,
    };
    if ((options.earlyStop ?? 0) > 0 && run.split.val.length === 0)
      throw new ConfigError('--early-stop needs validation samples (--val-fraction > 0)');
    this.#evalNet = new Network(run.spec, EVAL_BATCH, run.config.kernels);
    this.#checkpoints = new CheckpointWriter({ spec: run.spec, config: run.config, datasetHash: run.datasetHash }, log);
  }

  get version(): number {
    return this.#state.version;
  }

  get state(): TrainingState {
    return this.#state;
  }

  /** Stop after the step in progress; train() then resolves with interrupted: true. */
  requestStop(): void {
    this.#stopRequested = true;
  }

  async train(): Promise<TrainSummary> {
    const { config, split } = this.#run;
    const steps = stepsPerEpoch(split.train.length, config.batchSize);
    this.#executor.publish(this.#state.version, this.params);
    this.#maxVersion = this.#state.version;
    const snapshots = (this.#options.snapshots ?? 0) > 0 ? new SnapshotStore(this.#options.snapshots!) : null;
    this.#snapshots = snapshots;
    const firstEpoch = this.#state.epoch;
    let stoppedEarly = false;
    while (!this.#stopRequested) {
      if (this.#state.epoch >= config.epochs || stoppedEarly) {
        this.#finishEvaluation();
        // Checks still pending run before the run is declared done: one may undo steps.
        const undo = this.#executor.settle?.() ?? null;
        if (undo === null) break;
        if (snapshots === null)
          throw new Error(`steps from weights version ${undo} on must be undone, but this trainer keeps no snapshots`);
        this.#rollBack(snapshots, undo);
        stoppedEarly = false;
        continue;
      }
      const epoch = this.#state.epoch;
      const started = performance.now() - this.#state.epochSeconds * 1000;
      const order = epochOrder(split.train, config.seed, epoch);
      const window = {
        start: performance.now(),
        samples: 0,
        loss: 0,
        steps: 0,
        bytes: this.#executor.wireBytes?.() ?? 0,
      };
      let rolledBack = false;
      while (this.#state.stepInEpoch < steps && !this.#stopRequested) {
        const step = this.#state.stepInEpoch;
        const plan = planStep(order, epoch, step, this.#state.globalStep, config.batchSize, config.shardSize);
        let result: PartialGradient;
        try {
          const running = this.#executor.run(plan, this.#state.version);
          // The step's tasks are out: what does not feed them is done while workers compute. The
          // weights and the optimizer state change only once the step's result is in, after this.
          snapshots?.save(this.#state, this.params, this.optimizer.state());
          this.#evaluateBatch();
          result = await running;
        } catch (err) {
          if (err instanceof RollbackRequired) {
            if (snapshots === null) throw new Error(`${err.message}, but this trainer keeps no snapshots`);
            this.#rollBack(snapshots, err.version);
            rolledBack = true;
            break;
          }
          // A diverged step (a worker's gradient, confirmed non-finite by the executor):
          // the weights are still those before it, save them, then report.
          if (err instanceof DivergedError) this.#checkpoint(true);
          if (!(err instanceof StepCancelled)) throw err;
          this.#stopRequested = true;
          break;
        }
        if (result.count !== plan.count)
          throw new Error(`step ${step}: reduced ${result.count} samples, planned ${plan.count}`);
        try {
          this.#applyStep(result, epoch, step);
        } catch (err) {
          // The weights are still those before the bad step: save them, then report.
          if (err instanceof DivergedError) this.#checkpoint(true);
          throw err;
        }
        const s = this.#state;
        this.#state = {
          ...s,
          stepInEpoch: step + 1,
          epochLossSum: s.epochLossSum + result.lossSum,
          epochCorrect: s.epochCorrect + result.correct,
          epochSamples: s.epochSamples + result.count,
          epochSeconds: (performance.now() - started) / 1000,
        };
        window.samples += result.count;
        window.loss += result.lossSum / result.count;
        window.steps++;
        if (this.#state.globalStep % this.#options.logEvery === 0 || step === steps - 1) {
          const now = performance.now();
          this.#events.emit('step', {
            epoch: epoch + 1,
            step: this.#state.globalStep,
            loss: round(window.loss / window.steps),
            lr: this.#lrAt(this.#state.globalStep - 1),
            workers: this.#executor.workerCount,
            samplesPerSec: Math.round((window.samples * 1000) / Math.max(now - window.start, 1e-3)),
            ...(this.#executor.workerThroughput ? { perWorker: this.#executor.workerThroughput() } : {}),
            ...(this.#executor.wireBytes
              ? { bytesPerStep: Math.round((this.#executor.wireBytes() - window.bytes) / window.steps) }
              : {}),
          });
          Object.assign(window, {
            start: now,
            samples: 0,
            loss: 0,
            steps: 0,
            bytes: this.#executor.wireBytes?.() ?? 0,
          });
        }
        const policy = this.#options.checkpoint;
        if (policy !== null && policy.every > 0 && this.#state.globalStep % policy.every === 0 && step < steps - 1)
          this.#checkpoint();
      }
      if (rolledBack) continue; // from the restored epoch and step
      if (this.#state.stepInEpoch < steps) break; // interrupted mid-epoch
      // A pass still under way belongs to an earlier epoch: its line comes first.
      this.#finishEvaluation();
      const s = this.#state;
      const next = { ...s, epoch: epoch + 1, stepInEpoch: 0, epochLossSum: 0, epochCorrect: 0, epochSamples: 0 };
      if (this.#defersEvaluation(epoch)) {
        this.#evalParams ??= new Float32Array(this.params.length);
        this.#evalParams.set(this.params);
        this.#pendingEval = {
          epoch,
          version: s.version,
          params: this.#evalParams,
          next: 0,
          lossSum: 0,
          correct: 0,
          epochSamples: s.epochSamples,
          epochLossSum: s.epochLossSum,
          epochCorrect: s.epochCorrect,
          seconds: (performance.now() - started) / 1000,
        };
        this.#state = { ...next, epochSeconds: 0 };
        continue;
      }
      const best = this.#closeEpoch(epoch, s, this.params, this.#evaluate(), (performance.now() - started) / 1000);
      this.#state = { ...next, epochSeconds: 0, ...best };
      if (this.#options.checkpoint !== null) this.#checkpoint();
      const patience = this.#options.earlyStop ?? 0;
      if (patience > 0 && (this.#state.epochsSinceBest ?? 0) >= patience && this.#state.epoch < config.epochs) {
        this.#log.info(
          { epoch: epoch + 1, bestValLoss: this.#state.bestValLoss, patience },
          'early stop: no better validation loss',
        );
        stoppedEarly = true;
      }
    }
    this.#finishEvaluation();
    const lastEval = this.#lastEval;
    const interrupted = this.#stopRequested && this.#state.epoch < config.epochs;
    if (interrupted) this.#checkpoint(true);
    return {
      epochs: this.#state.epoch - firstEpoch,
      steps: this.#state.globalStep,
      valLoss: lastEval?.loss ?? null,
      valAccuracy: lastEval && this.#run.dataset.kind === 'classification' ? lastEval.accuracy : null,
      weightsHash: weightsHash(this.params),
      interrupted,
      stoppedEarly,
    };
  }

  /**
   * Saves the current state as a checkpoint (the policy's directory, or the rescue
   * directory) so the run can be resumed, e.g. when its --out file could not be written.
   * Returns the path written, or null when there was nowhere to write or it was skipped.
   */
  rescue(): string | null {
    return this.#checkpoint(true);
  }

  /** Writes a checkpoint under the policy; `rescue`: also without one, into rescueDir. */
  #checkpoint(rescue = false): string | null {
    const policy =
      this.#options.checkpoint ??
      (rescue && this.#options.rescueDir ? { dir: this.#options.rescueDir, every: 0, keep: 3 } : null);
    if (policy === null) return null;
    this.#finishEvaluation();
    const ckpt = { state: this.#state, params: this.params, optimizer: this.optimizer.state() };
    return this.#checkpoints.save(policy.dir, ckpt, policy.keep);
  }

  /**
   * Restores the newest snapshot at or before weights version `version` and publishes
   * its weights under a new version; the steps after it run again.
   */
  #rollBack(snapshots: SnapshotStore, version: number): void {
    // Its epoch line is out before the steps are undone, as a pass run in place would be.
    this.#finishEvaluation();
    const point = snapshots.restorePoint(version);
    const fromStep = this.#state.globalStep;
    this.params.set(point.params);
    const optimizer: Record<string, Float32Array> = {};
    for (const [name, buffer] of Object.entries(point.optimizer)) optimizer[name] = buffer.slice();
    this.optimizer.loadState(optimizer);
    snapshots.discardAfter(point.state.version);
    this.#executor.rolledBack?.(point.state.version);
    this.#maxVersion++;
    this.#state = { ...point.state, version: this.#maxVersion };
    this.#executor.publish(this.#state.version, this.params);
    this.#events.emit('rolledBack', {
      fromStep,
      toStep: point.state.globalStep,
      askedVersion: version,
      restoredVersion: point.state.version,
    });
  }

  /** The learning rate of global step `step` (from 0): a function of the step alone, so a resume takes the same. */
  #lrAt(step: number): number {
    return learningRate(this.#schedule, step, this.#totalSteps);
  }

  #applyStep(result: PartialGradient, epoch: number, step: number): void {
    // The batch mean and the update; a non-finite mean leaves the weights untouched.
    const lr = this.#lrAt(this.#state.globalStep);
    if (this.#run.config.clipNorm > 0) clipGlobalNorm(result.grad, result.count, this.#run.config.clipNorm);
    if (!this.optimizer.stepBatch(this.params, result.grad, result.count, lr)) throw new DivergedError(epoch + 1, step);
    const version = ++this.#maxVersion;
    this.#state = { ...this.#state, version, globalStep: this.#state.globalStep + 1 };
    this.#executor.publish(version, this.params);
  }

  /**
   * Emits the epoch line of `epoch` (its training sums in `s`, its validation figures in
   * `val`), tells onBest of better weights, and returns the best-loss bookkeeping.
   */
  #closeEpoch(
    epoch: number,
    s: Pick<TrainingState, 'epochSamples' | 'epochLossSum' | 'epochCorrect' | 'bestValLoss' | 'epochsSinceBest'>,
    params: Float32Array,
    val: { loss: number; accuracy: number } | null,
    seconds: number,
  ): Pick<TrainingState, 'bestValLoss' | 'epochsSinceBest'> {
    const isClassification = this.#run.dataset.kind === 'classification';
    this.#events.emit('epoch', {
      epoch: epoch + 1,
      samples: s.epochSamples,
      trainLoss: round(s.epochLossSum / s.epochSamples),
      trainAccuracy: isClassification ? round(s.epochCorrect / s.epochSamples) : null,
      valLoss: val ? round(val.loss) : null,
      valAccuracy: val && isClassification ? round(val.accuracy) : null,
      seconds: round(seconds, 3),
    });
    const improved = val !== null && val.loss < (s.bestValLoss ?? Number.POSITIVE_INFINITY);
    if (improved && val !== null) this.#options.onBest?.(params, epoch + 1, val.loss);
    return {
      bestValLoss: improved && val !== null ? val.loss : (s.bestValLoss ?? null),
      epochsSinceBest: improved ? 0 : (s.epochsSinceBest ?? 0) + 1,
    };
  }

  /** Whether the validation pass of `epoch`'s end may run during the next epoch's steps. */
  #defersEvaluation(epoch: number): boolean {
    return (
      this.#options.overlapEvaluation === true &&
      this.#options.checkpoint === null &&
      (this.#options.earlyStop ?? 0) === 0 &&
      epoch + 1 < this.#run.config.epochs &&
      this.#run.split.val.length > 0
    );
  }

  /** One batch of the deferred validation pass, if one is under way; closes its epoch after the last. */
  #evaluateBatch(): void {
    const p = this.#pendingEval;
    if (p === null) return;
    const val = this.#run.split.val;
    const stats = this.#evalBatch(p.params, p.next);
    p.lossSum += stats.lossSum;
    p.correct += stats.correct;
    p.next += EVAL_BATCH;
    if (p.next < val.length) return;
    this.#pendingEval = null;
    const figures = { loss: p.lossSum / val.length, accuracy: p.correct / val.length };
    this.#lastEval = figures;
    const best = this.#closeEpoch(p.epoch, { ...this.#state, ...p }, p.params, figures, p.seconds);
    this.#state = { ...this.#state, ...best };
    // Snapshots taken while the pass ran hold the bookkeeping from before it.
    this.#snapshots?.amend(p.version, (state) => ({ ...state, ...best }));
  }

  /** Runs what is left of a deferred validation pass, if any. */
  #finishEvaluation(): void {
    while (this.#pendingEval !== null) this.#evaluateBatch();
  }

  /** Mean loss and accuracy on the validation split, or null when there is none. */
  #evaluate(): { loss: number; accuracy: number } | null {
    const val = this.#run.split.val;
    if (val.length === 0) return null;
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < val.length; start += EVAL_BATCH) {
      const stats = this.#evalBatch(this.params, start);
      lossSum += stats.lossSum;
      correct += stats.correct;
    }
    this.#lastEval = { loss: lossSum / val.length, accuracy: correct / val.length };
    return this.#lastEval;
  }

  /** Loss and correct-answer sums of the validation batch from sample `start`, at weights `params`. */
  #evalBatch(params: Float32Array, start: number): { lossSum: number; correct: number } {
    const { dataset, split } = this.#run;
    this.#evalX ??= new Float32Array(EVAL_BATCH * dataset.numFeatures);
    this.#evalY ??= new Float32Array(EVAL_BATCH * dataset.labelWidth);
    const n = Math.min(EVAL_BATCH, split.val.length - start);
    gatherRows(this.#evalX, this.#evalY, dataset, split.val.subarray(start, start + n));
    return this.#evalNet.evaluate(params, this.#evalX, this.#evalY, n);
  }
}

/**
 * Rescales the gradient sum `grad` (of `count` samples) in place so that the batch mean
 * grad/count has global L2 norm at most `maxNorm` (torch.nn.utils.clip_grad_norm_ on the
 * mean). The norm is summed in double in index order; a non-finite norm leaves grad as
 * it is, for the optimizer to refuse.
 */
export function clipGlobalNorm(grad: Float32Array, count: number, maxNorm: number): void {
  let sq = 0;
  for (let i = 0; i < grad.length; i++) {
    const g = grad[i] / count;
    sq += g * g;
  }
  const norm = Math.sqrt(sq);
  if (!(norm > maxNorm) || !Number.isFinite(norm)) return;
  const scale = maxNorm / norm;
  for (let i = 0; i < grad.length; i++) grad[i] *= scale;
}

/** Hex SHA-256 of the flat weight bytes: equal hashes mean bit-identical weights. */
export function weightsHash(params: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength))
    .digest('hex');
}

function round(v: number, digits = 6): number {
  return Number(v.toPrecision(digits));
}
