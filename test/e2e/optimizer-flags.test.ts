// The optimizer and schedule flags from the command line: Adam under a warmup and a
// cosine decay logs the learning rate each step used; SGD's momentum is refused with
// Adam; a run decaying to its end cannot resume with another --epochs.

import { describe, expect, it } from 'vitest';
import { coordinatorDone, oneLineError, Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

/** 160 training samples, 16 per step: 10 steps per epoch. */
const BLOBS = ['--dataset', 'blobs', '--samples', '200', '--hidden', '8', '--batch-size', '16', '--shard-size', '8'];

describe('optimizer and schedule flags', () => {
  it('adam with warmup then cosine decay: each step line shows the rate that step used', async () => {
    const sb = new Sandbox();
    const r = await sb.run([
      'train',
      '--log-format',
      'json',
      ...BLOBS,
      '--epochs',
      '2',
      '--log-every',
      '1',
      '--optimizer',
      'adam',
      '--lr-schedule',
      'cosine',
      '--warmup-steps',
      '4',
      '--min-lr',
      '0.0001',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lrs = r.lines.filter((l) => l.msg === 'step').map((l) => l.lr as number);
    expect(lrs).toHaveLength(20);
    // Warmup to Adam's default 0.001 in 4 steps, then down to --min-lr at the last step.
    expect(lrs.slice(0, 4)).toEqual([0.00025, 0.0005, 0.00075, 0.001]);
    expect(lrs[4]).toBe(0.001);
    for (let i = 5; i < 20; i++) expect(lrs[i]).toBeLessThan(lrs[i - 1]);
    expect(lrs[19]).toBeGreaterThan(0.0001);
    expect(r.lines.find((l) => l.msg === 'run')?.config).toMatchObject({ optimizer: 'adam', lr: 0.001, beta2: 0.999 });
  });

  it('refuses --momentum with adam, and warmup as long as the run, in one line', async () => {
    const sb = new Sandbox();
    const momentum = await sb.run(['train', ...BLOBS, '--optimizer', 'adamw', '--momentum', '0.5']);
    expect(oneLineError(momentum.stderr)).toBe("flocktrain: --momentum is SGD's; adamw uses --beta1 instead");
    const warmup = await sb.run(['train', ...BLOBS, '--epochs', '1', '--warmup-steps', '10']);
    expect(oneLineError(warmup.stderr)).toBe(
      "flocktrain: --warmup-steps (10) must be below the run's 10 steps (--epochs × steps per epoch)",
    );
  });

  it('a linear decay cannot resume with more epochs; a constant rate can', async () => {
    const sb = new Sandbox();
    const dir = sb.path('ckpt');
    await sb.train([...BLOBS, '--epochs', '1', '--lr-schedule', 'linear', '--checkpoint-dir', dir]);
    const more = await sb.run(['train', ...BLOBS, '--epochs', '2', '--lr-schedule', 'linear', '--resume', dir]);
    expect(oneLineError(more.stderr)).toMatch(
      /made with epochs=1; a linear schedule decays to the run's end, so --epochs cannot change on resume$/,
    );
    const constant = sb.path('ckpt2');
    await sb.train([...BLOBS, '--epochs', '1', '--checkpoint-dir', constant]);
    await sb.train([...BLOBS, '--epochs', '2', '--resume', constant]);
  });

  it('adamw with a step schedule: 1 epoch, then --resume to 2, ends with the hash of 2 epochs straight', async () => {
    const sb = new Sandbox();
    const flags = [
      ...BLOBS,
      '--optimizer',
      'adamw',
      '--weight-decay',
      '0.01',
      '--lr-schedule',
      'step',
      '--lr-step-size',
      '5',
    ];
    const straight = await sb.train([...flags, '--epochs', '2']);
    const dir = sb.path('ckpt');
    await sb.train([...flags, '--epochs', '1', '--checkpoint-dir', dir]);
    const resumed = await sb.train([...flags, '--epochs', '2', '--resume', dir]);
    expect(resumed.weightsHash).toBe(straight.weightsHash);
  });

  it('adam with warmup: two workers give the weights of one process, bit for bit', async () => {
    const sb = new Sandbox();
    const flags = [...BLOBS, '--epochs', '2', '--optimizer', 'adam', '--warmup-steps', '3', '--lr-schedule', 'cosine'];
    const alone = await sb.train(flags);
    const c = await sb.coordinator([...flags, '--workers', '2', '--min-workers', '2']);
    expect((await coordinatorDone(c)).weightsHash).toBe(alone.weightsHash);
  });
});
