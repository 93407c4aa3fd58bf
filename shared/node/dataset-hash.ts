// A content hash of a Dataset, so a checkpoint or a worker can tell that it is training
// on the same data, with node:crypto; the header bytes come from
// shared/data/hash-encoding.ts, which the browser worker's hash shares.
// shared/node/ holds Node-only code that both the coordinator and the Node worker use; shared/ stays
// platform-neutral (scripts/build-browser.ts states and enforces the rule).
//
// Canonical encoding, hashed with SHA-256:
//   UTF-8 JSON of {name, kind, numSamples, numFeatures, labelWidth, numClasses, classNames}
//   (keys in that order), then the feature floats, then the label floats, f32 little-endian.
// The JSON fixes both array lengths, so the concatenation is unambiguous.

import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import type { Dataset } from '../data/dataset.js';
import { datasetHashHeader } from '../data/hash-encoding.js';

/** Hex SHA-256 of the dataset's canonical encoding (see the file header). */
export function datasetHash(ds: Dataset): string {
  // Typed arrays use the platform's byte order; the encoding is defined as little-endian.
  if (endianness() !== 'LE') throw new Error('datasetHash: big-endian platforms are not supported');
  if (ds.features.length !== ds.numSamples * ds.numFeatures || ds.labels.length !== ds.numSamples * ds.labelWidth) {
    // A loader bug, not a user error: keep the stack trace.
    throw new Error(
      `datasetHash: "${ds.name}" has ${ds.features.length} feature and ${ds.labels.length} label values, ` +
        `expected ${ds.numSamples}×${ds.numFeatures} and ${ds.numSamples}×${ds.labelWidth}`,
    );
  }
  return createHash('sha256')
    .update(datasetHashHeader(ds))
    .update(bytesOf(ds.features))
    .update(bytesOf(ds.labels))
    .digest('hex');
}

/** The bytes of exactly this view (a subarray's byteOffset respected). */
function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
