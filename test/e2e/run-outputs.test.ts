// What a run writes besides its final weights, and how it may end early: --early-stop
// stops after PATIENCE epochs without a better validation loss, --out-best holds the
// weights of the best one (evaluate gives back its loss), --metrics-csv holds the step
// and epoch lines as rows, and --clip-norm clips only when the gradient is longer.

import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../coordinator/config.js';
import { prepareRun } from '../../coordinator/setup.js';
import { coordinatorDone, Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

function flowersCsv(): string {
  const lines = ['width,height,species'];
  for (let i = 0; i < 200; i++) {
    const c = i % 3;
    const width = (c * 2 + 1.5 * Math.sin(i)).toFixed(3);
    const height = (c * 20 + 15 * Math.cos(3 * i)).toFixed(3);
    lines.push(`${width},${height},${['iris', 'rosa', 'viola'][c]}`);
  }
  return `${lines.join('\n')}\n`;
}

const SHAPE = ['--hidden', '8', '--batch-size', '16', '--shard-size', '8'];

describe('run outputs', () => {
  it('--early-stop stops after PATIENCE epochs without a better val loss; --out-best holds the best', async () => {
    const sb = new Sandbox();
    const data = sb.path('flowers.csv');
    writeFileSync(data, flowersCsv());
    const best = sb.path('best.safetensors');
    const flags = ['--csv', data, '--label-column', 'species', ...SHAPE, '--lr', '2', '--epochs', '40'];
    const r = await sb.run(['train', '--log-format', 'json', ...flags, '--early-stop', '2', '--out-best', best]);
    expect(r.code, r.stderr).toBe(0);
    const epochs = r.lines.filter((l) => l.msg === 'epoch');
    const bests = r.lines.filter((l) => l.msg === 'best weights so far').map((l) => l.epoch);
    // A best line exactly at each new minimum of the validation loss.
    let min = Number.POSITIVE_INFINITY;
    const minima: unknown[] = [];
    for (const e of epochs) {
      if ((e.valLoss as number) < min) {
        min = e.valLoss as number;
        minima.push(e.epoch);
      }
    }
    expect(bests).toEqual(minima);
    const done = r.lines.find((l) => l.msg === 'done');
    expect(done?.stoppedEarly).toBe(true);
    expect(epochs.length).toBeLessThan(40);
    expect(epochs.length).toBe((bests[bests.length - 1] as number) + 2);

    // The best file scores the best validation loss again.
    const run = prepareRun(
      resolveConfig({
        data: { kind: 'csv', path: data, labelColumn: 'species' },
        hidden: [8],
        batchSize: 16,
        shardSize: 8,
        lr: 2,
        epochs: 40,
      }),
    );
    const lines = readFileSync(data, 'utf8').trim().split('\n');
    writeFileSync(sb.path('val.csv'), [lines[0], ...Array.from(run.split.val, (i) => lines[i + 1])].join('\n'));
    const ev = await sb.run(['evaluate', '--model', best, '--csv', sb.path('val.csv'), '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    expect(JSON.parse(ev.process.otherLines.join('\n')).loss).toBeCloseTo(min, 5);
  });

  it('--metrics-csv has a row per step line and per epoch line, with their fields', async () => {
    const sb = new Sandbox();
    const csv = sb.path('metrics.csv');
    const r = await sb.run([
      'train',
      '--log-format',
      'json',
      '--dataset',
      'blobs',
      '--samples',
      '200',
      ...SHAPE,
      '--epochs',
      '2',
      '--log-every',
      '4',
      '--metrics-csv',
      csv,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [header, ...rows] = readFileSync(csv, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(','));
    const logged = r.lines.filter((l) => l.msg === 'step' || l.msg === 'epoch');
    expect(rows).toHaveLength(logged.length);
    rows.forEach((row, i) => {
      const line = logged[i];
      expect(row[0]).toBe(line.msg);
      header.slice(1).forEach((column, j) => {
        const value = line[column];
        expect(row[j + 1], `${column} of row ${i}`).toBe(value === undefined || value === null ? '' : String(value));
      });
    });
  });

  it('--clip-norm: a bound above all gradients changes no bit, a small one the weights; alike on workers', async () => {
    const sb = new Sandbox();
    const flags = ['--dataset', 'spirals', '--samples', '200', ...SHAPE, '--epochs', '2'];
    const plain = await sb.train(flags);
    const loose = await sb.train([...flags, '--clip-norm', '1e9']);
    const tight = await sb.train([...flags, '--clip-norm', '0.01']);
    expect(loose.weightsHash).toBe(plain.weightsHash);
    expect(tight.weightsHash).not.toBe(plain.weightsHash);
    // Clipping happens where the optimizer steps, so workers change nothing.
    const c = await sb.coordinator([...flags, '--clip-norm', '0.01', '--workers', '2', '--min-workers', '2']);
    expect((await coordinatorDone(c)).weightsHash).toBe(tight.weightsHash);
  });
});
