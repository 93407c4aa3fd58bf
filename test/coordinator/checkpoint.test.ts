// Checkpoints: written atomically, only the newest kept, loaded back exactly, and a
// corrupt or foreign checkpoint refused with one line before anything is loaded. An
// interrupted run resumed from its checkpoint ends bit-identical to an uninterrupted one.

import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  listCheckpoints,
  loadLatestCheckpoint,
  writeCheckpoint,
  type Checkpoint,
} from '../../coordinator/checkpoint.js';
import { resolveConfig, type RunConfig } from '../../coordinator/config.js';
import { LocalExecutor } from '../../coordinator/local-executor.js';
import { prepareRun, type PreparedRun } from '../../coordinator/setup.js';
import { Trainer, type StepExecutor } from '../../coordinator/trainer.js';
import { CheckpointError } from '../../shared/errors.js';
import { initParams } from '../../shared/model/init.js';
import type { PartialGradient } from '../../shared/gradient.js';
import type { StepPlan } from '../../coordinator/plan.js';

const silent = pino({ level: 'silent' });

function run(overrides: Partial<RunConfig> = {}): PreparedRun {
  return prepareRun(
    resolveConfig({
      data: { kind: 'synthetic', name: 'blobs', samples: 400 },
      hidden: [8],
      epochs: 3,
      batchSize: 20,
      shardSize: 5,
      ...overrides,
    }),
  );
}

function identity(r: PreparedRun) {
  return { spec: r.spec, config: r.config, datasetHash: r.datasetHash };
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'flocktrain-ckpt-'));
}

function sample(r: PreparedRun, step: number): Checkpoint {
  const params = initParams(r.spec, r.config.seed);
  return {
    state: {
      epoch: 1,
      stepInEpoch: 3,
      globalStep: step,
      version: step,
      epochLossSum: 12.5,
      epochCorrect: 40,
      epochSamples: 60,
      epochSeconds: 0.25,
    },
    params,
    optimizer: { momentum: params.map((v) => v / 2) },
  };
}

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
    if (++this.#steps === this.stopAfter) this.trainer!.requestStop();
    return this.inner.run(plan, version);
  }
}

describe('checkpoint files', () => {
  it('round-trip the state, weights and optimizer state exactly, and keep only the newest K', () => {
    const r = run();
    const dir = tmp();
    for (const step of [5, 10, 15, 20]) writeCheckpoint(dir, identity(r), sample(r, step), 2);
    expect(listCheckpoints(dir)).toEqual(['ckpt-000000015.safetensors', 'ckpt-000000020.safetensors']);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp'))).toEqual([]);
    const { path, checkpoint } = loadLatestCheckpoint(dir, identity(r));
    expect(path).toBe(join(dir, 'ckpt-000000020.safetensors'));
    const want = sample(r, 20);
    expect(checkpoint.state).toEqual(want.state);
    expect(Buffer.from(checkpoint.params.buffer).equals(Buffer.from(want.params.buffer))).toBe(true);
    expect(Buffer.from(checkpoint.optimizer.momentum.buffer).equals(Buffer.from(want.optimizer.momentum.buffer))).toBe(
      true,
    );
  });

  it('refuses a file whose tensor bytes were changed (checksum)', () => {
    const r = run();
    const dir = tmp();
    const path = writeCheckpoint(dir, identity(r), sample(r, 7), 3);
    const bytes = readFileSync(path);
    bytes[bytes.length - 3] ^= 0x40;
    writeFileSync(path, bytes);
    expect(() => loadLatestCheckpoint(dir, identity(r))).toThrow(CheckpointError);
    expect(() => loadLatestCheckpoint(dir, identity(r))).toThrow(/corrupt/);
  });

  it('refuses a truncated file and a file that is not a checkpoint, with one line naming the file', () => {
    const r = run();
    const dir = tmp();
    const path = writeCheckpoint(dir, identity(r), sample(r, 7), 3);
    writeFileSync(path, readFileSync(path).subarray(0, 100));
    let message = '';
    try {
      loadLatestCheckpoint(dir, identity(r));
    } catch (err) {
      expect(err).toBeInstanceOf(CheckpointError);
      message = (err as Error).message;
    }
    expect(message).toContain(path);
    expect(message).not.toContain('\n');
    expect(() => loadLatestCheckpoint(tmp(), identity(r))).toThrow(/no checkpoint/);
  });

  it('refuses a checkpoint of another model, dataset or config, saying what differs', () => {
    const r = run();
    const dir = tmp();
    writeCheckpoint(dir, identity(r), sample(r, 7), 3);
    expect(() => loadLatestCheckpoint(dir, identity(run({ hidden: [9] })))).toThrow(/made for model/);
    expect(() =>
      loadLatestCheckpoint(dir, identity(run({ data: { kind: 'synthetic', name: 'blobs', samples: 500 } }))),
    ).toThrow(/made for dataset/);
    expect(() => loadLatestCheckpoint(dir, identity(run({ lr: 0.05 })))).toThrow(/lr=0.1, this run has lr=0.05/);
    // Only --epochs may change: a run may be extended.
    expect(() => loadLatestCheckpoint(dir, identity(run({ epochs: 9 })))).not.toThrow();
  });
});

describe('interrupt and resume', () => {
  it('a run stopped mid-epoch and resumed from its checkpoint ends bit-identical to an uninterrupted one', async () => {
    const r = run({ momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
    const init = initParams(r.spec, r.config.seed);
    const whole = new Trainer(r, new LocalExecutor(r), silent, {
      logEvery: 1000,
      initialParams: init,
      checkpoint: null,
      resume: null,
    });
    const reference = await whole.train();

    const dir = tmp();
    const stopping = new StoppingExecutor(new LocalExecutor(r), 23); // epoch 2, mid-way
    const first = new Trainer(r, stopping, silent, {
      logEvery: 1000,
      initialParams: init,
      checkpoint: { dir, every: 0, keep: 3 },
      resume: null,
    });
    stopping.trainer = first;
    const stopped = await first.train();
    expect(stopped.interrupted).toBe(true);
    expect(stopped.steps).toBe(23);

    const { checkpoint } = loadLatestCheckpoint(dir, identity(r));
    expect(checkpoint.state.globalStep).toBe(23);
    const second = new Trainer(r, new LocalExecutor(r), silent, {
      logEvery: 1000,
      initialParams: init,
      checkpoint: { dir, every: 0, keep: 3 },
      resume: checkpoint,
    });
    const resumed = await second.train();
    expect(resumed.steps).toBe(reference.steps);
    expect(resumed.weightsHash).toBe(reference.weightsHash);
  });
});
