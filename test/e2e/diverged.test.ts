// A run that diverges (a learning rate far too high) stops cleanly, distributed as in
// one process: exit code 1, a `diverged` error line, and the last good state saved
// (to ./flocktrain-checkpoints when no --checkpoint-dir was given), at the same step.
// Distributed, the worker reports its non-finite gradient instead of sending NaNs,
// and the coordinator confirms it by recomputing the task before giving up.

import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Sandbox, useE2eCleanup, type LogLine } from './harness.js';

useE2eCleanup();

const DIVERGING = ['--dataset', 'blobs', '--samples', '600', '--hidden', '64', '--lr', '1e6', '--epochs', '2'];

function checkpointStep(lines: readonly LogLine[]): number {
  const rescue = lines.filter((l) => l.msg === 'checkpoint');
  expect(rescue.length, 'no checkpoint line').toBeGreaterThan(0);
  return Number(rescue[rescue.length - 1].step);
}

describe('a diverging run', () => {
  it('stops with exit 1 and its last good state saved, in train and with a worker, at the same step', async () => {
    const one = new Sandbox();
    const train = await one.run(['train', '--log-format', 'json', ...DIVERGING]);
    expect(train.code).toBe(1);
    expect(train.lines.some((l) => l.msg === 'diverged')).toBe(true);
    expect(readdirSync(one.path('flocktrain-checkpoints')).length).toBeGreaterThan(0);

    const fleet = new Sandbox();
    const c = await fleet.coordinator([...DIVERGING, '--min-workers', '1']);
    const worker = fleet.worker(c, 'diverging');
    const exit = await c.proc.waitForExit(30_000);
    expect(exit.code, c.proc.stderr).toBe(1);
    const lines = c.proc.lines;
    expect(lines.some((l) => l.msg === 'diverged')).toBe(true);
    expect(
      lines.some((l) => l.msg === 'rejected'),
      'an honest worker must not be rejected',
    ).toBe(false);
    expect(existsSync(fleet.path('flocktrain-checkpoints'))).toBe(true);
    expect(checkpointStep(lines)).toBe(checkpointStep(train.lines));
    expect((await worker.waitForExit(10_000)).code).toBe(0);
  });
});
