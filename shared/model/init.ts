// Initial parameters drawn from the run's seed. Uniform variants of He and Xavier
// (PyTorch's kaiming_uniform_ / xavier_uniform_ bounds) need only sqrt, which is exact
// on every engine, where normal sampling would need log and cos. Biases start at 0.

import { deriveRng } from '../rng.js';
import { paramLayout, type ModelSpec } from './spec.js';

export function initParams(spec: ModelSpec, seed: number): Float32Array {
  const layout = paramLayout(spec);
  const params = new Float32Array(layout.totalSize);
  spec.layers.forEach((layer, i) => {
    if (layer.type !== 'dense') return;
    const weight = layout.tensors.find((t) => t.name === `${i}.weight`)!;
    const [fanOut, fanIn] = weight.shape;
    const bound = layer.init === 'he' ? Math.sqrt(6 / fanIn) : Math.sqrt(6 / (fanIn + fanOut));
    const rng = deriveRng(seed, 'init', i);
    for (let k = 0; k < weight.size; k++) params[weight.offset + k] = (2 * rng.nextFloat() - 1) * bound;
  });
  return params;
}
