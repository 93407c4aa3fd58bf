// shared/model/network.ts on convolutional models: the gradient of a whole small CNN
// (two convs, one padded and strided, both poolings, every activation, flatten,
// dropout, dense) checked parameter by parameter against central differences of a
// float64 reference forward pass written here from PyTorch's definitions; dropout off
// in evaluation; masks keyed by (step, sample index), not by batch position; and
// ShardComputer giving the same bits for any split of a step's shards, and a pool of
// compute threads (the built dist/worker/node/compute-thread.js) the same bits again.

import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../../shared/data/dataset.js';
import { dropoutLayerSeed, dropoutMaskValue } from '../../../shared/kernels/dropout.js';
import type { KernelSetName } from '../../../shared/kernels/kernel-set.js';
import { initParams } from '../../../shared/model/init.js';
import { Network } from '../../../shared/model/network.js';
import { parseLayers } from '../../../shared/model/layers-flag.js';
import { inputShapeOf, layerShapes, paramLayout, type ModelSpec, type Shape } from '../../../shared/model/spec.js';
import { deriveRng } from '../../../shared/rng.js';
import { nodeKey, reduceNode, rootNode } from '../../../shared/tree.js';
import { ShardComputer } from '../../../worker/compute.js';
import { ThreadedComputer } from '../../../worker/node/threaded-compute.js';
import { CLI } from '../../e2e/harness.js';

const BATCH = 3;
const H = 1e-5;
const ATOL = 3e-6;
const RTOL = 2e-4;
const STEP = 7;
const INDICES = Uint32Array.from([40, 3, 17]);

const CNN = parseLayers(
  'conv2d:3:3:1:1,tanh,maxpool2d:2:1,conv2d:4:2:2,leaky_relu:0.1,avgpool2d:2:1,' +
    'dropout:0.3,flatten,dense:5,sigmoid,dense:3',
  { inputShape: [2, 6, 6], outputs: 3, loss: 'cross_entropy', seed: 99 },
);

/** The float64 loss (Σ over the batch of cross entropy) of `spec` at p on x, dropout as in training. */
function referenceLoss(spec: ModelSpec, p: Float64Array, x: Float32Array, labels: Float32Array, B: number): number {
  const layout = paramLayout(spec);
  const offset = (name: string) => layout.tensors.find((t) => t.name === name)!.offset;
  const shapes = layerShapes(spec);
  let total = 0;
  for (let b = 0; b < B; b++) {
    const F = spec.inputSize;
    let a = Float64Array.from(x.subarray(b * F, (b + 1) * F));
    let shape: Shape = inputShapeOf(spec);
    spec.layers.forEach((layer, i) => {
      const next = shapes[i];
      const out = new Float64Array(next.reduce((m, d) => m * d, 1));
      switch (layer.type) {
        case 'dense': {
          const w = offset(`${i}.weight`);
          const bias = offset(`${i}.bias`);
          const n = a.length;
          for (let o = 0; o < out.length; o++) {
            let s = p[bias + o];
            for (let c = 0; c < n; c++) s += p[w + o * n + c] * a[c];
            out[o] = s;
          }
          break;
        }
        case 'conv2d': {
          const [C, Hh, W] = shape as readonly [number, number, number];
          const [, OH, OW] = next as readonly [number, number, number];
          const K = layer.kernel;
          const w = offset(`${i}.weight`);
          const bias = offset(`${i}.bias`);
          for (let o = 0; o < layer.out; o++)
            for (let oh = 0; oh < OH; oh++)
              for (let ow = 0; ow < OW; ow++) {
                let s = p[bias + o];
                for (let c = 0; c < C; c++)
                  for (let kh = 0; kh < K; kh++)
                    for (let kw = 0; kw < K; kw++) {
                      const h = oh * layer.stride - layer.pad + kh;
                      const ww = ow * layer.stride - layer.pad + kw;
                      if (h < 0 || h >= Hh || ww < 0 || ww >= W) continue;
                      s += p[w + ((o * C + c) * K + kh) * K + kw] * a[(c * Hh + h) * W + ww];
                    }
                out[(o * OH + oh) * OW + ow] = s;
              }
          break;
        }
        case 'maxpool2d':
        case 'avgpool2d': {
          const [C, Hh, W] = shape as readonly [number, number, number];
          const [, OH, OW] = next as readonly [number, number, number];
          const K = layer.kernel;
          for (let c = 0; c < C; c++)
            for (let oh = 0; oh < OH; oh++)
              for (let ow = 0; ow < OW; ow++) {
                let m = -Infinity;
                let s = 0;
                for (let kh = 0; kh < K; kh++)
                  for (let kw = 0; kw < K; kw++) {
                    const v = a[(c * Hh + oh * layer.stride + kh) * W + ow * layer.stride + kw];
                    m = Math.max(m, v);
                    s += v;
                  }
                out[(c * OH + oh) * OW + ow] = layer.type === 'maxpool2d' ? m : s / (K * K);
              }
          break;
        }
        case 'flatten':
          out.set(a);
          break;
        case 'relu':
          for (let k = 0; k < a.length; k++) out[k] = Math.max(0, a[k]);
          break;
        case 'leaky_relu':
          for (let k = 0; k < a.length; k++) out[k] = a[k] > 0 ? a[k] : layer.slope * a[k];
          break;
        case 'sigmoid':
          for (let k = 0; k < a.length; k++) out[k] = 1 / (1 + Math.exp(-a[k]));
          break;
        case 'tanh':
          for (let k = 0; k < a.length; k++) out[k] = Math.tanh(a[k]);
          break;
        case 'dropout': {
          const seed = dropoutLayerSeed(layer.seed, i);
          for (let k = 0; k < a.length; k++) out[k] = a[k] * dropoutMaskValue(layer.p, seed, STEP, INDICES[b], k);
          break;
        }
      }
      a = out;
      shape = next;
    });
    const m = Math.max(...a);
    let z = 0;
    for (const v of a) z += Math.exp(v - m);
    total += Math.log(z) + m - a[labels[b]];
  }
  return total;
}

