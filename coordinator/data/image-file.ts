// Reading an IDX (gzip or not) or NPY file from disk for shared/data/arrays.ts: the
// format is told by the content (gzip and NPY magic), not by the name.

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parseIdx, parseNpy, type NumericArray } from '../../shared/data/arrays.js';
import { DataError } from '../../shared/errors.js';

export function readImageFile(path: string): NumericArray {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new DataError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = new Uint8Array(gunzipSync(bytes));
    } catch {
      throw new DataError(`${path}: gzip data is corrupt`);
    }
  }
  return bytes[0] === 0x93 ? parseNpy(bytes, path) : parseIdx(bytes, path);
}
