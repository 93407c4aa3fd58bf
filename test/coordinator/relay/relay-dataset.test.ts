// coordinator/relay/relay-dataset.ts: what a relay loaded as a worker (features
// widened to float32) is served again under its coordinator's hash, for a dataset
// sent as float32 and for one sent as bytes; a dataset that cannot be is refused.

import { describe, expect, it } from 'vitest';
import { servedDataset } from '../../../coordinator/relay/relay-dataset.js';
import { narrowToBytes } from '../../../shared/data/byte-features.js';
import type { Dataset } from '../../../shared/data/dataset.js';
import { headerFields } from '../../../shared/data/hash-encoding.js';
import { blobs } from '../../../shared/data/synthetic.js';
import { datasetFromBytes, transferParts } from '../../../shared/data/transfer.js';
import { DataError } from '../../../shared/errors.js';
import { datasetHash } from '../../../shared/node/dataset-hash.js';

/** What a worker holds after downloading `ds`: the transfer body, checked and widened. */
function asLoaded(ds: Dataset): Dataset {
  const parts = transferParts(ds);
  const body = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    body.set(p, at);
    at += p.byteLength;
  }
  return datasetFromBytes(headerFields(ds), body);
}

/** 40 samples of 6 pixels in 256 grey levels, 3 classes: stored as bytes. */
function pixels(): Dataset {
  const features = Float32Array.from({ length: 240 }, (_, i) => ((i * 37) % 256) / 255);
  const bytes = narrowToBytes(features);
  if (bytes === null) throw new Error('fixture has more than 256 levels');
  return {
    name: 'pixels',
    kind: 'classification',
    numSamples: 40,
    numFeatures: 6,
    features,
    bytes,
    labelWidth: 1,
    labels: Float32Array.from({ length: 40 }, (_, i) => i % 3),
    numClasses: 3,
    classNames: [],
  };
}

describe('servedDataset', () => {
  it('serves a float32 dataset as loaded', () => {
    const ds = blobs(50, 3);
    const loaded = asLoaded(ds);
    expect(servedDataset(loaded, datasetHash(ds))).toBe(loaded);
  });

  it("narrows a byte dataset's widened features back to the coordinator's levels and codes", () => {
    const ds = pixels();
    const loaded = asLoaded(ds);
    expect(loaded.bytes).toBeUndefined();
    const served = servedDataset(loaded, datasetHash(ds));
    expect(datasetHash(served)).toBe(datasetHash(ds));
    expect(served.bytes?.codes).toEqual(ds.bytes?.codes);
    expect(served.bytes?.levels).toEqual(ds.bytes?.levels);
  });

  it('refuses in one line a dataset whose hash it cannot reproduce', () => {
    const ds = blobs(50, 3);
    expect(() => servedDataset(asLoaded(ds), 'ab'.repeat(32))).toThrow(DataError);
    expect(() => servedDataset(asLoaded(ds), 'ab'.repeat(32))).toThrow(/cannot serve it under its coordinator's hash/);
  });
});
