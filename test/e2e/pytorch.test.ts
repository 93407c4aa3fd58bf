// The --out file in real PyTorch: test/fixtures/torch_forward.py builds the
// nn.Sequential the file's metadata describes, load_state_dict(strict=True) takes the
// file's tensors as they are (names, [out, in] shapes, f32), and its forward pass
// agrees with flocktrain's on the same inputs. Needs Debian's python3-torch
// (.ci/run installs it); without it the suite is skipped with a loud message, except
// under CI=true, where that is a failure.

import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeNeeding } from '../support/describe-needing.js';
import { spirals } from '../../shared/data/synthetic.js';
import { Network } from '../../shared/model/network.js';
import { decodeSafetensors, loadParams } from '../../shared/model/safetensors.js';
import { paramLayout, validateSpec } from '../../shared/model/spec.js';
import { Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../fixtures/torch_forward.py', import.meta.url));
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
    writeFileSync(inputs, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));

    const report = JSON.parse(
      execFileSync(PYTHON, [SCRIPT, out, inputs, String(N), outputs], { encoding: 'utf8' }),
    ) as { layers: string[]; outputs: number[] };
    expect(report.layers).toEqual(['Linear', 'Tanh', 'Linear', 'Tanh', 'Linear']);
    expect(report.outputs).toEqual([N, 2]);

    const theirs = new Float32Array(new Uint8Array(readFileSync(outputs)).buffer);
    const ours = new Network(spec, N, 'js').forward(params, x, N);
    expect(theirs.length).toBe(ours.length);
    // Same weights, same inputs; only the order of float additions differs.
    let worst = 0;
    for (let i = 0; i < ours.length; i++)
      worst = Math.max(worst, Math.abs(theirs[i] - ours[i]) / Math.max(1, Math.abs(ours[i])));
    expect(worst).toBeLessThan(1e-5);
  });
});
