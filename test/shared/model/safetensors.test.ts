// Tests for shared/model/safetensors.ts: round trip, a byte-level check against the
// format spec, hostile files (each must be a one-line ModelFileError), and the
// name/shape checks of loadParams.

import { describe, expect, it } from 'vitest';
import { ModelFileError } from '../../../shared/errors.js';
import { decodeSafetensors, encodeSafetensors, loadParams } from '../../../shared/model/safetensors.js';
import { paramLayout, type ModelSpec, type ParamLayout } from '../../../shared/model/spec.js';

const SPEC: ModelSpec = {
  inputSize: 3,
  layers: [{ type: 'dense', units: 4, init: 'he' }, { type: 'relu' }, { type: 'dense', units: 2, init: 'xavier' }],
  loss: 'cross_entropy',
};
const LAYOUT = paramLayout(SPEC); // 0.weight [4,3], 0.bias [4], 2.weight [2,4], 2.bias [2]: 26 floats

function filledParams(layout: ParamLayout): Float32Array {
  const params = new Float32Array(layout.totalSize);
  for (let i = 0; i < params.length; i++) params[i] = Math.sin(i + 1) * 10 ** ((i % 7) - 3);
  return params;
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A file from an arbitrary header (object → JSON, string as is) and data bytes; no validation. */
function rawFile(header: unknown, data: Uint8Array | number = 0): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

function f32(begin: number, end: number, shape: unknown): Record<string, unknown> {
  return { dtype: 'F32', shape, data_offsets: [begin, end] };
}

describe('encodeSafetensors / decodeSafetensors / loadParams', () => {
  it('round-trips params bit for bit, special values included', () => {
    const params = filledParams(LAYOUT);
    params.set([-0, Infinity, -Infinity, NaN, 1e-45, 3.4028234663852886e38], 0);
    const metadata = { format: 'pt', step: '1200', note: 'ünïcödé "quoted"\n' };
    const file = decodeSafetensors(encodeSafetensors(LAYOUT, params, metadata));
    expect(file.metadata).toEqual(metadata);
    expect([...file.tensors.keys()]).toEqual(LAYOUT.tensors.map((t) => t.name));
    const loaded = loadParams(LAYOUT, file);
    expect(loaded).not.toBe(params);
    expect(bytesOf(loaded)).toEqual(bytesOf(params));
  });

  it('decodes from a Uint8Array at an odd byte offset (unaligned f32 data)', () => {
    const encoded = encodeSafetensors(LAYOUT, filledParams(LAYOUT), {});
    const backing = new Uint8Array(encoded.length + 1);
    backing.set(encoded, 1);
    const loaded = loadParams(LAYOUT, decodeSafetensors(backing.subarray(1)));
    expect(bytesOf(loaded)).toEqual(bytesOf(filledParams(LAYOUT)));
  });

  it('writes exactly the bytes the format spec describes', () => {
    const layout: ParamLayout = {
      tensors: [
        { name: 'b', shape: [2], offset: 0, size: 2 },
        { name: 'a', shape: [1, 3], offset: 2, size: 3 },
      ],
      totalSize: 5,
    };
    const params = new Float32Array([1.5, -2, 0.1, 1e30, -0]);
    const bytes = encodeSafetensors(layout, params, { format: 'pt' });

    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = Number(view.getBigUint64(0, true));
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    const json =
      '{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
      '"a":{"dtype":"F32","shape":[1,3],"data_offsets":[8,20]}}';
    // Padded with spaces (and only spaces) up to the next multiple of 8.
    expect((8 + n) % 8).toBe(0);
    expect(n - json.length).toBeLessThan(8);
    expect(headerText).toBe(json + ' '.repeat(n - json.length));
    expect(JSON.parse(headerText)).toEqual({
      __metadata__: { format: 'pt' },
      b: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      a: { dtype: 'F32', shape: [1, 3], data_offsets: [8, 20] },
    });
    expect(Object.keys(JSON.parse(headerText))).toEqual(['__metadata__', 'b', 'a']);

    const expectedData = new Uint8Array(20);
    const dataView = new DataView(expectedData.buffer);
    params.forEach((v, i) => dataView.setFloat32(i * 4, v, true));
    expect(bytes.subarray(8 + n)).toEqual(expectedData);
    expect(bytes.length).toBe(8 + n + 20);
  });

  it('accepts zero-sized tensors and an empty file', () => {
    const layout: ParamLayout = { tensors: [{ name: 'empty', shape: [0, 5], offset: 0, size: 0 }], totalSize: 0 };
    const file = decodeSafetensors(encodeSafetensors(layout, new Float32Array(0), {}));
    expect(file.tensors.get('empty')?.shape).toEqual([0, 5]);
    expect(decodeSafetensors(rawFile({})).tensors.size).toBe(0);
  });

  it('keeps a "__proto__" metadata key as data', () => {
    const file = decodeSafetensors(rawFile('{"__metadata__":{"__proto__":"x"}}'));
    expect(Object.getPrototypeOf(file.metadata)).toBe(Object.prototype);
    expect(Object.entries(file.metadata)).toEqual([['__proto__', 'x']]);
  });

  it('refuses a params buffer that does not fit the layout', () => {
    expect(() => encodeSafetensors(LAYOUT, new Float32Array(LAYOUT.totalSize - 1), {})).toThrow(
      /expected 26 params for the layout, got 25/,
    );
  });
});

describe('decodeSafetensors rejects hostile files', () => {
  const valid = encodeSafetensors(LAYOUT, filledParams(LAYOUT), {});
  const hugeLength = new Uint8Array(16);
  new DataView(hugeLength.buffer).setBigUint64(0, 100_000_001n, true);
  const pastEnd = new Uint8Array(16);
  new DataView(pastEnd.buffer).setBigUint64(0, 9n, true);
  const maxU64 = new Uint8Array(16).fill(0xff);

  const cases: [string, Uint8Array, RegExp][] = [
    ['an empty file', new Uint8Array(0), /at least 8 bytes, got 0/],
    ['a file shorter than the length prefix', valid.subarray(0, 7), /at least 8 bytes, got 7/],
    ['a header length beyond the file', pastEnd, /header length 9 exceeds the 8 bytes/],
    ['a header length of 2^64-1', maxU64, /at most 100000000 bytes/],
    ['a header longer than 100 MB', hugeLength, /at most 100000000 bytes/],
    ['a truncated file (data cut short)', valid.subarray(0, valid.length - 4), /data_offsets within/],
    ['a truncated header', valid.subarray(0, 40), /header length \d+ exceeds/],
    ['a non-JSON header', rawFile('{"a": nope}'), /expected a JSON header/],
    ['an empty header', rawFile(''), /expected a JSON header/],
    ['a header that is an array', rawFile('[]'), /JSON object, got an array/],
    ['a header that is null', rawFile('null'), /JSON object, got null/],
    ['a tensor entry that is not an object', rawFile({ w: 3 }), /tensor "w" to be an object, got number/],
    ['a tensor entry with an extra key', rawFile({ w: { ...f32(0, 4, [1]), extra: 1 } }, 4), /exactly the keys/],
    ['a tensor entry without dtype', rawFile({ w: { shape: [1], data_offsets: [0, 4] } }, 4), /exactly the keys/],
    ['a non-string dtype', rawFile({ w: { ...f32(0, 4, [1]), dtype: 4 } }, 4), /dtype to be a string, got number/],
    [
      'a non-F32 dtype',
      rawFile({ w: { ...f32(0, 4, [2]), dtype: 'BF16' } }, 4),
      /tensor "w" has dtype "BF16", only F32/,
    ],
    ['an F64 dtype', rawFile({ w: { ...f32(0, 8, [1]), dtype: 'F64' } }, 8), /tensor "w" has dtype "F64"/],
    ['a shape that is not an array', rawFile({ w: f32(0, 4, 1) }, 4), /shape to be an array/],
    [
      'a negative dimension',
      rawFile({ w: f32(0, 4, [-1]) }, 4),
      /shape to be an array of non-negative integers, got \[-1\]/,
    ],
    ['a fractional dimension', rawFile({ w: f32(0, 4, [0.5, 2]) }, 4), /non-negative integers/],
    ['a string dimension', rawFile({ w: f32(0, 4, ['1']) }, 4), /non-negative integers/],
    [
      'a null dimension (NaN serialized)',
      rawFile({ w: f32(0, 4, [Number.NaN]) }, 4),
      /non-negative integers, got \[null\]/,
    ],
    [
      'a dimension beyond 2^53',
      rawFile('{"w":{"dtype":"F32","shape":[1e300],"data_offsets":[0,4]}}', 4),
      /non-negative integers/,
    ],
    [
      'dimensions whose product overflows',
      rawFile({ w: f32(0, 4, new Array(20).fill(2 ** 53 - 1)) }, 4),
      /has more elements than/,
    ],
    [
      'overflowing dimensions times a zero',
      rawFile({ w: f32(0, 0, [...new Array(20).fill(2 ** 53 - 1), 0]) }),
      /has more elements than/,
    ],
    [
      'data_offsets with three numbers',
      rawFile({ w: { ...f32(0, 4, [1]), data_offsets: [0, 4, 8] } }, 8),
      /two non-negative integers/,
    ],
    ['negative data_offsets', rawFile({ w: f32(-4, 0, [1]) }, 4), /two non-negative integers/],
    ['fractional data_offsets', rawFile({ w: f32(0, 3.5, [1]) }, 4), /two non-negative integers/],
    ['data_offsets with begin > end', rawFile({ w: f32(4, 0, [1]) }, 4), /begin <= end, got \[4, 0\]/],
    ['data_offsets beyond the data section', rawFile({ w: f32(0, 8, [2]) }, 4), /within \[0, 4\]/],
    [
      'a byte size that does not match the shape',
      rawFile({ w: f32(0, 8, [3]) }, 8),
      /shape \[3\] F32 needs 12 bytes, data_offsets span 8/,
    ],
    [
      'overlapping tensors',
      rawFile({ a: f32(0, 8, [2]), b: f32(4, 12, [2]) }, 12),
      /tensor "b" at byte 4 overlaps tensor "a"/,
    ],
    ['two tensors on the same bytes', rawFile({ a: f32(0, 4, [1]), b: f32(0, 4, [1]) }, 4), /overlaps/],
    ['a hole between tensors', rawFile({ a: f32(0, 4, [1]), b: f32(8, 12, [1]) }, 12), /hole up to byte 8/],
    ['a hole at the start', rawFile({ a: f32(4, 8, [1]) }, 8), /at byte 0 after \(start of data\)/],
    [
      'unclaimed trailing bytes',
      rawFile({ a: f32(0, 4, [1]) }, 8),
      /cover the 8-byte data section, they end at byte 4/,
    ],
    ['metadata that is not an object', rawFile({ __metadata__: ['x'] }), /__metadata__ to be an object, got an array/],
    ['a non-string metadata value', rawFile({ __metadata__: { step: 3 } }), /key "step" to be a string, got number/],
    ['a null metadata value', rawFile({ __metadata__: { step: null } }), /key "step" to be a string, got null/],
  ];

  it.each(cases)('%s', (_name, bytes, message) => {
    let thrown: unknown;
    try {
      decodeSafetensors(bytes);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ModelFileError);
    const err = thrown as ModelFileError;
    expect(err.code).toBe('MODEL_FILE');
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
  });

  it('rejects invalid UTF-8 in the header', () => {
    const bytes = rawFile('{"a":"xx"}');
    bytes[8 + 6] = 0xff; // inside the string value, so only the UTF-8 check can catch it
    expect(() => decodeSafetensors(bytes)).toThrow(/expected a UTF-8 header, got invalid UTF-8/);
  });

  it('rejects a header that starts with a byte-order mark', () => {
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('{}')]);
    const bytes = new Uint8Array(8 + bom.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(bom.length), true);
    bytes.set(bom, 8);
    expect(() => decodeSafetensors(bytes)).toThrow(ModelFileError);
  });

  it('cuts a huge hostile value short in the message', () => {
    const shape = new Array(10_000).fill(-1);
    expect(() => decodeSafetensors(rawFile({ w: f32(0, 4, shape) }, 4))).toThrow(/got \[-1,-1,.*\.\.\.$/);
  });
});

