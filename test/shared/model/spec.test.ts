// Tests for shared/model/spec.ts: shape inference (NCHW, PyTorch's window rules),
// the parameter layout (nn.Sequential names, PyTorch shapes, offsets), the MLP specs
// files already hold, and validateSpec on hostile specs (files, welcome messages):
// each refused with a one-line ConfigError, before anything is allocated.

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../shared/errors.js';
import { initParams } from '../../../shared/model/init.js';
import {
  layerShapes,
  layerWidths,
  mlpSpec,
  paramLayout,
  validateSpec,
  type ModelSpec,
} from '../../../shared/model/spec.js';

const CNN: ModelSpec = {
  inputSize: 2 * 9 * 9,
  inputShape: [2, 9, 9],
  layers: [
    { type: 'conv2d', out: 3, kernel: 3, stride: 2, pad: 1, init: 'he' },
    { type: 'relu' },
    { type: 'maxpool2d', kernel: 2, stride: 1 },
    { type: 'dropout', p: 0.5, seed: 1 },
    { type: 'flatten' },
    { type: 'dense', units: 4, init: 'xavier' },
  ],
  loss: 'cross_entropy',
};

function refusal(value: unknown): string {
  try {
    validateSpec(value);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(value)}`);
}

describe('shapes and layout', () => {
  it('conv output is floor((H + 2P - K) / S) + 1; pooling has no padding and no ceil mode', () => {
    // 9 + 2 - 3 = 8, /2 = 4, +1 = 5; pool 2 stride 1: 4.
    expect(layerShapes(CNN)).toEqual([[3, 5, 5], [3, 5, 5], [3, 4, 4], [3, 4, 4], [48], [4]]);
    expect(layerWidths(CNN)).toEqual([75, 75, 48, 48, 48, 4]);
  });

  it('names tensors by the layer index, activations and flatten counted; conv weight [OC, C, KH, KW]', () => {
    const layout = paramLayout(CNN);
    expect(layout.tensors).toEqual([
      { name: '0.weight', shape: [3, 2, 3, 3], offset: 0, size: 54 },
      { name: '0.bias', shape: [3], offset: 54, size: 3 },
      { name: '5.weight', shape: [4, 48], offset: 57, size: 192 },
      { name: '5.bias', shape: [4], offset: 249, size: 4 },
    ]);
    expect(layout.totalSize).toBe(253);
  });

  it('an MLP spec as files hold it (inputSize, no inputShape) keeps its layout', () => {
    const mlp = mlpSpec(784, [128], 10, 'relu', 'cross_entropy');
    expect(JSON.stringify(mlp)).toBe(
      '{"inputSize":784,"layers":[{"type":"dense","units":128,"init":"he"},{"type":"relu"},' +
        '{"type":"dense","units":10,"init":"xavier"}],"loss":"cross_entropy"}',
    );
    expect(validateSpec(JSON.parse(JSON.stringify(mlp)))).toEqual(mlp);
    expect(paramLayout(mlp).tensors.map((t) => `${t.name}:${t.shape.join('x')}`)).toEqual([
      '0.weight:128x784',
      '0.bias:128',
      '2.weight:10x128',
      '2.bias:10',
    ]);
  });

  it('a round trip through JSON gives the same spec', () => {
    expect(validateSpec(JSON.parse(JSON.stringify(CNN)))).toEqual(CNN);
  });
});

describe('conv init', () => {
  it('is deterministic from the seed, He-uniform bounded by sqrt(6 / (C·K·K)), biases 0', () => {
    const a = initParams(CNN, 5);
    expect(initParams(CNN, 5)).toEqual(a);
    expect(initParams(CNN, 6)).not.toEqual(a);
    const bound = Math.sqrt(6 / (2 * 3 * 3));
    const w = a.subarray(0, 54);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(bound * 0.8);
    expect([...a.subarray(54, 57)]).toEqual([0, 0, 0]);
    // Xavier on the dense layer: sqrt(6 / (48 + 4)).
    const d = a.subarray(57, 249);
    expect(Math.max(...d.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / 52));
  });
});

describe('validateSpec refuses hostile specs with one line', () => {
  const conv = CNN.layers[0];
  const withLayer = (layer: unknown, at = 0) => ({
    ...CNN,
    layers: CNN.layers.map((l, i) => (i === at ? layer : l)),
  });
  it.each([
    [
      'a huge input shape',
      { ...CNN, inputShape: [1 << 20, 1 << 20, 1], inputSize: 1 },
      /inputShape must be \[C, H, W\]/,
    ],
    ['an input shape of 2 dims', { ...CNN, inputShape: [9, 18] }, /inputShape must be \[C, H, W\]/],
    [
      'a shape that disagrees with inputSize',
      { ...CNN, inputSize: 100 },
      /inputShape 2x9x9 holds 162 features, inputSize says 100/,
    ],
    ['a string dimension', { ...CNN, inputShape: ['2', 9, 9] }, /inputShape must be/],
    ['a huge conv', withLayer({ ...conv, out: 1e9 }), /layer 0 \(conv2d\) out must be an integer in \[1, 65536\]/],
    ['a fractional kernel', withLayer({ ...conv, kernel: 2.5 }), /kernel must be an integer/],
    ['a zero stride', withLayer({ ...conv, stride: 0 }), /stride must be an integer in \[1, 64\]/],
    ['a pad as large as the kernel', withLayer({ ...conv, pad: 3 }), /pad must be an integer in \[0, 2\]/],
    [
      'a window that does not fit',
      withLayer({ ...conv, kernel: 13, pad: 1 }),
      /layer 0 \(conv2d\): a 13x13 window does not fit/,
    ],
    ['a pool without stride', withLayer({ type: 'maxpool2d', kernel: 2 }, 2), /layer 2 \(maxpool2d\) stride/],
    ['dropout p = 1', withLayer({ type: 'dropout', p: 1, seed: 0 }, 3), /layer 3 \(dropout\) p must be in \[0, 1\)/],
    ['dropout p NaN', withLayer({ type: 'dropout', p: Number.NaN, seed: 0 }, 3), /p must be in \[0, 1\)/],
    ['a negative dropout seed', withLayer({ type: 'dropout', p: 0.1, seed: -1 }, 3), /seed must be an integer/],
    ['a leaky slope of 5', withLayer({ type: 'leaky_relu', slope: 5 }, 1), /slope must be in \[0, 1\)/],
    ['an unknown layer', withLayer({ type: 'conv3d' }, 1), /layer 1 has unknown type "conv3d"/],
    [
      'dense on an image',
      { ...CNN, layers: [{ type: 'dense', units: 3, init: 'he' }] },
      /needs a flat input, got 2x9x9/,
    ],
    ['conv on flat input', { inputSize: 4, layers: [conv], loss: 'mse' }, /needs an image input/],
    ['an image output', { ...CNN, layers: [conv] }, /output must be flat/],
    ['no parameters', { ...CNN, layers: [{ type: 'flatten' }] }, /no layer has parameters/],
    [
      'too many parameters',
      { inputSize: 4_000_000, layers: [{ type: 'dense', units: 4000, init: 'he' }], loss: 'mse' },
      /exceed 134217728 parameters/,
    ],
    [
      'a huge activation',
      { ...CNN, layers: [{ ...conv, out: 65536, kernel: 1, stride: 1, pad: 0 }] },
      /more than the 4194304 allowed/,
    ],
    ['65 layers', { ...CNN, layers: Array(65).fill({ type: 'relu' }) }, /at most 64 layers/],
  ])('%s', (_what, value, expected) => {
    expect(refusal(value)).toMatch(expected);
  });
});
