// The dataset's transfer encoding, shared by the coordinator's HTTP route and both
// workers. It is the dataset as stored, nothing else:
//   f32: features (numSamples × numFeatures f32) ‖ labels (numSamples × labelWidth f32)
//   u8:  levels (256 f32) ‖ codes (numSamples × numFeatures bytes) ‖ labels (f32)
// all little-endian. The descriptor carries the shapes, the dtype and the hash the
// worker checks the bytes against before it widens them (byte-features.ts).

import { DataError } from '../errors.js';
import { LEVELS, widenBytes } from './byte-features.js';
import type { Dataset } from './dataset.js';
import type { DatasetHeaderFields } from './hash-encoding.js';

type Shape = Pick<DatasetHeaderFields, 'numSamples' | 'numFeatures' | 'labelWidth' | 'dtype'>;

/** Bytes of the transfer body: what crosses the network and sits in a worker's cache. */
export function transferByteLength(d: Shape): number {
  const labelBytes = d.numSamples * d.labelWidth * 4;
  return d.dtype === 'u8' ? LEVELS * 4 + d.numSamples * d.numFeatures + labelBytes : widenedByteLength(d);
}

/** Bytes of the dataset widened to float32: what a worker holds in memory. */
export function widenedByteLength(d: Shape): number {
  return d.numSamples * (d.numFeatures + d.labelWidth) * 4;
}

/** The transfer body of a dataset as views of its arrays (no copy), in order. */
export function transferParts(ds: Dataset): Uint8Array[] {
  const labels = bytesOf(ds.labels);
  if (ds.bytes === undefined) return [bytesOf(ds.features), labels];
  return [bytesOf(ds.bytes.levels), ds.bytes.codes, labels];
}

/** Where a worker's widened dataset lives: a SharedArrayBuffer when compute threads read it. */
export type Allocate = (byteLength: number) => ArrayBuffer | SharedArrayBuffer;

const plainBuffer: Allocate = (n) => new ArrayBuffer(n);

/**
 * Rebuilds a Dataset from the transfer bytes; the caller checks their hash first.
 * f32: views of `bytes` when 4-byte aligned (a fresh download or file read is): no
 * second copy of a dataset that may be tens of MB; otherwise copies. u8: widened once
 * into one buffer from `allocate`, features then labels.
 */
export function datasetFromBytes(d: DatasetHeaderFields, bytes: Uint8Array, allocate = plainBuffer): Dataset {
  const expected = transferByteLength(d);
  if (bytes.byteLength !== expected) {
    throw new DataError(`dataset ${d.name}: expected ${expected} bytes, got ${bytes.byteLength}`);
  }
  const featureCount = d.numSamples * d.numFeatures;
  const { features, labels } = d.dtype === 'u8' ? widen(d, bytes, allocate) : viewF32(bytes, featureCount);
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

interface Arrays {
  readonly features: Float32Array;
  readonly labels: Float32Array;
}

function viewF32(bytes: Uint8Array, featureCount: number): Arrays {
  const featureBytes = featureCount * 4;
  // A typed view needs alignment; new Uint8Array(view) copies (a Node Buffer's slice would not).
  if (bytes.byteOffset % 4 !== 0) return viewF32(new Uint8Array(bytes), featureCount);
  return {
    features: new Float32Array(bytes.buffer, bytes.byteOffset, featureCount),
    labels: new Float32Array(bytes.buffer, bytes.byteOffset + featureBytes, (bytes.byteLength - featureBytes) / 4),
  };
}

function widen(d: Shape, bytes: Uint8Array, allocate: Allocate): Arrays {
  const featureCount = d.numSamples * d.numFeatures;
  const labelCount = d.numSamples * d.labelWidth;
  const levels = new Float32Array(LEVELS); // (256), copied: the codes after it leave the labels unaligned anyway
  new Uint8Array(levels.buffer).set(bytes.subarray(0, LEVELS * 4));
  const codesEnd = LEVELS * 4 + featureCount;
  const buffer = allocate(widenedByteLength(d));
  const features = new Float32Array(buffer, 0, featureCount); // (numSamples, numFeatures)
  const labels = new Float32Array(buffer, featureCount * 4, labelCount); // (numSamples, labelWidth)
  widenBytes(features, bytes.subarray(LEVELS * 4, codesEnd), levels);
  new Uint8Array(buffer, featureCount * 4, labelCount * 4).set(bytes.subarray(codesEnd));
  return { features, labels };
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
