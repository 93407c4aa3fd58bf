// --wire-dtype bf16 end to end: the bit-identical contract holds within the dtype
// (train = coordinator + K workers, whatever K), the result is not the f32 one, it
// still learns, and the coordinator's own count of bytes per step halves.

import { describe, expect, it } from 'vitest';
import { coordinatorDone, Sandbox, useE2eCleanup, type CliProcess, type LogLine } from './harness.js';

useE2eCleanup();

// 5 shards per step, so 2 and 3 workers hold ragged runs of the reduction tree.
const BLOBS = [
  '--dataset',
  'blobs',
  '--samples',
  '600',
  '--hidden',
  '64,64',
  '--epochs',
  '2',
  '--batch-size',
  '40',
  '--shard-size',
  '8',
  '--momentum',
  '0.5',
];

async function distributed(args: readonly string[], k: number): Promise<{ done: LogLine; steps: LogLine[] }> {
  const sb = new Sandbox();
  const c = await sb.coordinator([...args, '--min-workers', String(k), '--log-every', '1']);
  const workers: CliProcess[] = [];
  for (let i = 1; i <= k; i++) workers.push(sb.worker(c, `bf16-${i}`));
  const done = await coordinatorDone(c);
  for (const w of workers) expect((await w.waitForExit()).code, `worker stderr: ${w.stderr}`).toBe(0);
  return { done, steps: c.proc.linesWithMsg('step') };
}

/** Median bytesPerStep of the step lines (the first steps also carry the weights sent at join). */
function medianBytes(steps: readonly LogLine[]): number {
  const b = steps.map((s) => Number(s.bytesPerStep)).sort((x, y) => x - y);
  return b[b.length >> 1];
}

describe('--wire-dtype bf16', () => {
  it('train = 2 and 3 workers bit for bit, differs from f32, learns, and moves half the bytes', async () => {
    const bf16 = [...BLOBS, '--wire-dtype', 'bf16'];
    const [ref, f32Ref, two, three, bf16One, f32One] = await Promise.all([
      new Sandbox().train(bf16),
      new Sandbox().train(BLOBS),
      distributed(bf16, 2),
      distributed(bf16, 3),
      distributed(bf16, 1),
      distributed(BLOBS, 1),
    ]);
    expect(two.done.weightsHash).toBe(ref.weightsHash);
    expect(three.done.weightsHash).toBe(ref.weightsHash);
    expect(bf16One.done.weightsHash).toBe(ref.weightsHash);
    expect(f32One.done.weightsHash).toBe(f32Ref.weightsHash);
    expect(ref.weightsHash).not.toBe(f32Ref.weightsHash);
    // Blobs are easy: both dtypes should separate them nearly perfectly.
    expect(Number(ref.valAccuracy)).toBeGreaterThan(0.9);
    expect(Math.abs(Number(ref.valAccuracy) - Number(f32Ref.valAccuracy))).toBeLessThan(0.05);
    // One worker gets every step's work: one weights message down, one gradient up,
    // whatever the timing, so the two runs' bytes compare like for like.
    const ratio = medianBytes(bf16One.steps) / medianBytes(f32One.steps);
    expect(ratio).toBeGreaterThan(0.45);
    expect(ratio).toBeLessThan(0.55);
  });

  it('is refused with a one-line error when not f32 or bf16', async () => {
    const r = await new Sandbox().run(['train', '--wire-dtype', 'f16']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/wire-dtype/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
