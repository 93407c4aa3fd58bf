// The --out file in real PyTorch: test/fixtures/torch_forward.py builds the
// nn.Sequential the file's metadata describes, load_state_dict(strict=True) takes the
// file's tensors as they are (names, [out, in] and [out, in, kh, kw] shapes, f32), and
// its forward pass agrees with flocktrain's on the same inputs, for an MLP and for a
// convolutional model; and a few SGD steps of `flocktrain train` on a convolutional
// model land where torch.optim.SGD does (test/fixtures/torch_sgd.py). Needs Debian's python3-torch
// (.ci/run installs it); without it the suite is skipped with a loud message, except
// under CI=true, where that is a failure.

import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeNeeding } from '../support/describe-needing.js';
import { writeImageCsv } from '../support/image-csv.js';
import { loadCsvFile } from '../../coordinator/data/csv-file.js';
import { spirals } from '../../shared/data/synthetic.js';
import { initParams } from '../../shared/model/init.js';
import { parseLayers } from '../../shared/model/layers-flag.js';
import { Network } from '../../shared/model/network.js';
import { decodeSafetensors, encodeSafetensors, loadParams } from '../../shared/model/safetensors.js';
import { paramLayout, validateSpec } from '../../shared/model/spec.js';
import { Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../fixtures/torch_forward.py', import.meta.url));
const SGD_SCRIPT = fileURLToPath(new URL('../fixtures/torch_sgd.py', import.meta.url));
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

const torch = {
  present: hasTorch,
  missing: `${PYTHON} cannot import torch`,
  install: 'apt-get update && apt-get install -y python3-torch',
};

describeNeeding(torch, 'a flocktrain model file in PyTorch', () => {
  it('loads into nn.Sequential with strict=True and computes what flocktrain computes', async () => {
    const sb = new Sandbox();
    const out = sb.path('model.safetensors');
    // Two hidden layers and tanh: layer indices 0, 2, 4 hold weights, as nn.Sequential numbers them.
    await sb.train([
      '--dataset',
      'spirals',
      '--samples',
      '400',
      '--hidden',
      '16,8',
      '--activation',
      'tanh',
      '--epochs',
      '2',
      '--batch-size',
      '32',
      '--shard-size',
      '8',
      '--out',
      out,
    ]);

    const file = decodeSafetensors(new Uint8Array(readFileSync(out)));
    const spec = validateSpec(JSON.parse(file.metadata['flocktrain.spec']));
    const params = loadParams(paramLayout(spec), file);
    const N = 50;
    const x = spirals(N, 99).features;
    const inputs = sb.path('inputs.f32');
    const outputs = sb.path('outputs.f32');
    writeFloats(inputs, x);

    const report = JSON.parse(
      execFileSync(PYTHON, [SCRIPT, out, inputs, String(N), outputs], { encoding: 'utf8' }),
    ) as { layers: string[]; outputs: number[] };
    expect(report.layers).toEqual(['Linear', 'Tanh', 'Linear', 'Tanh', 'Linear']);
    expect(report.outputs).toEqual([N, 2]);

    const theirs = readFloats(outputs);
    const ours = new Network(spec, N, 'js').forward(params, x, N);
    // Same weights, same inputs; only the order of float additions differs.
    expect(worstDifference(theirs, ours)).toBeLessThan(1e-5);
  });

  it('a convolutional --out file loads with strict=True, and its forward pass (dropout off) matches', async () => {
    const sb = new Sandbox();
    const csv = sb.path('images.csv');
    writeImageCsv(csv, 120, [2, 7, 7]);
    const out = sb.path('cnn.safetensors');
    await sb.train([
      ...csvArgs(csv),
      '--layers',
      CNN_LAYERS,
      '--epochs',
      '2',
      '--batch-size',
      '24',
      '--shard-size',
      '8',
      '--lr',
      '0.05',
      '--out',
      out,
    ]);
    const file = decodeSafetensors(new Uint8Array(readFileSync(out)));
    const spec = validateSpec(JSON.parse(file.metadata['flocktrain.spec']));
    expect(spec.inputShape).toEqual([2, 7, 7]);
    const params = loadParams(paramLayout(spec), file);
    const N = 30;
    const x = loadCsvFile(csv, { labelColumn: 'label', task: 'classification' }).features.slice(0, N * 98);
    const inputs = sb.path('inputs.f32');
    const outputs = sb.path('outputs.f32');
    writeFloats(inputs, x);

    const report = JSON.parse(
      execFileSync(PYTHON, [SCRIPT, out, inputs, String(N), outputs], { encoding: 'utf8' }),
    ) as { layers: string[]; outputs: number[] };
    expect(report.layers).toEqual([
      'Conv2d',
      'ReLU',
      'MaxPool2d',
      'Conv2d',
      'LeakyReLU',
      'AvgPool2d',
      'Dropout',
      'Flatten',
      'Linear',
    ]);
    expect(report.outputs).toEqual([N, 3]);
    for (const kernels of ['js', 'wasm'] as const) {
      const ours = new Network(spec, N, kernels).forward(params, x, N);
      expect(worstDifference(readFloats(outputs), ours)).toBeLessThan(1e-5);
    }
  });

  it('a few SGD steps of `train` on a convolutional model land where torch.optim.SGD does', async () => {
    const sb = new Sandbox();
    const csv = sb.path('images.csv');
    const N = 48;
    writeImageCsv(csv, N, [2, 7, 7]);
    const data = loadCsvFile(csv, { labelColumn: 'label', task: 'classification' });
    // No dropout: PyTorch draws its masks otherwise.
    const layers = CNN_LAYERS.replace(',dropout:0.3', '');
    const spec = parseLayers(layers, { inputShape: [2, 7, 7], outputs: 3, loss: 'cross_entropy', seed: 5 });
    const init = sb.path('init.safetensors');
    const layout = paramLayout(spec);
    writeFileSync(init, encodeSafetensors(layout, initParams(spec, 11), { 'flocktrain.spec': JSON.stringify(spec) }));
    const STEPS = 4;
    for (const kernels of ['js', 'wasm'] as const) {
      const out = sb.path(`trained-${kernels}.safetensors`);
      // One full-batch step per epoch, nothing held out, features as they are: the steps PyTorch takes.
      await sb.train([
        ...csvArgs(csv),
        '--layers',
        layers,
        '--val-fraction',
        '0',
        '--no-standardize',
        '--epochs',
        String(STEPS),
        '--batch-size',
        String(N),
        '--shard-size',
        '16',
        '--lr',
        '0.1',
        '--momentum',
        '0.9',
        '--seed',
        '5',
        '--kernels',
        kernels,
        '--init',
        init,
        '--out',
        out,
      ]);
      const ours = loadParams(layout, decodeSafetensors(new Uint8Array(readFileSync(out))));
      const inputs = sb.path('x.f32');
      const labels = sb.path('y.f32');
      const theirsPath = sb.path('theirs.f32');
      writeFloats(inputs, data.features);
      writeFloats(labels, data.labels);
      const args = [SGD_SCRIPT, init, inputs, labels, String(N), '0.1', '0.9', String(STEPS), theirsPath];
      const report = JSON.parse(execFileSync(PYTHON, args, { encoding: 'utf8' })) as { losses: number[] };
      expect(report.losses[STEPS - 1]).toBeLessThan(report.losses[0]); // it learned something
      const theirs = readFloats(theirsPath);
      const before = initParams(spec, 11);
      expect(worstDifference(ours, before)).toBeGreaterThan(1e-3); // the weights moved
      // Four steps of float32 training whose sums are taken in another order.
      expect(worstDifference(theirs, ours)).toBeLessThan(1e-4);
    }
  });
});

/** Two conv layers (one padded and strided), both poolings, leaky ReLU and dropout, on 2x7x7 images. */
const CNN_LAYERS =
  'conv2d:4:3:1:1,relu,maxpool2d:2:1,conv2d:5:3:2,leaky_relu:0.1,avgpool2d:2,dropout:0.3,flatten,dense:3';

function csvArgs(csv: string): string[] {
  return ['--csv', csv, '--label-column', 'label', '--input-shape', '2x7x7'];
}

function writeFloats(path: string, a: Float32Array): void {
  writeFileSync(path, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

function readFloats(path: string): Float32Array {
  return new Float32Array(new Uint8Array(readFileSync(path)).buffer);
}

/** The largest difference, relative to max(1, |b|). */
function worstDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return worst;
}
