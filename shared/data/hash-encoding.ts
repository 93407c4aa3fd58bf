// The platform-neutral half of the dataset hash: the header bytes of the canonical
// encoding. node/dataset-hash.ts (node:crypto) and worker/browser/dataset-hash.ts
// (crypto.subtle, or a plain-JS SHA-256 outside secure contexts) both hash
//   header ‖ transfer body   (transfer.ts: the dataset as stored, f32 or bytes)
// and must agree bit for bit, so the header is built here once.

import type { Dataset, FeatureDtype } from './dataset.js';

/** The fields of a dataset's wire descriptor that the header encodes. */
export type DatasetHeaderFields = Pick<
  Dataset,
  'name' | 'kind' | 'numSamples' | 'numFeatures' | 'labelWidth' | 'numClasses' | 'classNames'
> & {
  readonly dtype: FeatureDtype;
};

/** The dtype a dataset's features are stored, hashed and sent in. */
export function featureDtype(ds: Pick<Dataset, 'bytes'>): FeatureDtype {
  return ds.bytes === undefined ? 'f32' : 'u8';
}

/** Exactly the header fields of a dataset, in the header's key order (a dataset carries more). */
export function headerFields(ds: Dataset): DatasetHeaderFields {
  return {
    name: ds.name,
    kind: ds.kind,
    numSamples: ds.numSamples,
    numFeatures: ds.numFeatures,
    labelWidth: ds.labelWidth,
    numClasses: ds.numClasses,
    classNames: ds.classNames,
    dtype: featureDtype(ds),
  };
}

/**
 * UTF-8 JSON of {name, kind, numSamples, numFeatures, labelWidth, numClasses, classNames},
 * keys in that order, then `"dtype":"u8"` for byte features only: an f32 dataset's
 * header, and so its hash, stays what it is without a dtype.
 */
export function datasetHashHeader(d: DatasetHeaderFields): Uint8Array {
  // Picked field by field: a descriptor carries more keys (hash, path) that must not leak in.
  const fields = {
    name: d.name,
    kind: d.kind,
    numSamples: d.numSamples,
    numFeatures: d.numFeatures,
    labelWidth: d.labelWidth,
    numClasses: d.numClasses,
    classNames: d.classNames,
  };
  return new TextEncoder().encode(JSON.stringify(d.dtype === 'f32' ? fields : { ...fields, dtype: d.dtype }));
}
