// The kernel set is part of the run: `flocktrain train --kernels wasm` and a
// coordinator with two wasm workers end with the same weights on the default MNIST
// MLP (whose 784×128 layer runs the SIMD tiles, not only their edges), every worker
// computes with the set its welcome names, and js and wasm runs differ (which is
// why the choice is carried to the workers rather than left to each of them).

import { describe, expect, it } from 'vitest';
import { coordinatorDone, Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

const MNIST = ['--epochs', '1', '--momentum', '0', '--log-every', '50'];
const BLOBS = [
  '--dataset',
  'blobs',
  '--samples',
  '400',
  '--hidden',
  '16',
  '--epochs',
  '1',
  '--batch-size',
  '40',
  '--shard-size',
  '8',
];

describe('kernel sets end to end', () => {
  it('train --kernels wasm = coordinator + 2 workers (wasm), MNIST 784-128-10, one epoch', async () => {
    const sb = new Sandbox();
    const [ref, got] = await Promise.all([
      sb.train([...MNIST, '--kernels', 'wasm'], 120_000),
      (async () => {
        const c = await sb.coordinator([...MNIST, '--kernels', 'wasm', '--min-workers', '2']);
        const workers = [sb.worker(c, 'k-1'), sb.worker(c, 'k-2')];
        const done = await coordinatorDone(c, 120_000);
        for (const w of workers) {
          expect((await w.waitForExit()).code, w.stderr).toBe(0);
          const welcomed = w.lines.find((l) => l.msg === 'welcomed; loading dataset');
          expect(welcomed?.kernels).toBe('wasm');
        }
        return done;
      })(),
    ]);
    expect(got.weightsHash).toMatch(/^[0-9a-f]{64}$/);
    expect(got.weightsHash).toBe(ref.weightsHash);
    expect(Number(ref.valAccuracy)).toBeGreaterThan(0.85);
  });

  it('train --kernels js = coordinator + 2 workers (js), and differs from wasm', async () => {
    const sb = new Sandbox();
    const c = await sb.coordinator([...BLOBS, '--kernels', 'js', '--min-workers', '2']);
    const workers = [sb.worker(c, 'j-1'), sb.worker(c, 'j-2')];
    const [js, wasm, distributed] = await Promise.all([
      sb.train([...BLOBS, '--kernels', 'js']),
      sb.train([...BLOBS, '--kernels', 'wasm']),
      coordinatorDone(c),
    ]);
    for (const w of workers) expect((await w.waitForExit()).code, w.stderr).toBe(0);
    expect(distributed.weightsHash).toBe(js.weightsHash);
    expect(wasm.weightsHash).not.toBe(js.weightsHash);
    // Same training, only rounding differs: the validation loss barely moves.
    expect(Math.abs(Number(wasm.valLoss) - Number(js.valLoss))).toBeLessThan(1e-3);
  });

  it('--kernels auto is wasm here; a bad value is one line naming the flag (exit 1, as any bad value)', async () => {
    const sb = new Sandbox();
    const [auto, wasm] = await Promise.all([sb.train(BLOBS), sb.train([...BLOBS, '--kernels', 'wasm'])]);
    expect(auto.weightsHash).toBe(wasm.weightsHash);
    const bad = await sb.run(['train', ...BLOBS, '--kernels', 'cuda']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe('flocktrain: --kernels must be one of auto, wasm, js, got "cuda"');
  });
});
