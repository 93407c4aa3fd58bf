// The dataset hash in the browser: SHA-256 of the shared header (shared/data/
// hash-encoding.ts) followed by the transfer body, which is exactly the feature
// floats then the label floats, f32 little-endian — the same bytes the Node side
// hashes, so the result is the same hex string.

import { datasetHashHeader, type DatasetHeaderFields } from '../../shared/data/hash-encoding.js';
import { sha256Hex } from './sha256.js';

/** Hex SHA-256 of header ‖ body; crypto.subtle where the page is a secure context, plain JS elsewhere. */
export async function datasetBodyHash(d: DatasetHeaderFields, body: Uint8Array): Promise<string> {
  const header = datasetHashHeader(d);
  const subtle = globalThis.crypto?.subtle;
  if (subtle === undefined) return sha256Hex([header, body]);
  const joined = new Uint8Array(header.length + body.length);
  joined.set(header, 0);
  joined.set(body, header.length);
  const digest = new Uint8Array(await subtle.digest('SHA-256', joined));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}
