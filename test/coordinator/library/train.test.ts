// The library's train() in this process: data in memory with named classes, events as
// callbacks and as an async iterator (the same events, in order), the model it resolves
// with predicting as the model file it wrote does, stop() ending after the current step,
// and bad data refused with one line naming the sample.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError, loadModel, train, type TrainingEvent } from '../../../coordinator/library/index.js';

const dir = mkdtempSync(join(tmpdir(), 'flocktrain-lib-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function dots(n: number): { features: number[][]; labels: string[] } {
  const features: number[][] = [];
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    features.push([3 * c + Math.sin(i), 3 * c + Math.cos(3 * i)]);
    labels.push(c === 0 ? 'red' : 'blue');
  }
  return { features, labels };
}

const SMALL = { hidden: [8], batchSize: 16, shardSize: 8 };

describe('train() from memory', () => {
  it('reports steps and epochs by callback and iterator alike; resolves with a model equal to its file', async () => {
    const { features, labels } = dots(200);
    const called: TrainingEvent[] = [];
    const out = join(dir, 'dots.safetensors');
    const run = train({
      data: { features, labels, featureNames: ['x', 'y'] },
      ...SMALL,
      epochs: 2,
      logEvery: 5,
      out,
      onStep: (e) => called.push({ type: 'step', ...e }),
      onEpoch: (e) => called.push({ type: 'epoch', ...e }),
    });
    const iterated: TrainingEvent[] = [];
    for await (const e of run) iterated.push(e);
    const { model, summary } = await run;
    expect(iterated).toEqual(called);
    // 160 training samples, 10 steps per epoch, a step line every 5 steps.
    expect(iterated.map((e) => `${e.type}${e.epoch}`)).toEqual([
      'step1',
      'step1',
      'epoch1',
      'step2',
      'step2',
      'epoch2',
    ]);
    expect(summary.steps).toBe(20);
    expect(model.classNames).toEqual(['blue', 'red']);
    expect(
      model.predict([
        [0, 0],
        [3, 3],
      ]),
    ).toEqual(['red', 'blue']);
    const fromFile = loadModel(out);
    // The file names the columns, so CSV files of x, y and label work with predict and evaluate.
    expect(fromFile.input).toMatchObject({ featureColumns: ['x', 'y'], labelColumns: ['label'] });
    const rows = features.slice(0, 50);
    expect(fromFile.predictProba(rows)).toEqual(model.predictProba(rows));
    const metrics = model.evaluate({ features, labels });
    expect(metrics.task === 'classification' && metrics.accuracy).toBeGreaterThan(0.9);
  });

  it('stop() ends the run after the step in progress', async () => {
    const { features, labels } = dots(200);
    // From a callback, which runs as the step is logged: exactly after it.
    const run = train({
      data: { features, labels },
      ...SMALL,
      epochs: 5,
      logEvery: 1,
      onStep: (e) => e.step === 3 && run.stop(),
    });
    const { summary } = await run;
    expect(summary).toMatchObject({ interrupted: true, steps: 3 });
    // From the iterator, which may trail the trainer by the steps already queued.
    const iterated = train({ data: { features, labels }, ...SMALL, epochs: 5, logEvery: 1 });
    for await (const e of iterated) if (e.type === 'step' && e.step === 3) iterated.stop();
    const late = (await iterated).summary;
    expect(late.interrupted).toBe(true);
    expect(late.steps).toBeLessThan(50);
  });

  it('refuses data it cannot train on, naming the sample', async () => {
    const bad = train({ data: { features: [[1, 2], [3]], labels: ['a', 'b'] } });
    await expect(bad).rejects.toThrow(new DataError('features: row 1 has 1 values, row 0 has 2'));
    const labels = train({ data: { features: [[1], [2]], labels: [0, 1.5] } });
    await expect(labels).rejects.toThrow('labels: sample 1 is 1.5, expected a class name or index');
  });
});