function problem(spec: ModelSpec, seed: number) {
  const params = initParams(spec, seed);
  const rng = deriveRng(seed, 'test-data', 0);
  const x = Float32Array.from({ length: BATCH * spec.inputSize }, () => 2 * rng.nextFloat() - 1);
  const labels = Float32Array.from({ length: BATCH }, (_, b) => b % 3);
  return { params, x, labels };
}

describe('a whole CNN through Network vs central differences (float64 reference, h = 1e-5)', () => {
  for (const kernels of ['js', 'wasm'] as KernelSetName[]) {
    it(`every parameter's gradient, dropout on at step ${STEP} (${kernels} kernels)`, () => {
      const { params, x, labels } = problem(CNN, 3);
      const net = new Network(CNN, BATCH, kernels);
      const grads = new Float32Array(net.layout.totalSize).fill(Number.NaN); // computeGradient overwrites
      const stats = net.computeGradient(params, grads, x, labels, BATCH, { step: STEP, indices: INDICES });
      const p = Float64Array.from(params);
      expect(Math.abs(stats.lossSum - referenceLoss(CNN, p, x, labels, BATCH))).toBeLessThan(1e-5);
      for (const t of net.layout.tensors) {
        let largest = 0;
        for (let k = t.offset; k < t.offset + t.size; k++) {
          const v = p[k];
          p[k] = v + H;
          const plus = referenceLoss(CNN, p, x, labels, BATCH);
          p[k] = v - H;
          const minus = referenceLoss(CNN, p, x, labels, BATCH);
          p[k] = v;
          const numeric = (plus - minus) / (2 * H);
          expect(Math.abs(grads[k] - numeric), `${t.name}[${k - t.offset}]`).toBeLessThanOrEqual(
            ATOL + RTOL * Math.abs(numeric),
          );
          largest = Math.max(largest, Math.abs(grads[k]));
        }
        expect(largest, `${t.name} has a gradient`).toBeGreaterThan(1e-4);
      }
      // accumulateGradient adds the same gradient onto what is there (a kernel may add before rounding).
      const twice = grads.slice();
      net.accumulateGradient(params, twice, x, labels, BATCH, { step: STEP, indices: INDICES });
      for (let k = 0; k < grads.length; k++)
        expect(Math.abs(twice[k] - 2 * grads[k])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(2 * grads[k])));
    });
  }

  it('evaluation turns dropout off: the same outputs as the model without it', () => {
    const { params, x } = problem(CNN, 4);
    const without: ModelSpec = {
      ...CNN,
      layers: CNN.layers.map((l) => (l.type === 'dropout' ? { type: 'flatten' } : l)),
    };
    const a = new Network(CNN, BATCH).forward(params, x, BATCH).slice();
    const b = new Network(without, BATCH).forward(params, x, BATCH);
    expect(a).toEqual(b);
  });

  it("a sample's mask follows its dataset index and the step, not its place in the batch", () => {
    const { params, x, labels } = problem(CNN, 5);
    const net = new Network(CNN, BATCH);
    const F = CNN.inputSize;
    const grad = (order: number[], step: number) => {
      const xs = new Float32Array(order.length * F);
      order.forEach((b, k) => xs.set(x.subarray(b * F, (b + 1) * F), k * F));
      const g = new Float32Array(net.layout.totalSize);
      const indices = Uint32Array.from(order, (b) => INDICES[b]);
      net.computeGradient(
        params,
        g,
        xs,
        Float32Array.from(order, (b) => labels[b]),
        order.length,
        { step, indices },
      );
      return g;
    };
    // One sample alone, or first, or last: the same mask, so the same gradient.
    const alone = grad([1], STEP);
    const g = new Network(CNN, 1);
    const again = new Float32Array(alone.length);
    g.computeGradient(params, again, x.subarray(F, 2 * F), labels.subarray(1, 2), 1, {
      step: STEP,
      indices: INDICES.subarray(1, 2),
    });
    expect(again).toEqual(alone);
    expect(grad([1], STEP + 1)).not.toEqual(alone);
    // Σ of the per-sample gradients equals the batch's, up to the order of float additions.
    const sum = grad([0], STEP).map((v, k) => v + alone[k] + grad([2], STEP)[k]);
    const batch = grad([2, 0, 1], STEP);
    for (let k = 0; k < sum.length; k++) expect(batch[k]).toBeCloseTo(sum[k], 5);
  });

  it('a model with dropout refuses to train without the step and sample indices', () => {
    const { params, x, labels } = problem(CNN, 6);
    const net = new Network(CNN, BATCH);
    expect(() => net.computeGradient(params, new Float32Array(net.layout.totalSize), x, labels, BATCH)).toThrow(
      /needs the step and sample indices/,
    );
  });
});

