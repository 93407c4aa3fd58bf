// IDX and NPY parsing: every element type read as the format defines it (IDX big-endian,
// NPY little-endian), shapes from the headers, and hostile files refused with one line
// naming the file.

import { describe, expect, it } from 'vitest';
import { parseIdx, parseNpy } from '../../../shared/data/arrays.js';
import { DataError } from '../../../shared/errors.js';

function idx(type: number, shape: number[], data: number[]): Uint8Array {
  return Uint8Array.from([
    0,
    0,
    type,
    shape.length,
    ...shape.flatMap((n) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]),
    ...data,
  ]);
}

function npy(header: string, data: Uint8Array): Uint8Array {
  const padded = `${header}`.padEnd(118, ' ') + '\n';
  return Uint8Array.from([0x93, ...Buffer.from('NUMPY'), 1, 0, padded.length, 0, ...Buffer.from(padded), ...data]);
}

describe('IDX', () => {
  it('reads unsigned bytes, and big-endian int16 and float32', () => {
    expect(parseIdx(idx(0x08, [2, 2], [0, 1, 254, 255]), 'f')).toEqual({
      shape: [2, 2],
      values: Float64Array.from([0, 1, 254, 255]),
      bytes: true,
    });
    expect(parseIdx(idx(0x0b, [2], [0xff, 0xfe, 0x01, 0x00]), 'f').values).toEqual(Float64Array.from([-2, 256]));
    expect(parseIdx(idx(0x0d, [1], [0x3f, 0xc0, 0, 0]), 'f')).toMatchObject({
      values: Float64Array.from([1.5]),
      bytes: false,
    });
  });

  it('refuses what is not IDX, an unknown type and a size that does not match the header', () => {
    const refused = (bytes: Uint8Array): string => {
      try {
        parseIdx(bytes, 'x.idx');
      } catch (err) {
        expect(err).toBeInstanceOf(DataError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refused(Uint8Array.from([1, 2, 3, 4]))).toMatch(/^x\.idx: not an IDX file/);
    expect(refused(idx(0x07, [1], [0]))).toBe('x.idx: unknown IDX type byte 0x7');
    expect(refused(idx(0x08, [2, 2], [0, 1, 2]))).toBe('x.idx: IDX shape [2,2] needs 16 bytes, the file has 15');
    expect(refused(Uint8Array.from([0, 0, 8, 3, 0, 0]))).toBe('x.idx: IDX header truncated');
  });
});

describe('NPY', () => {
  it('reads little-endian float32 and bytes in C order', () => {
    const f4 = new Uint8Array(Float32Array.from([1, -2.5, 3, 4]).buffer);
    expect(parseNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", f4), 'a.npy')).toEqual({
      shape: [2, 2],
      values: Float64Array.from([1, -2.5, 3, 4]),
      bytes: false,
    });
    expect(
      parseNpy(npy("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", Uint8Array.from([7, 8, 9])), 'a.npy'),
    ).toEqual({
      shape: [3],
      values: Float64Array.from([7, 8, 9]),
      bytes: true,
    });
  });

  it('refuses Fortran order, unknown dtypes and short data, naming the file', () => {
    expect(() =>
      parseNpy(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", new Uint8Array(4)), 'a.npy'),
    ).toThrow('a.npy: Fortran-ordered NPY arrays are not supported; save with C order');
    expect(() =>
      parseNpy(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)), 'a.npy'),
    ).toThrow(/^a\.npy: NPY dtype >f4 is not supported/);
    expect(() =>
      parseNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(4)), 'a.npy'),
    ).toThrow('a.npy: NPY shape (2,) of <f4 needs 8 data bytes, the file has 4');
    expect(() => parseNpy(Uint8Array.from([1, 2, 3]), 'a.npy')).toThrow('a.npy: not an NPY file (no \\x93NUMPY magic)');
  });
});
