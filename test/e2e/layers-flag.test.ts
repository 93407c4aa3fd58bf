// --layers and --input-shape through the real CLI: every kind of mistake (a bad item,
// a shape that does not fit, a last layer that does not match the data, a shape that
// does not match the CSV's columns) ends the process with one line naming what is
// wrong, no stack trace, for `train` and `coordinator` alike.

import { describe, expect, it } from 'vitest';
import { writeImageCsv } from '../support/image-csv.js';
import { oneLineError, Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

describe('--layers and --input-shape mistakes get one line', () => {
  it.each([
    [['--layers', 'conv2d:16'], /--layers item 1 \("conv2d:16"\): expected conv2d:OUT:K\[:STRIDE\[:PAD\]\]/],
    [['--layers', 'flatten,dense:10,softmax'], /--layers item 3 \("softmax"\): unknown layer "softmax"/],
    [
      ['--layers', 'conv2d:8:5,maxpool2d:2,conv2d:8:5,maxpool2d:2,conv2d:8:5,flatten,dense:10'],
      /item 5 .*does not fit/,
    ],
    [['--layers', 'conv2d:8:5,flatten,dense:12'], /item 3 \("dense:12"\): .*12 outputs, but the data has 10 classes/],
    [['--layers', 'dense:10'], /item 1 .*needs a flat input, got 1x28x28/],
    [['--layers', 'conv2d:8:3,flatten,dense:2', '--dataset', 'blobs'], /item 1 .*needs an image input/],
  ])('train %j', async (args, expected) => {
    const r = await new Sandbox().run(['train', ...args]);
    expect(r.code).toBe(1);
    expect(oneLineError(r.stderr)).toMatch(expected);
  });

  it('coordinator refuses a bad --layers before it listens', async () => {
    const r = await new Sandbox().run(['coordinator', '--port', '0', '--layers', 'flatten,dense:10,dropout:2']);
    expect(r.code).toBe(1);
    expect(oneLineError(r.stderr)).toMatch(/item 3 \("dropout:2"\): P must be a number in \[0, 1\)/);
  });

  it('--input-shape is checked against the CSV columns and for its form', async () => {
    const sb = new Sandbox();
    const csv = sb.path('images.csv');
    writeImageCsv(csv, 30, [2, 4, 4]);
    const wrong = await sb.run([
      'train',
      '--csv',
      csv,
      '--input-shape',
      '3x4x4',
      '--layers',
      'conv2d:2:3,flatten,dense:3',
    ]);
    expect(wrong.code).toBe(1);
    expect(oneLineError(wrong.stderr)).toBe(
      'flocktrain: --input-shape 3x4x4 holds 48 values, but the data has 32 feature columns',
    );
    const bad = await sb.run(['train', '--csv', csv, '--input-shape', '2x16']);
    expect(bad.code).toBe(1);
    expect(oneLineError(bad.stderr)).toMatch(/--input-shape expects CxHxW .*got "2x16"/);
  });
});
