// Ctrl-C on `flocktrain train`: computing on its own thread, train must still see the
// signal mid-epoch, stop after the current step, write --out and log done with
// interrupted: true; a long step (a CNN) must not make it wait for the whole run.

import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { Sandbox, useE2eCleanup, WARN } from './harness.js';

useE2eCleanup();

it('SIGINT mid-epoch: train stops after the current step, writes --out, logs done with interrupted: true', async () => {
  const sb = new Sandbox();
  const out = sb.path('interrupted.safetensors');
  // 100 steps per epoch, far more epochs than the test waits for.
  const args = [
    '--dataset',
    'blobs',
    '--samples',
    '5000',
    '--batch-size',
    '40',
    '--shard-size',
    '8',
    '--epochs',
    '200',
  ];
  const p = sb.start(['train', '--log-format', 'json', '--log-every', '1', ...args, '--out', out]);
  const step = await p.waitForMsg('step', (l) => l.epoch === 1 && Number(l.step) >= 5);
  p.signal('SIGINT');
  const exit = await p.waitForExit(15_000);
  expect(exit.code, p.stderr).toBe(0);
  const done = p.lines.find((l) => l.msg === 'done');
  expect(done?.interrupted).toBe(true);
  expect(Number(done?.steps)).toBeGreaterThanOrEqual(Number(step.step));
  // Stopped within the first epoch's 100 steps, not at the end of the run.
  expect(Number(done?.steps)).toBeLessThan(100);
  expect(p.lines.some((l) => l.level === WARN && String(l.msg).startsWith('interrupted'))).toBe(true);
  expect(existsSync(out)).toBe(true);
});
