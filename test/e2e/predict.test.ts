// predict and evaluate as a user runs them, on real processes: a model trained on a CSV
// predicts raw rows (columns in any order, no label) exactly as the trainer computes
// them; a missing or extra column is one line naming it; evaluate's numbers equal a
// hand computation on hand-made models; image models read gzip IDX and NPY.

import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { resolveConfig, RUN_DEFAULTS, type RunConfig } from '../../coordinator/config.js';
import { readModelFile, writeModelFile } from '../../coordinator/model-file.js';
import { prepareRun } from '../../coordinator/setup.js';
import type { ModelInput } from '../../shared/data/preprocess.js';
import { argmaxRows, forwardRows, softmaxRows } from '../../shared/model/predictor.js';
import { mlpSpec, type ModelSpec } from '../../shared/model/spec.js';
import { oneLineError, Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

/** 120 rows of three named classes over two features, with the label column last. */
function flowersCsv(): string {
  const lines = ['width,height,species'];
  for (let i = 0; i < 120; i++) {
    const c = i % 3;
    lines.push(
      `${(c * 2 + Math.sin(i)).toFixed(3)},${(c * 20 + 10 * Math.cos(3 * i)).toFixed(3)},` +
        `${['iris', 'rosa', 'viola'][c]}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function parseCsvText(text: string): string[][] {
  return text
    .trim()
    .split('\n')
    .map((l) => l.split(','));
}

/** A model file with these weights, for hand-computed expectations. */
function handModel(path: string, spec: ModelSpec, params: number[], input: ModelInput): void {
  const config: RunConfig = { ...RUN_DEFAULTS, kernels: 'js' };
  writeModelFile(path, spec, Float32Array.from(params), config, 'hand', input);
}

const TABLE_INPUT = { standardization: null, categorical: [], byteScale: null } as const;

describe('predict', () => {
  it('a model trained with --out predicts raw rows exactly as the trainer computes them', async () => {
    const sb = new Sandbox();
    const data = sb.path('flowers.csv');
    writeFileSync(data, flowersCsv());
    const model = sb.path('flowers.safetensors');
    const flags = [
      '--csv',
      data,
      '--label-column',
      'species',
      '--hidden',
      '8',
      '--epochs',
      '3',
      '--batch-size',
      '16',
      '--shard-size',
      '8',
    ];
    await sb.train([...flags, '--out', model]);

    // The same rows, raw, with the columns swapped and no label.
    const rows = parseCsvText(readFileSync(data, 'utf8')).slice(1);
    const raw = sb.path('raw.csv');
    writeFileSync(raw, ['height,width', ...rows.map((r) => `${r[1]},${r[0]}`)].join('\n'));
    const r = await sb.run(['predict', '--model', model, '--csv', raw, '--out', sb.path('out.csv')]);
    expect(r.code, r.stderr).toBe(0);
    const out = parseCsvText(readFileSync(sb.path('out.csv'), 'utf8'));
    expect(out[0]).toEqual(['prediction', 'p_iris', 'p_rosa', 'p_viola']);
    expect(out).toHaveLength(121);

    // The trainer's view: the run prepared from the same flags (standardized features), its final weights.
    const run = prepareRun(
      resolveConfig({
        data: { kind: 'csv', path: data, labelColumn: 'species' },
        hidden: [8],
        epochs: 3,
        batchSize: 16,
        shardSize: 8,
      }),
    );
    const params = readModelFile(model, run.spec);
    const logits = forwardRows(run.spec, params, run.dataset.features, 120, run.config.kernels);
    const best = argmaxRows(logits, 120, 3);
    const p = softmaxRows(logits, 120, 3);
    for (let i = 0; i < 120; i++) {
      expect(out[i + 1][0]).toBe(run.dataset.classNames[best[i]]);
      for (let k = 0; k < 3; k++) expect(Number(out[i + 1][1 + k])).toBe(Number(p[i * 3 + k].toPrecision(6)));
    }
    // And it learned something: most rows get their own class.
    const right = rows.filter((row, i) => row[2] === out[i + 1][0]).length;
    expect(right).toBeGreaterThan(90);

    // Without --out the CSV goes to stdout.
    const stdout = await sb.run(['predict', '--model', model, '--csv', data]);
    expect(stdout.code, stdout.stderr).toBe(0);
    expect(stdout.process.otherLines.join('\n')).toBe(readFileSync(sb.path('out.csv'), 'utf8').trim());
  });

  it('names a missing column and an extra column in one line', async () => {
    const sb = new Sandbox();
    const model = sb.path('m.safetensors');
    handModel(model, mlpSpec(2, [], 2, 'relu', 'cross_entropy'), [1, 0, 0, 1, 0, 0], {
      ...TABLE_INPUT,
      task: 'classification',
      shape: [2],
      featureColumns: ['a', 'b'],
      labelColumns: ['label'],
      classNames: ['no', 'yes'],
    });
    writeFileSync(sb.path('missing.csv'), 'a,label\n1,no\n');
    const missing = await sb.run(['predict', '--model', model, '--csv', sb.path('missing.csv')]);
    expect(missing.code).toBe(1);
    expect(oneLineError(missing.stderr)).toBe(`flocktrain: ${sb.path('missing.csv')}: missing column "b"`);
    writeFileSync(sb.path('extra.csv'), 'a,b,colour\n1,2,red\n');
    const extra = await sb.run(['predict', '--model', model, '--csv', sb.path('extra.csv')]);
    expect(extra.code).toBe(1);
    expect(oneLineError(extra.stderr)).toBe(
      `flocktrain: ${sb.path('extra.csv')}: unexpected column "colour"; ` +
        'the model takes "a", "b" and optionally "label"',
    );
    writeFileSync(sb.path('bad.csv'), 'b,a\n1,x\n');
    const bad = await sb.run(['predict', '--model', model, '--csv', sb.path('bad.csv')]);
    expect(oneLineError(bad.stderr)).toBe(`flocktrain: ${sb.path('bad.csv')}:2:a: expected a number, got "x"`);
  });

  it('reads gzip IDX and NPY images for an image model, scaling bytes as in training', async () => {
    const sb = new Sandbox();
    const model = sb.path('img.safetensors');
    // 2×2 images, two classes: class 0 scores the top row, class 1 the bottom row.
    handModel(model, mlpSpec(4, [], 2, 'relu', 'cross_entropy'), [1, 1, 0, 0, 0, 0, 1, 1, 0, 0], {
      ...TABLE_INPUT,
      task: 'classification',
      shape: [2, 2],
      featureColumns: null,
      labelColumns: [],
      classNames: ['0', '1'],
      byteScale: 1 / 255,
    });
    const pixels = [255, 255, 0, 0, 0, 10, 200, 0, 0, 0, 0, 0];
    const idx = Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2]), Buffer.from(pixels)]);
    writeFileSync(sb.path('images.idx.gz'), gzipSync(idx));
    const r = await sb.run(['predict', '--model', model, '--idx-images', sb.path('images.idx.gz')]);
    expect(r.code, r.stderr).toBe(0);
    const out = r.process.otherLines.map((l) => l.split(','));
    expect(out.map((row) => row[0])).toEqual(['prediction', '0', '1', '0']); // a tie goes to the first class
    // Image 1: logits (2, 0) → p_0 = 1/(1 + e^-2).
    expect(Number(out[1][1])).toBeCloseTo(1 / (1 + Math.exp(-2)), 5);

    // The same images as NPY float32 values in [0, 1].
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 2), }";
    const padded = header.padEnd(118, ' ') + '\n';
    const npy = Buffer.concat([
      Buffer.from([0x93]),
      Buffer.from('NUMPY'),
      Buffer.from([1, 0, padded.length, 0]),
      Buffer.from(padded),
      Buffer.from(Float32Array.from(pixels, (v) => v / 255).buffer),
    ]);
    writeFileSync(sb.path('images.npy'), npy);
    const n = await sb.run(['predict', '--model', model, '--npy-x', sb.path('images.npy')]);
    expect(n.code, n.stderr).toBe(0);
    expect(n.process.otherLines.map((l) => l.split(',')[0])).toEqual(['prediction', '0', '1', '0']);
  });
});

describe('evaluate', () => {
  it('classification: loss, accuracy, confusion and per-class precision/recall/F1 as computed by hand', async () => {
    const sb = new Sandbox();
    const model = sb.path('m.safetensors');
    // Identity weights: the logits are the features.
    handModel(model, mlpSpec(2, [], 2, 'relu', 'cross_entropy'), [1, 0, 0, 1, 0, 0], {
      ...TABLE_INPUT,
      task: 'classification',
      shape: [2],
      featureColumns: ['a', 'b'],
      labelColumns: ['label'],
      classNames: ['no', 'yes'],
    });
    writeFileSync(sb.path('test.csv'), 'label,b,a\nno,0,2\nyes,1,0\nyes,0,1\nno,3,0\nno,0,5\n');
    const r = await sb.run(['evaluate', '--model', model, '--csv', sb.path('test.csv'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.process.otherLines.join('\n'));
    // Predicted: no, yes, no, yes, no. True: no, yes, yes, no, no.
    expect(m.confusion).toEqual([
      [2, 1],
      [1, 1],
    ]);
    expect(m.accuracy).toBe(0.6);
    // Cross-entropy of two logits: log(1 + e^-(z_true − z_other)); margins 2, 1, −1, −3, 5.
    const loss = [2, 1, -1, -3, 5].reduce((s, d) => s + Math.log1p(Math.exp(-d)), 0) / 5;
    expect(m.loss).toBeCloseTo(loss, 6);
    expect(m.classes).toEqual([
      { name: 'no', support: 3, precision: 2 / 3, recall: 2 / 3, f1: 2 / 3 },
      { name: 'yes', support: 2, precision: 0.5, recall: 0.5, f1: 0.5 },
    ]);
    const text = await sb.run(['evaluate', '--model', model, '--csv', sb.path('test.csv')]);
    expect(text.process.otherLines[0]).toBe(`5 samples  loss ${loss.toFixed(4)}  accuracy 0.6000`);
  });

  it('regression: MAE, RMSE and R² as computed by hand', async () => {
    const sb = new Sandbox();
    const model = sb.path('r.safetensors');
    // y = 2x + 1 on standardized x, with mean 1 and std 2: y = 2(x − 1)/2 + 1 = x.
    handModel(model, mlpSpec(1, [], 1, 'relu', 'mse'), [2, 1], {
      ...TABLE_INPUT,
      task: 'regression',
      shape: [1],
      featureColumns: ['x'],
      labelColumns: ['y'],
      classNames: [],
      standardization: { mean: [1], std: [2] },
    });
    writeFileSync(sb.path('test.csv'), 'x,y\n1,1\n3,4\n5,5\n7,7\n');
    const r = await sb.run(['evaluate', '--model', model, '--csv', sb.path('test.csv'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    // Predictions 1, 3, 5, 7 against 1, 4, 5, 7: one error of 1. Mean target 4.25, SS_tot 18.75.
    expect(JSON.parse(r.process.otherLines.join('\n'))).toEqual({
      task: 'regression',
      samples: 4,
      loss: 0.25,
      mae: 0.25,
      rmse: 0.5,
      r2: 1 - 1 / 18.75,
    });
  });

  it('on the validation rows of a CSV run, gives the loss and accuracy the trainer logged', async () => {
    const sb = new Sandbox();
    const data = sb.path('flowers.csv');
    writeFileSync(data, flowersCsv());
    const model = sb.path('flowers.safetensors');
    const done = await sb.train([
      '--csv',
      data,
      '--label-column',
      'species',
      '--hidden',
      '8',
      '--epochs',
      '2',
      '--out',
      model,
      '--batch-size',
      '16',
      '--shard-size',
      '8',
    ]);
    const run = prepareRun(
      resolveConfig({
        data: { kind: 'csv', path: data, labelColumn: 'species' },
        hidden: [8],
        epochs: 2,
        batchSize: 16,
        shardSize: 8,
      }),
    );
    const lines = readFileSync(data, 'utf8').trim().split('\n');
    writeFileSync(sb.path('val.csv'), [lines[0], ...Array.from(run.split.val, (i) => lines[i + 1])].join('\n'));
    const r = await sb.run(['evaluate', '--model', model, '--csv', sb.path('val.csv'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.process.otherLines.join('\n'));
    expect(m.samples).toBe(24);
    expect(m.loss).toBe(done.valLoss);
    expect(m.accuracy).toBe(done.valAccuracy);
  });

  it('refuses two inputs, and images without labels, in one line', async () => {
    const sb = new Sandbox();
    const both = await sb.run(['evaluate', '--model', 'm', '--csv', 'a.csv', '--dataset', 'blobs']);
    expect(oneLineError(both.stderr)).toBe('flocktrain: give one input, got --csv and --dataset');
    const noLabels = await sb.run(['evaluate', '--model', 'm', '--idx-images', 'x.idx']);
    expect(oneLineError(noLabels.stderr)).toBe('flocktrain: evaluate needs labels: add --idx-labels');
  });
});
