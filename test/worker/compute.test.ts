// worker/compute.ts: every worker (Node, browser, the single-process trainer) turns
// weights and shard indices into one partial gradient per maximal tree node with this
// code, so a run's bits are a function of its config and seed whatever the worker
// count. All shards at once give just the root, equal to reducing the per-shard
// gradients and close to the whole batch's gradient; any split of the shards among
// separate ShardComputers reduces to the same bits; mismatched data is refused.

import { describe, it, expect } from 'vitest';
import { epochOrder, planStep } from '../../coordinator/plan.js';
import type { Dataset } from '../../shared/data/dataset.js';
import { combineInto } from '../../shared/gradient.js';
import { initParams } from '../../shared/model/init.js';
import { Network } from '../../shared/model/network.js';
import { mlpSpec } from '../../shared/model/spec.js';
import { deriveRng } from '../../shared/rng.js';
import { reduceNode, rootNode } from '../../shared/tree.js';
import { ShardComputer, type ShardInput } from '../../worker/compute.js';
import { bits, randomPartition, reduceFrom, SEED } from '../support/determinism.js';

/** A tiny classification dataset: 3 classes, 5 features, labels a function of the features. */
function syntheticDataset(numSamples: number): Dataset {
  const rng = deriveRng(SEED, 'dataset');
  const F = 5;
  const features = Float32Array.from({ length: numSamples * F }, () => 2 * rng.nextFloat() - 1);
  const labels = new Float32Array(numSamples);
  for (let s = 0; s < numSamples; s++)
    labels[s] = features[s * F] + features[s * F + 1] > 0.3 ? 2 : features[s * F + 2] > 0 ? 1 : 0;
  return {
    name: 'determinism-fixture',
    kind: 'classification',
    numSamples,
    numFeatures: F,
    features,
    labelWidth: 1,
    labels,
    numClasses: 3,
    classNames: [],
  };
}

describe('ShardComputer', () => {
  const data = syntheticDataset(97);
  const spec = mlpSpec(5, [6], 3, 'tanh', 'cross_entropy');
  const params = initParams(spec, SEED);
  const SHARD = 4;

  function shardsOf(order: Uint32Array): ShardInput[] {
    return planStep(order, 0, 0, 0, order.length, SHARD).shards.map((indices, id) => ({ id, indices }));
  }

  it('computeNodes over all shards returns just the root, equal to reducing the per-shard gradients', () => {
    const order = epochOrder(
      Uint32Array.from({ length: 97 }, (_, i) => i),
      SEED,
      0,
    );
    const shards = shardsOf(order);
    const computer = new ShardComputer(spec, data, SHARD);
    const nodes = computer.computeNodes(params, shards, shards.length);
    expect(nodes.map((n) => n.node)).toEqual([rootNode(shards.length)]);
    const root = nodes[0].partial;
    expect(root.count).toBe(97);
    const leaves = shards.map((s) => computer.computeShard(params, s.indices));
    const expected = reduceNode(
      rootNode(shards.length),
      shards.length,
      (n) => (n.size === 1 ? leaves[n.lo] : undefined),
      combineInto,
    );
    expect(bits(root.grad)).toEqual(bits(expected.grad));
    expect(root.lossSum).toBe(expected.lossSum);
    expect(root.correct).toBe(expected.correct);

    // And it is the gradient of the whole batch, up to float32 summation order (1e-5 relative to max |value|).
    const net = new Network(spec, 97);
    const x = new Float32Array(97 * 5);
    const y = new Float32Array(97);
    order.forEach((s, r) => {
      x.set(data.features.subarray(s * 5, s * 5 + 5), r * 5);
      y[r] = data.labels[s];
    });
    const whole = new Float32Array(computer.paramCount);
    const stats = net.accumulateGradient(params, whole, x, y, 97);
    let scale = 0;
    for (const v of whole) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < whole.length; i++) expect(Math.abs(root.grad[i] - whole[i])).toBeLessThanOrEqual(1e-5 * scale);
    expect(root.lossSum).toBeCloseTo(stats.lossSum, 9);
    expect(root.correct).toBe(stats.correct);
  });

  it('workers holding any split of the shards, each with its own ShardComputer, reduce to the same bits', () => {
    const rng = deriveRng(SEED, 'workers');
    const order = epochOrder(
      Uint32Array.from({ length: 97 }, (_, i) => i),
      SEED,
      1,
    );
    const shards = shardsOf(order);
    const numShards = shards.length; // 25: the last shard has one sample
    const single = new ShardComputer(spec, data, SHARD).computeNodes(params, shards, numShards);
    const reference = reduceFrom(single, numShards);
    for (let trial = 0; trial < 30; trial++) {
      const sets = randomPartition(rng, numShards, 1 + rng.nextInt(5));
      const arrived = sets.flatMap((held) =>
        new ShardComputer(spec, data, SHARD).computeNodes(
          params,
          held.map((id) => shards[id]),
          numShards,
        ),
      );
      const got = reduceFrom(arrived.reverse(), numShards);
      expect(bits(got.grad), JSON.stringify(sets)).toEqual(bits(reference.grad));
      expect(got.lossSum).toBe(reference.lossSum);
      expect(got.count).toBe(97);
      expect(got.correct).toBe(reference.correct);
    }
  });

  it('rejects a dataset whose width does not match the model, and out-of-range samples', () => {
    expect(() => new ShardComputer(mlpSpec(4, [3], 3, 'tanh', 'cross_entropy'), data, SHARD)).toThrow(
      /5 features.*expects 4/,
    );
    const computer = new ShardComputer(spec, data, SHARD);
    expect(() => computer.computeShard(params, Uint32Array.from([0, 97]))).toThrow(/97 is out of range/);
    expect(() => computer.computeShard(params, new Uint32Array(SHARD + 1))).toThrow(RangeError);
  });
});
