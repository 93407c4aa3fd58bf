// Training on the array formats as a user downloads them: gzip IDX images and labels
// (the MNIST layout) and NPY files, then evaluating and predicting with the model;
// mistakes in the files are one line naming the file. The files are made here.

import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { oneLineError, Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

/** An IDX file: two zero bytes, the type byte (0x08: unsigned bytes), the dimensions, the data. */
function idx(shape: readonly number[], bytes: readonly number[]): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header[2] = 0x08;
  header[3] = shape.length;
  shape.forEach((n, i) => header.writeUInt32BE(n, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(bytes)]);
}

/** An NPY (version 1) file of little-endian float32 or bytes. */
function npy(descr: '<f4' | '|u1', shape: readonly number[], values: readonly number[]): Buffer {
  const tuple = `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${tuple}, }`;
  const header = `${dict.padEnd(118, ' ')}\n`;
  const data = descr === '<f4' ? Buffer.from(Float32Array.from(values).buffer) : Buffer.from(values);
  return Buffer.concat([
    Buffer.from([0x93]),
    Buffer.from('NUMPY'),
    Buffer.from([1, 0, header.length, 0]),
    Buffer.from(header),
    data,
  ]);
}

/** 4×4 images: class 0 lights the top half, class 1 the bottom half, with some noise. */
function stripes(n: number): { pixels: number[]; labels: number[] } {
  const pixels: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    labels.push(c);
    for (let p = 0; p < 16; p++) pixels.push(p < 8 === (c === 0) ? 200 + (i % 50) : (i * 7 + p * 13) % 60);
  }
  return { pixels, labels };
}

const SMALL = ['--hidden', '8', '--epochs', '3', '--batch-size', '20', '--shard-size', '10'];

