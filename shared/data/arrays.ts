// N-dimensional numeric arrays in the two file formats image data comes in: IDX (the
// format of MNIST and Fashion-MNIST: big-endian, a type byte and the dimensions up
// front) and NumPy's NPY (a Python-literal header naming dtype, order and shape).
// Bytes in, values out; a DataError names the file and what was wrong. Platform-neutral:
// reading and gunzipping the file is coordinator/data/image-file.ts's.

import { DataError } from '../errors.js';

export interface NumericArray {
  /** Dimensions, the first being the number of samples. */
  readonly shape: readonly number[];
  /** (product of shape) row-major values. */
  readonly values: Float64Array;
  /** The file stored unsigned bytes (pixels 0..255), which image models scale. */
  readonly bytes: boolean;
}

/** The IDX type byte → element size and reader (big-endian). */
const IDX_TYPES = new Map<number, { size: number; read: (v: DataView, at: number) => number }>([
  [0x08, { size: 1, read: (v, at) => v.getUint8(at) }],
  [0x09, { size: 1, read: (v, at) => v.getInt8(at) }],
  [0x0b, { size: 2, read: (v, at) => v.getInt16(at, false) }],
  [0x0c, { size: 4, read: (v, at) => v.getInt32(at, false) }],
  [0x0d, { size: 4, read: (v, at) => v.getFloat32(at, false) }],
  [0x0e, { size: 8, read: (v, at) => v.getFloat64(at, false) }],
]);

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Parses an IDX file's bytes (not gzipped). */
export function parseIdx(bytes: Uint8Array, file: string): NumericArray {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0)
    throw new DataError(`${file}: not an IDX file (expected two zero bytes, a type byte and a dimension count)`);
  const type = IDX_TYPES.get(bytes[2]);
  if (type === undefined) throw new DataError(`${file}: unknown IDX type byte 0x${bytes[2].toString(16)}`);
  const dims = bytes[3];
  if (dims === 0 || bytes.length < 4 + 4 * dims) throw new DataError(`${file}: IDX header truncated`);
  const shape = Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const start = 4 + 4 * dims;
  const count = product(shape);
  if (bytes.length !== start + count * type.size)
    throw new DataError(
      `${file}: IDX shape ${JSON.stringify(shape)} needs ${start + count * type.size} bytes, ` +
        `the file has ${bytes.length}`,
    );
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = type.read(view, start + i * type.size);
  return { shape, values, bytes: bytes[2] === 0x08 };
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parses an NPY file's bytes: little-endian (or byte) numbers in C order. */
export function parseNpy(bytes: Uint8Array, file: string): NumericArray {
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b))
    throw new DataError(`${file}: not an NPY file (no \\x93NUMPY magic)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLength;
  if (start > bytes.length) throw new DataError(`${file}: NPY header truncated`);
  const header = new TextDecoder().decode(bytes.subarray(major === 1 ? 10 : 12, start));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw new DataError(`${file}: NPY header lacks descr, fortran_order or shape`);
  if (fortran === 'True')
    throw new DataError(`${file}: Fortran-ordered NPY arrays are not supported; save with C order`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (shape.length === 0 || !shape.every((n) => Number.isInteger(n) && n >= 0))
    throw new DataError(`${file}: NPY shape (${shapeText}) is not a list of sizes`);
  const readers: Record<string, { size: number; read: (at: number) => number }> = {
    '|u1': { size: 1, read: (at) => view.getUint8(at) },
    '|i1': { size: 1, read: (at) => view.getInt8(at) },
    '<i4': { size: 4, read: (at) => view.getInt32(at, true) },
    '<i8': { size: 8, read: (at) => Number(view.getBigInt64(at, true)) },
    '<f4': { size: 4, read: (at) => view.getFloat32(at, true) },
    '<f8': { size: 8, read: (at) => view.getFloat64(at, true) },
  };
  const reader = readers[descr];
  if (reader === undefined)
    throw new DataError(`${file}: NPY dtype ${descr} is not supported (${Object.keys(readers).join(', ')} are)`);
  const count = product(shape);
  if (bytes.length !== start + count * reader.size)
    throw new DataError(
      `${file}: NPY shape (${shapeText}) of ${descr} needs ${count * reader.size} data bytes, ` +
        `the file has ${bytes.length - start}`,
    );
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = reader.read(start + i * reader.size);
  return { shape, values, bytes: descr === '|u1' };
}