describe('loadParams checks names and shapes against the layout', () => {
  function fileFor(spec: ModelSpec): ReturnType<typeof decodeSafetensors> {
    const layout = paramLayout(spec);
    return decodeSafetensors(encodeSafetensors(layout, filledParams(layout), {}));
  }

  it('names a missing tensor with its expected shape', () => {
    const file = fileFor(SPEC);
    file.tensors.delete('2.bias');
    expect(() => loadParams(LAYOUT, file)).toThrow(
      new ModelFileError('safetensors: missing tensor "2.bias" (expected shape [2])'),
    );
  });

  it('names an extra tensor with its shape', () => {
    const deeper: ModelSpec = {
      ...SPEC,
      layers: [...SPEC.layers, { type: 'relu' }, { type: 'dense', units: 5, init: 'he' }],
    };
    const file = fileFor(deeper);
    // deeper's 2.weight/2.bias match SPEC; 4.weight/4.bias are extra.
    expect(() => loadParams(LAYOUT, file)).toThrow(
      new ModelFileError('safetensors: unexpected tensor "4.weight" with shape [5,2] (not in the model)'),
    );
  });

  it('names a tensor of the wrong shape with expected and found shapes', () => {
    const wider: ModelSpec = { ...SPEC, layers: [{ type: 'dense', units: 5, init: 'he' }, ...SPEC.layers.slice(1)] };
    expect(() => loadParams(LAYOUT, fileFor(wider))).toThrow(
      new ModelFileError('safetensors: tensor "0.weight" has the wrong shape: expected [4,3], found [5,3]'),
    );
  });

  it('rejects a transposed weight even though the size matches', () => {
    const file = fileFor(SPEC);
    const w = file.tensors.get('0.weight')!;
    file.tensors.set('0.weight', { ...w, shape: [3, 4] });
    expect(() => loadParams(LAYOUT, file)).toThrow(/expected \[4,3\], found \[3,4\]/);
  });

  it('a conv model round-trips with 4-d weights, and a conv weight of another kernel size is refused', () => {
    const conv: ModelSpec = {
      inputSize: 2 * 6 * 6,
      inputShape: [2, 6, 6],
      layers: [
        { type: 'conv2d', out: 3, kernel: 3, stride: 1, pad: 1, init: 'he' },
        { type: 'relu' },
        { type: 'maxpool2d', kernel: 2, stride: 2 },
        { type: 'flatten' },
        { type: 'dense', units: 2, init: 'xavier' },
      ],
      loss: 'cross_entropy',
    };
    const layout = paramLayout(conv);
    const params = filledParams(layout);
    const file = decodeSafetensors(encodeSafetensors(layout, params, {}));
    expect(file.tensors.get('0.weight')!.shape).toEqual([3, 2, 3, 3]);
    expect(file.tensors.get('4.weight')!.shape).toEqual([2, 27]);
    expect(bytesOf(loadParams(layout, file))).toEqual(bytesOf(params));
    const wider: ModelSpec = {
      ...conv,
      layers: [{ ...(conv.layers[0] as object), kernel: 5, pad: 2 } as ModelSpec['layers'][0], ...conv.layers.slice(1)],
    };
    expect(() => loadParams(paramLayout(wider), file)).toThrow(
      /"0.weight" has the wrong shape: expected \[3,2,5,5\], found \[3,2,3,3\]/,
    );
  });

  it('thrown errors are ModelFileError', () => {
    const file = fileFor(SPEC);
    file.tensors.delete('0.weight');
    expect(() => loadParams(LAYOUT, file)).toThrow(ModelFileError);
  });
});

// Interop with PyTorch (safetensors.torch.load_file + nn.Sequential.load_state_dict) is
// not tested here: python3 on the development machine has neither safetensors nor torch.

describe('decodeSafetensors on a Node Buffer', () => {
  it('reads tensors from a pooled Buffer view, whose slice() would not copy', () => {
    const layout = paramLayout({
      inputSize: 3,
      layers: [{ type: 'dense', units: 4, init: 'he' }, { type: 'relu' }, { type: 'dense', units: 2, init: 'xavier' }],
      loss: 'cross_entropy',
    });
    const params = Float32Array.from({ length: layout.totalSize }, (_, i) => i / 7 - 1);
    const bytes = encodeSafetensors(layout, params, {});
    // A Buffer placed inside a larger pool, as readFileSync and sockets hand them out.
    const pool = Buffer.alloc(bytes.length + 100);
    Buffer.from(bytes).copy(pool, 37);
    const view = pool.subarray(37, 37 + bytes.length);
    const loaded = loadParams(layout, decodeSafetensors(view));
    expect(Buffer.from(loaded.buffer).equals(Buffer.from(params.buffer))).toBe(true);
  });
});
