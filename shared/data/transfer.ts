// The dataset's transfer encoding, shared by the coordinator's HTTP route and both
// workers: features then labels, raw little-endian float32, nothing else. The
// descriptor carries the shapes and the hash the worker checks the bytes against.

import { DataError } from '../errors.js';
import type { DatasetDescriptor } from '../protocol/messages.js';
import type { Dataset } from './dataset.js';

export function transferByteLength(d: Pick<DatasetDescriptor, 'numSamples' | 'numFeatures' | 'labelWidth'>): number {
  return d.numSamples * (d.numFeatures + d.labelWidth) * 4;
}

/** Rebuilds a Dataset from the transfer bytes; the caller still checks its hash. */
export function datasetFromBytes(d: DatasetDescriptor, bytes: Uint8Array): Dataset {
  const expected = transferByteLength(d);
  if (bytes.byteLength !== expected) {
    throw new DataError(`dataset ${d.name}: expected ${expected} bytes, got ${bytes.byteLength}`);
  }
  const featureBytes = d.numSamples * d.numFeatures * 4;
  // Views when the bytes are 4-byte aligned (a fresh download or file read is, and its
  // callers only read it afterwards): no second copy of a dataset that may be tens of
  // MB. Otherwise copies, as a typed view needs alignment (new Uint8Array(view)
  // copies; a Node Buffer's slice would not).
  const aligned = bytes.byteOffset % 4 === 0;
  const features = aligned
    ? new Float32Array(bytes.buffer, bytes.byteOffset, featureBytes / 4)
    : new Float32Array(new Uint8Array(bytes.subarray(0, featureBytes)).buffer);
  const labels = aligned
    ? new Float32Array(bytes.buffer, bytes.byteOffset + featureBytes, (bytes.byteLength - featureBytes) / 4)
    : new Float32Array(new Uint8Array(bytes.subarray(featureBytes)).buffer);
  return {
    name: d.name,
    kind: d.kind,
    numSamples: d.numSamples,
    numFeatures: d.numFeatures,
    features,
    labelWidth: d.labelWidth,
    labels,
    numClasses: d.numClasses,
    classNames: d.classNames,
  };
}
