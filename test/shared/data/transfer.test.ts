// The transfer body and the hash over it: a dataset goes out as stored (f32, or byte
// features with their level table) and comes back as the same floats; the Node and
// browser hashes agree on it; the f32 encoding and hash are unchanged by the dtype.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { narrowToBytes } from '../../../shared/data/byte-features.js';
import type { Dataset } from '../../../shared/data/dataset.js';
import { datasetHashHeader, headerFields } from '../../../shared/data/hash-encoding.js';
import { blobs } from '../../../shared/data/synthetic.js';
import { datasetFromBytes, transferByteLength, transferParts } from '../../../shared/data/transfer.js';
import { DataError } from '../../../shared/errors.js';
import { datasetHash, transferHash } from '../../../shared/node/dataset-hash.js';
import { datasetBodyHash } from '../../../worker/browser/dataset-hash.js';

// Computed independently: Python hashlib.sha256(header + struct.pack('<256f', 0, 0.5, 1, 0, …)
//   + bytes([0, 1, 2, 1]) + struct.pack('<2f', 0, 1)), the header ending in "dtype":"u8".
const PINNED_TINY_U8_HASH = 'a979c6d1685256e91e803cedef00cc190e88d8ac19fc2e502eec96ea6c0e792b';

function tiny(): Dataset {
  const features = new Float32Array([0, 0.5, 1, 0.5]);
  return {
    name: 'tiny',
    kind: 'classification',
    numSamples: 2,
    numFeatures: 2,
    features,
    bytes: narrowToBytes(features)!,
    labelWidth: 1,
    labels: new Float32Array([0, 1]),
    numClasses: 2,
    classNames: ['no', 'yes'],
  };
}

/** A byte-feature dataset of `n` samples whose features take at most 201 levels. */
function quantized(n: number): Dataset {
  const base = blobs(n, 3);
  const features = base.features.map((v) => Math.round(Math.max(-5, Math.min(5, v)) * 20) / 20);
  const bytes = narrowToBytes(features);
  expect(bytes).not.toBeNull();
  return { ...base, features, bytes: bytes! };
}

function body(ds: Dataset): Uint8Array {
  return new Uint8Array(Buffer.concat(transferParts(ds)));
}

const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe('transfer body', () => {
  it('is levels, codes, labels for byte features, and pinned in its hash', () => {
    const ds = tiny();
    const d = headerFields(ds);
    const sent = body(ds);
    expect(sent.byteLength).toBe(transferByteLength(d));
    expect(sent.byteLength).toBe(256 * 4 + 4 + 2 * 4);
    expect([...sent.subarray(1024, 1028)]).toEqual([0, 1, 2, 1]);
    expect(new TextDecoder().decode(datasetHashHeader(d))).toMatch(/"classNames":\["no","yes"\],"dtype":"u8"\}$/);
    expect(datasetHash(ds)).toBe(PINNED_TINY_U8_HASH);
  });

  it('keeps the f32 header and hash free of any dtype', () => {
    const ds = blobs(50, 2);
    const d = headerFields(ds);
    expect(d.dtype).toBe('f32');
    expect(new TextDecoder().decode(datasetHashHeader(d))).not.toContain('dtype');
    const sent = body(ds);
    expect(sent.byteLength).toBe(transferByteLength(d));
    const manual = createHash('sha256').update(datasetHashHeader(d)).update(sent).digest('hex');
    expect(datasetHash(ds)).toBe(manual);
  });

  it('comes back as the same floats, from aligned and unaligned bytes, into shared memory when asked', () => {
    for (const ds of [quantized(301), blobs(301, 4)]) {
      const d = headerFields(ds);
      const sent = body(ds);
      const unaligned = new Uint8Array(sent.byteLength + 1).subarray(1);
      unaligned.set(sent);
      for (const bytes of [sent, unaligned]) {
        const back = datasetFromBytes(d, bytes);
        expect(bitsOf(back.features)).toEqual(bitsOf(ds.features));
        expect(bitsOf(back.labels)).toEqual(bitsOf(ds.labels));
        expect(back.bytes).toBeUndefined();
      }
      const shared = datasetFromBytes(d, sent, (n) => new SharedArrayBuffer(n));
      expect(bitsOf(shared.features)).toEqual(bitsOf(ds.features));
      if (d.dtype === 'u8') {
        // Features then labels in one shared buffer: the layout compute threads share without a copy.
        expect(shared.features.buffer).toBeInstanceOf(SharedArrayBuffer);
        expect(shared.labels.buffer).toBe(shared.features.buffer);
        expect(shared.labels.byteOffset).toBe(shared.features.byteLength);
      }
    }
  });

  it('refuses a body of the wrong length', () => {
    const ds = tiny();
    expect(() => datasetFromBytes(headerFields(ds), body(ds).subarray(1))).toThrow(DataError);
  });
});

describe('the hash over the body', () => {
  it('is the same from the dataset, from the bytes received, in a browser with and without crypto.subtle', async () => {
    for (const ds of [quantized(200), blobs(200, 5)]) {
      const d = headerFields(ds);
      const sent = body(ds);
      const want = datasetHash(ds);
      expect(transferHash(d, [sent])).toBe(want);
      expect(await datasetBodyHash(d, sent)).toBe(want);
      const crypto = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
      Object.defineProperty(globalThis, 'crypto', { value: {}, configurable: true });
      try {
        expect(await datasetBodyHash(d, sent)).toBe(want);
      } finally {
        Object.defineProperty(globalThis, 'crypto', crypto!);
      }
    }
  });

  it('changes with a code, a level, or the dtype', () => {
    const base = datasetHash(tiny());
    const code = tiny();
    code.bytes!.codes[0] = 2;
    const level = tiny();
    level.bytes!.levels[3] = 7; // an unused code's level: still part of what is sent
    const { bytes: _, ...asF32 } = tiny();
    expect(datasetHash(code)).not.toBe(base);
    expect(datasetHash(level)).not.toBe(base);
    expect(datasetHash(asF32)).not.toBe(base);
  });
});
