// A content hash of a Dataset, so a checkpoint or a worker can tell that it is training
// on the same data, with node:crypto; the header bytes come from
// shared/data/hash-encoding.ts and the body from shared/data/transfer.ts, both shared
// with the browser worker's hash.
// shared/node/ holds Node-only code that both the coordinator and the Node worker use; shared/ stays
// platform-neutral (scripts/build-browser.ts states and enforces the rule).
//
// Canonical encoding, hashed with SHA-256: the header (UTF-8 JSON of the descriptor's
// shape fields, see datasetHashHeader), then the transfer body: the dataset as stored
// (f32 features, or the byte features' level table and codes) and its f32 labels, all
// little-endian. The JSON fixes every length, so the concatenation is unambiguous.

import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import type { Dataset } from '../data/dataset.js';
import { type DatasetHeaderFields, datasetHashHeader, headerFields } from '../data/hash-encoding.js';
import { transferParts } from '../data/transfer.js';

/** Hex SHA-256 of the dataset's canonical encoding (see the file header). */
export function datasetHash(ds: Dataset): string {
  if (ds.features.length !== ds.numSamples * ds.numFeatures || ds.labels.length !== ds.numSamples * ds.labelWidth) {
    // A loader bug, not a user error: keep the stack trace.
    throw new Error(
      `datasetHash: "${ds.name}" has ${ds.features.length} feature and ${ds.labels.length} label values, ` +
        `expected ${ds.numSamples}×${ds.numFeatures} and ${ds.numSamples}×${ds.labelWidth}`,
    );
  }
  if (ds.bytes !== undefined && ds.bytes.codes.length !== ds.features.length)
    throw new Error(
      `datasetHash: "${ds.name}" has ${ds.bytes.codes.length} byte codes for ${ds.features.length} features`,
    );
  return transferHash(headerFields(ds), transferParts(ds));
}

/** Hex SHA-256 of header ‖ body, the body as received (a worker checks a download before widening it). */
export function transferHash(d: DatasetHeaderFields, body: readonly Uint8Array[]): string {
  // Typed arrays use the platform's byte order; the encoding is defined as little-endian.
  if (endianness() !== 'LE') throw new Error('datasetHash: big-endian platforms are not supported');
  const hash = createHash('sha256').update(datasetHashHeader(d));
  for (const part of body) hash.update(part);
  return hash.digest('hex');
}
