// Copies the rows of chosen samples into contiguous batch buffers, the input every
// forward pass takes: training shards on workers, validation batches on the coordinator.

import type { Dataset } from './dataset.js';

/**
 * x (indices.length, numFeatures) and y (indices.length, labelWidth) receive the
 * features and labels of samples `indices`, in order. Throws on an index past the data.
 */
export function gatherRows(x: Float32Array, y: Float32Array, data: Dataset, indices: ArrayLike<number>): void {
  const { numFeatures: F, labelWidth: L, features, labels, numSamples } = data;
  for (let r = 0; r < indices.length; r++) {
    const s = indices[r];
    if (s >= numSamples) throw new RangeError(`sample index ${s} is out of range (dataset has ${numSamples})`);
    x.set(features.subarray(s * F, s * F + F), r * F);
    y.set(labels.subarray(s * L, s * L + L), r * L);
  }
}
