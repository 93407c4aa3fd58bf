// The platform-neutral half of the dataset hash: the header bytes of the canonical
// encoding. node/dataset-hash.ts (node:crypto) and worker/browser/dataset-hash.ts
// (crypto.subtle, or a plain-JS SHA-256 outside secure contexts) both hash
//   header ‖ feature floats ‖ label floats   (f32 little-endian)
// and must agree bit for bit, so the header is built here once.

import type { Dataset } from './dataset.js';

/** The fields of a dataset (or its wire descriptor) that the header encodes. */
export type DatasetHeaderFields = Pick<
  Dataset,
  'name' | 'kind' | 'numSamples' | 'numFeatures' | 'labelWidth' | 'numClasses' | 'classNames'
>;

/** Exactly the header fields, in the header's key order (a descriptor or dataset carries more). */
export function headerFields(d: DatasetHeaderFields): DatasetHeaderFields {
  return {
    name: d.name,
    kind: d.kind,
    numSamples: d.numSamples,
    numFeatures: d.numFeatures,
    labelWidth: d.labelWidth,
    numClasses: d.numClasses,
    classNames: d.classNames,
  };
}

/** UTF-8 JSON of {name, kind, numSamples, numFeatures, labelWidth, numClasses, classNames}, keys in that order. */
export function datasetHashHeader(d: DatasetHeaderFields): Uint8Array {
  // Picked field by field: a descriptor carries more keys (hash, path) that must not leak in.
  return new TextEncoder().encode(JSON.stringify(headerFields(d)));
}
