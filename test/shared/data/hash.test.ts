import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../../shared/data/dataset.js';
import { datasetHash } from '../../../shared/node/dataset-hash.js';
import { blobs } from '../../../shared/data/synthetic.js';

// Computed independently: Python hashlib.sha256(header + struct.pack('<6f', 1, 2, 3, 4, 0, 1)).
const PINNED_TINY_HASH = 'c2656c1965326ae3f75819d9684cdc8c196314f54208fd43acdd3f287ee680f6';

function tiny(): Dataset {
  return {
    name: 'tiny',
    kind: 'classification',
    numSamples: 2,
    numFeatures: 2,
    features: new Float32Array([1, 2, 3, 4]),
    labelWidth: 1,
    labels: new Float32Array([0, 1]),
    numClasses: 2,
    classNames: ['no', 'yes'],
  };
}

describe('datasetHash', () => {
  it('hashes the JSON header, then feature and label bytes (f32 LE)', () => {
    const header =
      '{"name":"tiny","kind":"classification","numSamples":2,"numFeatures":2,' +
      '"labelWidth":1,"numClasses":2,"classNames":["no","yes"]}';
    const bytes = Buffer.alloc(6 * 4);
    [1, 2, 3, 4, 0, 1].forEach((v, k) => bytes.writeFloatLE(v, 4 * k));
    const expected = createHash('sha256').update(header).update(bytes).digest('hex');
    expect(datasetHash(tiny())).toBe(expected);
    // Pinned, so a change of the canonical encoding cannot go unnoticed.
    expect(expected).toBe(PINNED_TINY_HASH);
  });

  it('is equal for equal data and changes with any feature, label or header field', () => {
    expect(datasetHash(blobs(200, 1))).toBe(datasetHash(blobs(200, 1)));
    const base = datasetHash(tiny());
    const feature = tiny();
    feature.features[3] = 4.0000005;
    const label = tiny();
    label.labels[0] = 1;
    expect(datasetHash(feature)).not.toBe(base);
    expect(datasetHash(label)).not.toBe(base);
    expect(datasetHash({ ...tiny(), name: 'tiny2' })).not.toBe(base);
    expect(datasetHash({ ...tiny(), classNames: ['yes', 'no'] })).not.toBe(base);
  });

  it('hashes only the bytes of a subarray view', () => {
    const backing = new Float32Array([9, 1, 2, 3, 4, 9]);
    expect(datasetHash({ ...tiny(), features: backing.subarray(1, 5) })).toBe(datasetHash(tiny()));
  });

  it('refuses a dataset whose arrays do not match its shape', () => {
    expect(() => datasetHash({ ...tiny(), numSamples: 3 })).toThrow('expected 3×2 and 3×1');
  });
});
