// coordinator/trainer.ts on a non-finite gradient: the step throws DivergedError
// before any weight changes, and the rescue checkpoint holds the weights and momentum
// of the last good step, from which a resume continues.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadLatestCheckpoint } from '../../coordinator/checkpoint.js';
import { resolveConfig } from '../../coordinator/config.js';
import { Events } from '../../coordinator/events.js';
import { LocalExecutor } from '../../coordinator/local-executor.js';
import type { StepPlan } from '../../coordinator/plan.js';
import { prepareRun } from '../../coordinator/setup.js';
import { clipGlobalNorm, Trainer, weightsHash, type StepExecutor } from '../../coordinator/trainer.js';
import { DivergedError } from '../../shared/errors.js';
import type { PartialGradient } from '../../shared/gradient.js';
import type { KernelSetName } from '../../shared/kernels/kernel-set.js';
import { initParams } from '../../shared/model/init.js';

const silent = pino({ level: 'silent' });

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.slice().buffer);
}

/** Computes steps locally, keeps a copy of every published version, and poisons one gradient sum. */
class PoisoningExecutor implements StepExecutor {
  readonly workerCount = 1;
  readonly published = new Map<number, Float32Array>();
  #steps = 0;
  constructor(
    private readonly inner: LocalExecutor,
    private readonly poisonStep: number,
    private readonly value: number,
    private readonly index: number,
  ) {}
  publish(version: number, weights: Float32Array): void {
    this.published.set(version, weights.slice());
    this.inner.publish(version, weights);
  }
  async run(plan: StepPlan, version: number): Promise<PartialGradient> {
    const result = await this.inner.run(plan, version);
    if (++this.#steps !== this.poisonStep) return result;
    const grad = result.grad.slice();
    grad[this.index] = this.value;
    return { ...result, grad };
  }
}

describe('Trainer on a non-finite gradient', () => {
  for (const kernels of ['wasm', 'js'] as KernelSetName[]) {
    for (const [value, index] of [
      [NaN, 0],
      [Infinity, 41],
      [-Infinity, -1],
    ] as const) {
      it(`--kernels ${kernels}, ${value} at ${index}: DivergedError, the last good state kept and saved`, async () => {
        const run = prepareRun(
          resolveConfig({
            data: { kind: 'synthetic', name: 'spirals', samples: 300 },
            hidden: [13],
            epochs: 2,
            batchSize: 30,
            shardSize: 7,
            momentum: 0.9,
            weightDecay: 1e-3,
            kernels,
          }),
        );
        const init = initParams(run.spec, run.config.seed);
        expect(index).toBeLessThan(init.length);
        const poisonStep = 6;
        const executor = new PoisoningExecutor(
          new LocalExecutor(run),
          poisonStep,
          value,
          index < 0 ? init.length + index : index,
        );
        const dir = mkdtempSync(join(tmpdir(), 'flocktrain-diverged-'));
        const trainer = new Trainer(run, executor, silent, {
          logEvery: 1000,
          initialParams: init,
          checkpoint: null,
          resume: null,
          rescueDir: dir,
        });

        await expect(trainer.train()).rejects.toThrow(DivergedError);
        const lastGood = executor.published.get(poisonStep - 1)!;
        expect(trainer.version).toBe(poisonStep - 1);
        expect(bits(trainer.params)).toEqual(bits(lastGood));

        const { checkpoint } = loadLatestCheckpoint(dir, {
          spec: run.spec,
          config: run.config,
          datasetHash: run.datasetHash,
        });
        expect(checkpoint.state.globalStep).toBe(poisonStep - 1);
        expect(bits(checkpoint.params)).toEqual(bits(lastGood));
        expect(bits(checkpoint.optimizer.momentum)).toEqual(bits(trainer.optimizer.state().momentum));

        // Resumed from the rescue checkpoint with a healthy executor, the run ends where
        // an unpoisoned run ends.
        const resumed = await new Trainer(run, new LocalExecutor(run), silent, {
          logEvery: 1000,
          initialParams: init,
          checkpoint: null,
          resume: checkpoint,
        }).train();
        const whole = await new Trainer(run, new LocalExecutor(run), silent, {
          logEvery: 1000,
          initialParams: init,
          checkpoint: null,
          resume: null,
        }).train();
        expect(resumed.weightsHash).toBe(whole.weightsHash);
      });
    }
  }
});

describe('Trainer with overlapEvaluation', () => {
  it('validates each epoch during the next one with the same figures, epoch lines and weights', async () => {
    const run = prepareRun(
      resolveConfig({
        data: { kind: 'synthetic', name: 'spirals', samples: 900 },
        hidden: [13],
        epochs: 3,
        batchSize: 30,
        shardSize: 7,
        momentum: 0.9,
        valFraction: 0.6,
      }),
    );
    // 540 validation samples: three batches, so a deferred pass spans three steps.
    expect(run.split.val.length).toBeGreaterThan(512);
    const train = async (overlapEvaluation: boolean) => {
      const events = new Events(silent);
      const lines: string[] = [];
      events.on('epoch', (e) => lines.push(JSON.stringify({ ...e, seconds: 0 })));
      const best: string[] = [];
      const summary = await new Trainer(run, new LocalExecutor(run), silent, {
        logEvery: 1000,
        initialParams: initParams(run.spec, run.config.seed),
        checkpoint: null,
        resume: null,
        events,
        overlapEvaluation,
        onBest: (params, epoch) => best.push(`${epoch} ${weightsHash(params)}`),
      }).train();
      return { summary, lines, best };
    };
    const inPlace = await train(false);
    const overlapped = await train(true);
    expect(inPlace.lines).toHaveLength(3);
    expect(overlapped.lines).toEqual(inPlace.lines);
    expect(inPlace.best.length).toBeGreaterThan(0);
    expect(overlapped.best).toEqual(inPlace.best);
    expect(overlapped.summary).toEqual(inPlace.summary);
  });
});

describe('clipGlobalNorm', () => {
  it('rescales the batch mean to the bound only when it is longer', () => {
    // Sum of 2 samples: mean (3, 4) has norm 5.
    const grad = Float32Array.from([6, 8]);
    clipGlobalNorm(grad, 2, 10);
    expect(Array.from(grad)).toEqual([6, 8]);
    clipGlobalNorm(grad, 2, 1);
    // Mean (0.6, 0.8): norm 1; the sum stays a sum of 2 samples.
    expect(Array.from(grad)).toEqual([Math.fround(1.2), Math.fround(1.6)]);
  });
});