describe('IDX and NPY data', () => {
  it('trains on gzip IDX images and labels, then evaluates and predicts from IDX', async () => {
    const sb = new Sandbox();
    const { pixels, labels } = stripes(200);
    writeFileSync(sb.path('train-images-idx3-ubyte.gz'), gzipSync(idx([200, 4, 4], pixels)));
    writeFileSync(sb.path('train-labels-idx1-ubyte.gz'), gzipSync(idx([200], labels)));
    const model = sb.path('stripes.safetensors');
    const done = await sb.train([
      '--idx-images',
      sb.path('train-images-idx3-ubyte.gz'),
      '--idx-labels',
      sb.path('train-labels-idx1-ubyte.gz'),
      ...SMALL,
      '--out',
      model,
    ]);
    expect(done.valAccuracy).toBeGreaterThan(0.95);
    // Not gzipped this time: the format is told by the content.
    writeFileSync(sb.path('test-images'), idx([200, 4, 4], pixels));
    writeFileSync(sb.path('test-labels'), idx([200], labels));
    const r = await sb.run([
      'evaluate',
      '--model',
      model,
      '--idx-images',
      sb.path('test-images'),
      '--idx-labels',
      sb.path('test-labels'),
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.process.otherLines.join('\n'));
    expect(m).toMatchObject({ task: 'classification', samples: 200 });
    expect(m.accuracy).toBeGreaterThan(0.95);
    const p = await sb.run(['predict', '--model', model, '--idx-images', sb.path('test-images')]);
    expect(p.process.otherLines[0]).toBe('prediction,p_0,p_1');
    expect(p.process.otherLines).toHaveLength(201);
  });

  it('trains a two-target regression on NPY files', async () => {
    const sb = new Sandbox();
    const x: number[] = [];
    const y: number[] = [];
    for (let i = 0; i < 200; i++) {
      const a = Math.sin(i);
      const b = Math.cos(2 * i);
      x.push(a, b);
      y.push(a + b, a - b);
    }
    writeFileSync(sb.path('x.npy'), npy('<f4', [200, 2], x));
    writeFileSync(sb.path('y.npy'), npy('<f4', [200, 2], y));
    const model = sb.path('r.safetensors');
    await sb.train([
      '--npy-x',
      sb.path('x.npy'),
      '--npy-y',
      sb.path('y.npy'),
      '--loss',
      'mse',
      '--hidden',
      '8',
      '--batch-size',
      '20',
      '--shard-size',
      '10',
      '--epochs',
      '20',
      '--lr',
      '0.05',
      '--out',
      model,
    ]);
    const r = await sb.run([
      'evaluate',
      '--model',
      model,
      '--npy-x',
      sb.path('x.npy'),
      '--npy-y',
      sb.path('y.npy'),
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.process.otherLines.join('\n'));
    expect(m.task).toBe('regression');
    expect(m.r2).toBeGreaterThan(0.9);
    const p = await sb.run(['predict', '--model', model, '--npy-x', sb.path('x.npy')]);
    expect(p.process.otherLines[0]).toBe('prediction_0,prediction_1');
  });

  it('names the file in one line: a truncated IDX, labels that do not match, a missing --idx-labels', async () => {
    const sb = new Sandbox();
    writeFileSync(sb.path('images.idx'), idx([10, 4, 4], new Array(100).fill(0)));
    writeFileSync(sb.path('labels.idx'), idx([9], new Array(9).fill(0)));
    const truncated = await sb.run([
      'train',
      '--idx-images',
      sb.path('images.idx'),
      '--idx-labels',
      sb.path('labels.idx'),
    ]);
    expect(oneLineError(truncated.stderr)).toBe(
      `flocktrain: ${sb.path('images.idx')}: IDX shape [10,4,4] needs 176 bytes, the file has 116`,
    );
    writeFileSync(sb.path('images.idx'), idx([10, 4, 4], new Array(160).fill(0)));
    const mismatch = await sb.run([
      'train',
      '--idx-images',
      sb.path('images.idx'),
      '--idx-labels',
      sb.path('labels.idx'),
    ]);
    expect(oneLineError(mismatch.stderr)).toBe(
      `flocktrain: ${sb.path('labels.idx')}: 9 labels for the 10 samples of ${sb.path('images.idx')}`,
    );
    const alone = await sb.run(['train', '--idx-images', sb.path('images.idx')]);
    expect(oneLineError(alone.stderr)).toBe('flocktrain: --idx-images needs --idx-labels');
  });
});

/** Rows of a numeric size, a named colour and two targets: price = 2·size + colour bonus, weight = size. */
function shopCsv(from: number, n: number): string {
  const bonus: Record<string, number> = { red: 3, green: 0, blue: -3 };
  const lines = ['size,colour,price,weight'];
  for (let i = from; i < from + n; i++) {
    const colour = ['red', 'green', 'blue'][i % 3];
    const size = Number((Math.sin(i) * 2).toFixed(3));
    lines.push(`${size},${colour},${(2 * size + bonus[colour]).toFixed(3)},${size}`);
  }
  return `${lines.join('\n')}\n`;
}

describe('CSV column roles', () => {
  it('--categorical, --target-columns, --val-csv: one-hot names in the model, two targets, a val file', async () => {
    const sb = new Sandbox();
    writeFileSync(sb.path('train.csv'), shopCsv(0, 300));
    writeFileSync(sb.path('val.csv'), shopCsv(1000, 30));
    const model = sb.path('shop.safetensors');
    const r = await sb.run([
      'train',
      '--log-format',
      'json',
      '--csv',
      sb.path('train.csv'),
      '--val-csv',
      sb.path('val.csv'),
      '--categorical',
      'colour',
      '--target-columns',
      'price,weight',
      '--hidden',
      '16',
      '--epochs',
      '30',
      '--batch-size',
      '20',
      '--shard-size',
      '10',
      '--lr',
      '0.02',
      '--out',
      model,
    ]);
    expect(r.code, r.stderr).toBe(0);
    // Every training row trains; the validation file's 30 rows validate.
    expect(r.lines.find((l) => l.msg === 'run')).toMatchObject({ train: 300, val: 30 });
    const header = JSON.parse(
      readFileSync(model)
        .subarray(8, 8 + readFileSync(model).readUInt32LE(0))
        .toString(),
    );
    const input = JSON.parse(header.__metadata__['flocktrain.input']);
    expect(input).toMatchObject({
      task: 'regression',
      featureColumns: ['size', 'colour=blue', 'colour=green', 'colour=red'],
      labelColumns: ['price', 'weight'],
      categorical: [{ column: 'colour', values: ['blue', 'green', 'red'] }],
    });
    const ev = await sb.run(['evaluate', '--model', model, '--csv', sb.path('val.csv'), '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    expect(JSON.parse(ev.process.otherLines.join('\n')).r2).toBeGreaterThan(0.9);
    // Raw rows with only the inputs; an unseen colour is named with its place.
    writeFileSync(sb.path('new.csv'), 'colour,size\nred,1\nblue,1\n');
    const p = await sb.run(['predict', '--model', model, '--csv', sb.path('new.csv')]);
    expect(p.process.otherLines[0]).toBe('prediction_0,prediction_1');
    const [red, blue] = p.process.otherLines.slice(1).map((l) => Number(l.split(',')[0]));
    expect(red - blue).toBeGreaterThan(4); // the colour bonus differs by 6
    writeFileSync(sb.path('odd.csv'), 'colour,size\npurple,1\n');
    const odd = await sb.run(['predict', '--model', model, '--csv', sb.path('odd.csv')]);
    expect(oneLineError(odd.stderr)).toBe(
      `flocktrain: ${sb.path('odd.csv')}:2:colour: unknown value "purple"; the model knows "blue", "green", "red"`,
    );
  });

  it('a validation file with a class the training file lacks is one line naming its place', async () => {
    const sb = new Sandbox();
    writeFileSync(sb.path('train.csv'), 'a,label\n1,x\n2,y\n3,x\n4,y\n');
    writeFileSync(sb.path('val.csv'), 'a,label\n1,x\n2,z\n');
    const r = await sb.run(['train', '--csv', sb.path('train.csv'), '--val-csv', sb.path('val.csv')]);
    expect(oneLineError(r.stderr)).toBe(
      `flocktrain: ${sb.path('val.csv')}:3:label: class "z" is not in the training file ("x", "y")`,
    );
  });
});
