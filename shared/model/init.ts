// Initial parameters drawn from the run's seed. Uniform variants of He and Xavier
// (PyTorch's kaiming_uniform_ / xavier_uniform_ bounds) need only sqrt, which is exact
// on every engine, where normal sampling would need log and cos. Biases start at 0.
// Fans are PyTorch's: a dense weight [out, in] has fan-in `in`; a conv weight
// [out, in, kh, kw] has fan-in in·kh·kw and fan-out out·kh·kw.

import { deriveRng } from '../rng.js';
import { hasParams, paramLayout, type ModelSpec } from './spec.js';

export function initParams(spec: ModelSpec, seed: number): Float32Array {
  const layout = paramLayout(spec);
  const params = new Float32Array(layout.totalSize);
  spec.layers.forEach((layer, i) => {
    if (!hasParams(layer)) return;
    const weight = layout.tensors.find((t) => t.name === `${i}.weight`)!;
    const [out, inp, ...window] = weight.shape;
    const receptive = window.reduce((a, b) => a * b, 1);
    const fanIn = inp * receptive;
    const fanOut = out * receptive;
    const bound = layer.init === 'he' ? Math.sqrt(6 / fanIn) : Math.sqrt(6 / (fanIn + fanOut));
    const rng = deriveRng(seed, 'init', i);
    for (let k = 0; k < weight.size; k++) params[weight.offset + k] = (2 * rng.nextFloat() - 1) * bound;
  });
  return params;
}