describe('ShardComputer on a CNN with dropout', () => {
  const spec = CNN;
  const N = 40;
  const rng = deriveRng(1, 'test-data', 1);
  const data: Dataset = {
    name: 'images',
    kind: 'classification',
    numSamples: N,
    numFeatures: spec.inputSize,
    labelWidth: 1,
    numClasses: 3,
    classNames: ['a', 'b', 'c'],
    features: Float32Array.from({ length: N * spec.inputSize }, () => 2 * rng.nextFloat() - 1),
    labels: Float32Array.from({ length: N }, (_, i) => i % 3),
  };
  const params = initParams(spec, 8);
  const shards = [0, 1, 2, 3, 4].map((id) => ({ id, indices: Uint32Array.from([id * 7, id * 7 + 3, 39 - id]) }));

  for (const kernels of ['js', 'wasm'] as KernelSetName[]) {
    it(`workers holding any split of a step's shards reduce to the bits of one (${kernels})`, () => {
      const one = new ShardComputer(spec, data, 4, kernels).computeNodes(params, shards, 5, STEP);
      const root = one[0].partial;
      for (const split of [
        [0, 3],
        [1, 2, 4],
        [0, 1, 2, 3, 4],
      ]) {
        const held = [shards.slice(0, split[0]), ...split.map((at, k) => shards.slice(at, split[k + 1]))];
        const arrived = held
          .filter((h) => h.length > 0)
          .flatMap((h) => new ShardComputer(spec, data, 4, kernels).computeNodes(params, h, 5, STEP));
        const got = new Map(arrived.map((n) => [nodeKey(n.node), n.partial.grad]));
        const all = reduceNode(
          rootNode(5),
          5,
          (n) => got.get(nodeKey(n)),
          (l, r) => Float32Array.from(l, (v, k) => v + r[k]),
        );
        expect(all, JSON.stringify(split)).toEqual(root.grad);
      }
      // Another step draws other masks.
      const other = new ShardComputer(spec, data, 4, kernels).computeNodes(params, shards, 5, STEP + 1);
      expect(other[0].partial.grad).not.toEqual(root.grad);
    });
  }

  it('a pool of 2 compute threads gives the same bits, the step reaching each thread', async () => {
    const threaded = new ThreadedComputer(
      { spec, dataset: data, datasetHash: 'test', shardSize: 4, kernels: 'wasm', wireDtype: 'f32' },
      {
        threads: 2,
        entry: new URL('../../worker/node/compute-thread.js', pathToFileURL(CLI)),
        minRunWork: 0,
        onCrash: () => {},
      },
    );
    try {
      for (const step of [STEP, STEP + 1]) {
        const want = new ShardComputer(spec, data, 4, 'wasm').computeNodes(params, shards, 5, step)[0].partial.grad;
        const got = await threaded.computeNodes(params, shards, 5, step);
        expect(got.map((n) => nodeKey(n.node))).toEqual([nodeKey(rootNode(5))]);
        expect(got[0].partial.grad).toEqual(want);
      }
    } finally {
      await threaded.close();
    }
  });
});
