// Adam's state through the checkpoint files the coordinator writes (moments of P floats
// and a step count of two), and a whole run with AdamW, warmup and a cosine schedule,
// interrupted mid-epoch and resumed from its checkpoint: the same weights, to the bit,
// as the run that never stopped.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadLatestCheckpoint, writeCheckpoint } from '../../../coordinator/checkpoint.js';
import { resolveConfig, type RunConfig } from '../../../coordinator/config.js';
import { LocalExecutor } from '../../../coordinator/local-executor.js';
import type { StepPlan } from '../../../coordinator/plan.js';
import { prepareRun, type PreparedRun } from '../../../coordinator/setup.js';
import { type StepExecutor, Trainer } from '../../../coordinator/trainer.js';
import type { PartialGradient } from '../../../shared/gradient.js';
import { initParams } from '../../../shared/model/init.js';
import { paramLayout } from '../../../shared/model/spec.js';
import type { OptimizerOptions } from '../../../shared/optim/create.js';
import type { LrScheduleOptions } from '../../../shared/optim/schedule.js';
import { WasmAdam } from '../../../shared/optim/wasm-adam.js';
import { deriveRng } from '../../../shared/rng.js';
import { bits, randomSum } from './random.js';

const silent = pino({ level: 'silent' });

/** The optimizer and schedule fields the run configuration passes through to them. */
type OptimizerConfig = Partial<OptimizerOptions & LrScheduleOptions>;

function run(optim: OptimizerConfig): PreparedRun {
  return prepareRun(
    resolveConfig({
      data: { kind: 'synthetic', name: 'blobs', samples: 400 },
      hidden: [8],
      epochs: 3,
      batchSize: 20,
      shardSize: 5,
      ...(optim as Partial<RunConfig>),
    }),
  );
}

function identity(r: PreparedRun) {
  return { spec: r.spec, config: r.config, datasetHash: r.datasetHash };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'flocktrain-optim-'));

/** Stops the trainer (as Ctrl-C would) once `stopAfter` steps have been computed. */
class StoppingExecutor implements StepExecutor {
  readonly workerCount = 1;
  trainer: Trainer | null = null;
  #steps = 0;
  constructor(
    private readonly inner: LocalExecutor,
    private readonly stopAfter: number,
  ) {}
  publish(version: number, weights: Float32Array): void {
    this.inner.publish(version, weights);
  }
  async run(plan: StepPlan, version: number): Promise<PartialGradient> {
    if (++this.#steps === this.stopAfter) this.trainer?.requestStop();
    return this.inner.run(plan, version);
  }
}

describe('Adam state in checkpoints', () => {
  it('round-trips m, v and the step count exactly, and the restored optimizer goes on with the same bits', () => {
    const r = run({ optimizer: 'adam' });
    const P = paramLayout(r.spec).totalSize;
    const rng = deriveRng(7, 'ckpt');
    const a = new WasmAdam(P, { lr: 0.01 });
    a.params.set(initParams(r.spec, r.config.seed));
    for (let s = 0; s < 3; s++) a.stepBatch(a.params, randomSum(rng, P, 20), 20);
    const dir = tmp();
    const state = {
      epoch: 0,
      stepInEpoch: 3,
      globalStep: 3,
      version: 3,
      epochLossSum: 1,
      epochCorrect: 2,
      epochSamples: 60,
      epochSeconds: 0.5,
    };
    writeCheckpoint(dir, identity(r), { state, params: a.params, optimizer: a.state() }, 2);
    const { checkpoint } = loadLatestCheckpoint(dir, identity(r));
    expect(Object.keys(checkpoint.optimizer).sort()).toEqual(['m', 'step', 'v']);
    expect(Array.from(checkpoint.optimizer.step)).toEqual([3, 0]);
    for (const name of ['m', 'v']) expect(bits(checkpoint.optimizer[name])).toEqual(bits(a.state()[name]));

    const b = new WasmAdam(P, { lr: 0.01 });
    b.params.set(checkpoint.params);
    b.loadState(checkpoint.optimizer);
    const sum = randomSum(rng, P, 20);
    a.stepBatch(a.params, sum, 20);
    b.stepBatch(b.params, sum, 20);
    expect(bits(b.params)).toEqual(bits(a.params));
  });
});

describe('interrupt and resume with Adam and a schedule', () => {
  const setups: [string, OptimizerConfig][] = [
    [
      'adamw, warmup 6 then cosine',
      { optimizer: 'adamw', lr: 0.01, weightDecay: 0.01, lrSchedule: 'cosine', warmupSteps: 6 },
    ],
    [
      'adam with L2, step decay',
      { optimizer: 'adam', lr: 0.02, weightDecay: 1e-3, lrSchedule: 'step', lrStepSize: 10, lrGamma: 0.5 },
    ],
  ];
  for (const [name, optim] of setups) {
    it(`${name}: a run stopped mid-epoch and resumed ends bit-identical to an uninterrupted one`, async () => {
      const r = run(optim);
      const init = initParams(r.spec, r.config.seed);
      const options = { logEvery: 1000, initialParams: init };
      const whole = new Trainer(r, new LocalExecutor(r), silent, { ...options, checkpoint: null, resume: null });
      expect(whole.optimizer).toBeInstanceOf(WasmAdam);
      const reference = await whole.train();

      const dir = tmp();
      const stopping = new StoppingExecutor(new LocalExecutor(r), 23); // epoch 2, mid-way
      const first = new Trainer(r, stopping, silent, {
        ...options,
        checkpoint: { dir, every: 0, keep: 3 },
        resume: null,
      });
      stopping.trainer = first;
      expect((await first.train()).steps).toBe(23);

      const { checkpoint } = loadLatestCheckpoint(dir, identity(r));
      expect(Array.from(checkpoint.optimizer.step)).toEqual([23, 0]);
      const second = new Trainer(r, new LocalExecutor(r), silent, {
        ...options,
        checkpoint: { dir, every: 0, keep: 3 },
        resume: checkpoint,
      });
      const resumed = await second.train();
      expect(resumed.steps).toBe(reference.steps);
      expect(resumed.weightsHash).toBe(reference.weightsHash);

      // The schedule did take part: the same optimizer at a constant lr ends elsewhere.
      const flat = run({ ...optim, lrSchedule: 'constant', warmupSteps: 0 });
      const constant = await new Trainer(flat, new LocalExecutor(flat), silent, {
        ...options,
        checkpoint: null,
        resume: null,
      }).train();
      expect(constant.weightsHash).not.toBe(reference.weightsHash);
    });
  }
});
