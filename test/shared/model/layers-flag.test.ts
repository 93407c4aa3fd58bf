// Tests for shared/model/layers-flag.ts: what `--layers` and `--input-shape` accept,
// the spec they build (shapes, init, nn.Sequential numbering), and the one-line error
// each kind of mistake gets, naming the item and its 1-based position.

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../shared/errors.js';
import { dataInputShape, parseInputShape, parseLayers, type LayersTarget } from '../../../shared/model/layers-flag.js';
import { layerShapes, paramLayout } from '../../../shared/model/spec.js';

const MNIST: LayersTarget = { inputShape: [1, 28, 28], outputs: 10, loss: 'cross_entropy', seed: 7 };
const LENET = 'conv2d:16:5,relu,maxpool2d:2,conv2d:32:5,relu,maxpool2d:2,flatten,dense:10';

/** The ConfigError message parseLayers throws, failing the test if it does not throw one. */
function errorOf(text: string, target: LayersTarget = MNIST): string {
  try {
    parseLayers(text, target);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error(`--layers "${text}" was accepted`);
}

describe('parseLayers: the spec it builds', () => {
  it("the issue's CNN: shapes NCHW, 18,378 parameters named by nn.Sequential index", () => {
    const spec = parseLayers(LENET, MNIST);
    expect(spec.inputShape).toEqual([1, 28, 28]);
    expect(spec.inputSize).toBe(784);
    expect(layerShapes(spec)).toEqual([
      [16, 24, 24],
      [16, 24, 24],
      [16, 12, 12],
      [32, 8, 8],
      [32, 8, 8],
      [32, 4, 4],
      [512],
      [10],
    ]);
    const layout = paramLayout(spec);
    expect(layout.tensors.map((t) => [t.name, t.shape])).toEqual([
      ['0.weight', [16, 1, 5, 5]],
      ['0.bias', [16]],
      ['3.weight', [32, 16, 5, 5]],
      ['3.bias', [32]],
      ['7.weight', [10, 512]],
      ['7.bias', [10]],
    ]);
    expect(layout.totalSize).toBe(18_378);
  });

  it('reads every item form, with defaults: stride 1, pad 0, pool stride = kernel, slope 0.01', () => {
    const spec = parseLayers(
      'conv2d:4:3,leaky_relu,conv2d:6:3:2:1,tanh,avgpool2d:2,maxpool2d:3:1,' +
        'dropout:0.25,flatten,dense:5,sigmoid,leaky_relu:0.2,dense:10',
      { inputShape: [3, 16, 16], outputs: 10, loss: 'cross_entropy', seed: 9 },
    );
    expect(spec.layers).toEqual([
      { type: 'conv2d', out: 4, kernel: 3, stride: 1, pad: 0, init: 'he' },
      { type: 'leaky_relu', slope: 0.01 },
      { type: 'conv2d', out: 6, kernel: 3, stride: 2, pad: 1, init: 'xavier' },
      { type: 'tanh' },
      { type: 'avgpool2d', kernel: 2, stride: 2 },
      { type: 'maxpool2d', kernel: 3, stride: 1 },
      { type: 'dropout', p: 0.25, seed: 9 },
      { type: 'flatten' },
      { type: 'dense', units: 5, init: 'xavier' },
      { type: 'sigmoid' },
      { type: 'leaky_relu', slope: 0.2 },
      { type: 'dense', units: 10, init: 'xavier' },
    ]);
    // 16 → conv3 14 → conv3/2 pad1 7 → avg2 3 → max3/1 1
    expect(layerShapes(spec).map((s) => s.join('x'))).toEqual([
      '4x14x14',
      '4x14x14',
      '6x7x7',
      '6x7x7',
      '6x3x3',
      '6x1x1',
      '6x1x1',
      '6',
      '5',
      '5',
      '5',
      '10',
    ]);
  });

  it('takes an MLP over flat features, and spaces around items', () => {
    const spec = parseLayers(' dense:8 , relu ,dense:1', { inputShape: [4], outputs: 1, loss: 'mse', seed: 0 });
    expect(spec.inputShape).toBeUndefined();
    expect(spec.inputSize).toBe(4);
    expect(paramLayout(spec).tensors.map((t) => t.name)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
  });

  it('allows dense after flatten of an image, and flatten of flat input', () => {
    expect(parseLayers('flatten,dense:10', MNIST).layers).toHaveLength(2);
    expect(parseLayers('flatten,dense:3', { ...MNIST, inputShape: [6], outputs: 3 }).layers).toHaveLength(2);
  });
});

describe('parseLayers: one-line errors naming the item and its position', () => {
  it.each([
    ['conv2d:16', /--layers item 1 \("conv2d:16"\): expected conv2d:OUT:K\[:STRIDE\[:PAD\]\], got 1 value$/],
    ['conv2d:16:5:1:2:3,flatten,dense:10', /item 1 .*expected conv2d:OUT:K\[:STRIDE\[:PAD\]\], got 5 values/],
    ['conv2d:x:5,flatten,dense:10', /item 1 \("conv2d:x:5"\): OUT must be an integer in \[1, 65536\], got "x"/],
    ['conv2d:8:0,flatten,dense:10', /item 1 .*K must be an integer in \[1, 64\], got "0"/],
    ['conv2d:8:3:1:3,flatten,dense:10', /item 1 .*PAD must be an integer in \[0, 2\], got "3"/],
    ['conv2d:8:3:1.5,flatten,dense:10', /item 1 .*STRIDE must be an integer/],
    ['flatten,dense:-3', /item 2 \("dense:-3"\): UNITS must be an integer/],
    ['flatten,dense:10,dropout:1', /item 3 \("dropout:1"\): P must be a number in \[0, 1\), got "1"/],
    ['flatten,dropout:abc,dense:10', /item 2 .*P must be a number in \[0, 1\), got "abc"/],
    ['flatten,dropout:,dense:10', /item 2 .*P must be a number/],
    ['flatten,dense:10,relu:2', /item 3 \("relu:2"\): expected relu, got 1 value/],
    ['flatten,dense:10,leaky_relu:2', /item 3 .*SLOPE must be a number in \[0, 1\)/],
    ['conv3d:4:3,flatten,dense:10', /item 1 \("conv3d:4:3"\): unknown layer "conv3d" \(expected one of conv2d, /],
    ['flatten,,dense:10', /^--layers item 2 is empty/],
    ['flatten,dense:10,', /^--layers item 3 is empty/],
    ['maxpool2d', /item 1 .*expected maxpool2d:K\[:STRIDE\], got no values/],
  ])('%s', (text, expected) => {
    expect(errorOf(text)).toMatch(expected);
  });

  it('a shape that does not fit names the item', () => {
    expect(errorOf('conv2d:8:5,maxpool2d:2,conv2d:8:5,maxpool2d:2,conv2d:8:5,flatten,dense:10')).toBe(
      '--layers item 5 ("conv2d:8:5"): a 5x5 window does not fit its 8x4x4 input',
    );
    expect(errorOf('dense:10')).toMatch(
      /^--layers item 1 \("dense:10"\): needs a flat input, got 1x28x28 \(put flatten/,
    );
    expect(errorOf('conv2d:4:3,dense:10')).toMatch(/item 2 .*needs a flat input, got 4x26x26/);
    expect(errorOf('conv2d:4:3,relu', MNIST)).toMatch(/item 2 .*output must be flat/);
    const flat: LayersTarget = { inputShape: [784], outputs: 10, loss: 'cross_entropy', seed: 0 };
    expect(errorOf('conv2d:4:3,flatten,dense:10', flat)).toMatch(/item 1 .*needs an image input .*--input-shape/);
  });

  it('a last layer whose size does not match the classes or targets names the item', () => {
    expect(errorOf(LENET.replace('dense:10', 'dense:12'))).toBe(
      '--layers item 8 ("dense:12"): the model ends with 12 outputs, but the data has 10 classes (end with dense:10)',
    );
    expect(errorOf('dense:4,relu', { inputShape: [3], outputs: 1, loss: 'mse', seed: 0 })).toMatch(
      /item 2 \("relu"\): the model ends with 4 outputs, but the data has 1 target values/,
    );
  });

  it('refuses a model without weights, too many items, and huge layers', () => {
    expect(errorOf('flatten,relu', { ...MNIST, outputs: 784 })).toMatch(/has no layer with weights/);
    expect(errorOf(Array(65).fill('relu').join(','))).toMatch(/65 items; at most 64/);
    expect(errorOf('flatten,dense:16777216,dense:10')).toMatch(/UNITS must be an integer in \[1, 4194304\]/);
    expect(errorOf('flatten,dense:4000000,dense:4000,dense:10')).toMatch(/item 2 .*exceed 134217728 parameters/);
  });
});

describe('--input-shape', () => {
  it('parses CxHxW', () => {
    expect(parseInputShape('1x28x28')).toEqual([1, 28, 28]);
    expect(parseInputShape('3X32X32')).toEqual([3, 32, 32]);
  });

  it.each(['28x28', '1x28x28x1', '0x28x28', '1x-2x28', 'ax28x28', '1.5x2x2', ''])('refuses "%s"', (text) => {
    expect(() => parseInputShape(text)).toThrow(/^--input-shape expects CxHxW/);
  });

  it('is checked against the column count', () => {
    expect(dataInputShape([1, 28, 28], 784)).toEqual([1, 28, 28]);
    expect(dataInputShape(null, 13)).toEqual([13]);
    expect(() => dataInputShape([3, 8, 8], 190)).toThrow(
      '--input-shape 3x8x8 holds 192 values, but the data has 190 feature columns',
    );
  });
});
