// The training loop: schedule → collect → reduce → optimizer.step → broadcast.
//
// This is a parameter-server design, not DDP's all-reduce: the coordinator owns the
// weights and the optimizer state, hands each step's micro-shards to an executor
// (remote workers, or this process for `flocktrain train`), receives the step's
// reduced gradient sum, takes the batch mean, applies the optimizer and publishes the
// new weights under a new version. Because the data order, the shard cut and the
// reduction tree are fixed by the config and seed, the weights after every step are
// the same whatever executes the shards.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { PartialGradient } from '../shared/gradient.js';
import { Network } from '../shared/model/network.js';
import type { Optimizer } from '../shared/optim/optimizer.js';
import { Sgd } from '../shared/optim/sgd.js';
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
}

export interface TrainerOptions {
  /** Log a step line every this many steps (the last step of an epoch is always logged). */
  readonly logEvery: number;
  /** Initial parameters (from --init); default: drawn from the seed. */
  readonly initialParams: Float32Array;
}

export interface TrainSummary {
  readonly epochs: number;
  readonly steps: number;
  readonly valLoss: number | null;
  readonly valAccuracy: number | null;
  readonly weightsHash: string;
  /** True when training stopped early on request (Ctrl-C). */
  readonly interrupted: boolean;
}

export class DivergedError extends Error {
  constructor(epoch: number, step: number) {
    super(`the gradient at epoch ${epoch} step ${step} is not finite: training diverged (try a lower --lr)`);
    this.name = 'DivergedError';
  }
}

/** Thrown by an executor's run() when the step was abandoned (shutdown while it waited). */
export class StepCancelled extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'StepCancelled';
  }
}

const EVAL_BATCH = 256;

export class Trainer {
  readonly params: Float32Array;
  readonly optimizer: Optimizer;
  readonly #run: PreparedRun;
  readonly #executor: StepExecutor;
  readonly #log: Logger;
  readonly #options: TrainerOptions;
  readonly #evalNet: Network;
  readonly #meanGrad: Float32Array;
  #version = 0;
  #stepsDone = 0;
  #stopRequested = false;

  constructor(run: PreparedRun, executor: StepExecutor, log: Logger, options: TrainerOptions) {
    this.#run = run;
    this.#executor = executor;
    this.#log = log;
    this.#options = options;
    this.params = options.initialParams.slice();
    const c = run.config;
    this.optimizer = new Sgd(this.params.length, { lr: c.lr, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay });
    this.#evalNet = new Network(run.spec, EVAL_BATCH);
    this.#meanGrad = new Float32Array(this.params.length);
  }

  get version(): number {
    return this.#version;
  }

  /** Stop after the step in progress; train() then resolves with interrupted: true. */
  requestStop(): void {
    this.#stopRequested = true;
  }

  async train(): Promise<TrainSummary> {
    const { config, split } = this.#run;
    const steps = stepsPerEpoch(split.train.length, config.batchSize);
    this.#executor.publish(this.#version, this.params);
    let lastEval: { loss: number; accuracy: number } | null = null;
    let epochsDone = 0;
    for (let epoch = 0; epoch < config.epochs && !this.#stopRequested; epoch++) {
      const started = performance.now();
      const order = epochOrder(split.train, config.seed, epoch);
      let lossSum = 0;
      let correct = 0;
      let windowStart = performance.now();
      let windowSamples = 0;
      let windowLoss = 0;
      let windowSteps = 0;
      let step = 0;
      for (; step < steps && !this.#stopRequested; step++) {
        const plan = planStep(order, epoch, step, config.batchSize, config.shardSize);
        let result: PartialGradient;
        try {
          result = await this.#executor.run(plan, this.#version);
        } catch (err) {
          if (!(err instanceof StepCancelled)) throw err;
          this.#stopRequested = true;
          break;
        }
        if (result.count !== plan.count) throw new Error(`step ${step}: reduced ${result.count} samples, planned ${plan.count}`);
        this.#applyStep(result, epoch, step);
        lossSum += result.lossSum;
        correct += result.correct;
        windowSamples += result.count;
        windowLoss += result.lossSum / result.count;
        windowSteps++;
        if (this.#stepsDone % this.#options.logEvery === 0 || step === steps - 1) {
          const now = performance.now();
          this.#log.info({
            epoch: epoch + 1,
            step: this.#stepsDone,
            loss: round(windowLoss / windowSteps),
            lr: config.lr,
            workers: this.#executor.workerCount,
            samplesPerSec: Math.round((windowSamples * 1000) / Math.max(now - windowStart, 1e-3)),
          }, 'step');
          windowStart = now;
          windowSamples = 0;
          windowLoss = 0;
          windowSteps = 0;
        }
      }
      if (step < steps) break; // interrupted mid-epoch: the epoch is not complete
      epochsDone++;
      lastEval = this.#evaluate();
      const trainCount = split.train.length;
      this.#log.info({
        epoch: epoch + 1,
        trainLoss: round(lossSum / trainCount),
        trainAccuracy: this.#run.dataset.kind === 'classification' ? round(correct / trainCount) : null,
        valLoss: lastEval ? round(lastEval.loss) : null,
        valAccuracy: lastEval && this.#run.dataset.kind === 'classification' ? round(lastEval.accuracy) : null,
        seconds: round((performance.now() - started) / 1000, 3),
      }, 'epoch');
    }
    return {
      epochs: epochsDone,
      steps: this.#stepsDone,
      valLoss: lastEval?.loss ?? null,
      valAccuracy: lastEval && this.#run.dataset.kind === 'classification' ? lastEval.accuracy : null,
      weightsHash: weightsHash(this.params),
      interrupted: this.#stopRequested,
    };
  }

  #applyStep(result: PartialGradient, epoch: number, step: number): void {
    const g = this.#meanGrad;
    const n = result.count;
    for (let i = 0; i < g.length; i++) {
      const v = result.grad[i] / n;
      if (v - v !== 0) throw new DivergedError(epoch + 1, step);
      g[i] = v;
    }
    this.optimizer.step(this.params, g);
    this.#version++;
    this.#stepsDone++;
    this.#executor.publish(this.#version, this.params);
  }

  /** Mean loss and accuracy on the validation split, or null when there is none. */
  #evaluate(): { loss: number; accuracy: number } | null {
    const { dataset, split } = this.#run;
    const val = split.val;
    if (val.length === 0) return null;
    const F = dataset.numFeatures;
    const L = dataset.labelWidth;
    const x = new Float32Array(EVAL_BATCH * F);
    const y = new Float32Array(EVAL_BATCH * L);
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < val.length; start += EVAL_BATCH) {
      const n = Math.min(EVAL_BATCH, val.length - start);
      for (let r = 0; r < n; r++) {
        const s = val[start + r];
        x.set(dataset.features.subarray(s * F, s * F + F), r * F);
        y.set(dataset.labels.subarray(s * L, s * L + L), r * L);
      }
      const stats = this.#evalNet.evaluate(this.params, x, y, n);
      lossSum += stats.lossSum;
      correct += stats.correct;
    }
    return { loss: lossSum / val.length, accuracy: correct / val.length };
  }
}

/** Hex SHA-256 of the flat weight bytes: equal hashes mean bit-identical weights. */
export function weightsHash(params: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength)).digest('hex');
}

function round(v: number, digits = 6): number {
  return Number(v.toPrecision(digits));
}
