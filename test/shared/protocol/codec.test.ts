// Tests for shared/protocol/codec.ts: round trips of every message (typed arrays
// compared as bytes, at every alignment), byte fixtures checked against a tiny
// independent msgpack reader, hostile inputs (each must be a ProtocolError with the
// right reason), and a seeded mutation fuzz.

import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeCoordinatorMessage, decodeWorkerMessage, encode, encodeLayout } from '../../../shared/protocol/codec.js';
import { ProtocolError, PROTOCOL_VERSION } from '../../../shared/protocol/codes.js';
import type { CoordinatorMessage, WorkerMessage } from '../../../shared/protocol/messages.js';
import { mlpSpec, paramLayout } from '../../../shared/model/spec.js';
import { deriveRng } from '../../../shared/rng.js';
import { roundBf16 } from '../../../shared/kernels/bf16.js';

const SPEC = mlpSpec(3, [4], 2, 'relu', 'cross_entropy');
const PARAMS = paramLayout(SPEC).totalSize; // 26 floats
const LIMITS = { paramCount: PARAMS, maxNodes: 4, wireDtype: 'f32' } as const;

/** Values that catch byte-level mistakes: signed zero, subnormals, extremes, a non-round mantissa. */
function floats(n: number, salt: number): Float32Array {
  const special = [-0, 1.4e-45, -1.17e-38, 3.4028234e38, -3.4028234e38, 1 / 3];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++)
    out[i] = i < special.length ? special[(i + salt) % special.length] : Math.sin(i * 7 + salt) * 10 ** ((i % 9) - 4);
  return out;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function hex(a: ArrayBufferView): string {
  return Buffer.from(bytesOf(a)).toString('hex');
}

/** Deep copy with typed arrays as { ClassName: hex }, so equality is byte equality (−0 ≠ 0). */
function plain(v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return { [v instanceof Uint8Array ? 'Uint8Array' : v.constructor.name]: hex(v) };
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const WORKER_MESSAGES: readonly WorkerMessage[] = [
  { type: 'hello', protocol: PROTOCOL_VERSION, token: 's3cr3t-tøken', kind: 'browser', agent: 'Firefox 128 / Linux' },
  { type: 'ready', datasetHash: 'ab'.repeat(32) },
  {
    type: 'result',
    taskId: 41,
    version: 2 ** 40, // beyond uint32: msgpackr writes it as a float64 and it must still be an integer
    nodes: [
      { lo: 0, size: 64, lossSum: 143.25, count: 64, correct: 17 },
      { lo: 64, size: 32, lossSum: 0, count: 30, correct: 0 },
    ],
    dtype: 'f32',
    diverged: false,
    grads: floats(2 * PARAMS, 1), // (2, PARAMS)
    computeMs: 12.5,
  },
  { type: 'digest', checkId: 3, digest: '0f'.repeat(32) },
];

const COORDINATOR_MESSAGES: readonly CoordinatorMessage[] = [
  {
    type: 'welcome',
    protocol: PROTOCOL_VERSION,
    workerId: 'w-7',
    spec: SPEC,
    dataset: {
      name: 'iris',
      kind: 'classification',
      numSamples: 150,
      numFeatures: 3,
      labelWidth: 1,
      numClasses: 2,
      classNames: ['setosa', 'versicolor'],
      dtype: 'u8',
      hash: 'cd'.repeat(32),
      path: '/dataset/iris.bin',
    },
    shardSize: 32,
    kernels: 'wasm',
    wireDtype: 'f32',
  },
  { type: 'weights', version: 6, dtype: 'f32', weights: floats(PARAMS, 3) },
  {
    type: 'task',
    taskId: 9,
    version: 6,
    step: 4,
    numShards: 4,
    shards: [
      { id: 3, indices: new Uint32Array([149, 0, 2 ** 32 - 1, 7]) },
      { id: 1, indices: new Uint32Array(0) },
    ],
    dtype: 'f32',
    weights: null,
  },
  {
    type: 'task',
    taskId: 10,
    version: 7,
    step: 2 ** 40, // beyond uint32, as a long run's step count may be: still an integer
    numShards: 4,
    shards: [{ id: 0, indices: new Uint32Array([3, 1]) }],
    dtype: 'f32',
    weights: floats(PARAMS, 4),
  },
  {
    type: 'check',
    checkId: 5,
    version: 3,
    step: 11,
    numShards: 4,
    shards: [{ id: 2, indices: new Uint32Array([8, 1]) }],
    dtype: 'f32',
    weights: floats(PARAMS, 5),
  },
  {
    type: 'check',
    checkId: 6,
    version: 3,
    step: 11,
    numShards: 4,
    shards: [{ id: 0, indices: new Uint32Array([4]) }],
    dtype: 'f32',
    weights: null,
  },
  { type: 'stop', reason: 'training finished' },
];

/** The tensor a message carries, if any. */
function tensorOf(message: WorkerMessage | CoordinatorMessage): Float32Array | null {
  if (message.type === 'weights' || message.type === 'task' || message.type === 'check') return message.weights;
  return message.type === 'result' ? message.grads : null;
}

/** The same bytes starting `shift` bytes into a fresh, larger buffer (so typed views may be unaligned). */
function shifted(bytes: Uint8Array, shift: number): Uint8Array {
  const big = new Uint8Array(bytes.byteLength + shift);
  big.set(bytes, shift);
  return big.subarray(shift);
}

/** Minimal strict msgpack reader, independent of msgpackr: maps need string keys, any extension throws. */
function referenceDecode(bytes: Uint8Array): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0;
  const take = (n: number): Uint8Array => {
    if (p + n > bytes.length) throw new Error('truncated');
    const out = bytes.slice(p, p + n);
    p += n;
    return out;
  };
  const u = (n: 1 | 2 | 4): number => {
    const v = n === 1 ? view.getUint8(p) : n === 2 ? view.getUint16(p) : view.getUint32(p);
    p += n;
    return v;
  };
  const str = (n: number): string => new TextDecoder('utf-8', { fatal: true }).decode(take(n));
  const map = (n: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = read();
      if (typeof key !== 'string') throw new Error('non-string key');
      out[key] = read();
    }
    return out;
  };
  const arr = (n: number): unknown[] => Array.from({ length: n }, () => read());
  const read = (): unknown => {
    const b = u(1);
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return map(b & 0x0f);
    if (b <= 0x9f) return arr(b & 0x0f);
    if (b <= 0xbf) return str(b & 0x1f);
    const at = p;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return take(u(1));
      case 0xc5:
        return take(u(2));
      case 0xc6:
        return take(u(4));
      case 0xca:
        p += 4;
        return view.getFloat32(at);
      case 0xcb:
        p += 8;
        return view.getFloat64(at);
      case 0xcc:
        return u(1);
      case 0xcd:
        return u(2);
      case 0xce:
        return u(4);
      case 0xcf:
        p += 8;
        return Number(view.getBigUint64(at));
      case 0xd0:
        p += 1;
        return view.getInt8(at);
      case 0xd1:
        p += 2;
        return view.getInt16(at);
      case 0xd2:
        p += 4;
        return view.getInt32(at);
      case 0xd3:
        p += 8;
        return Number(view.getBigInt64(at));
      case 0xd9:
        return str(u(1));
      case 0xda:
        return str(u(2));
      case 0xdb:
        return str(u(4));
      case 0xdc:
        return arr(u(2));
      case 0xdd:
        return arr(u(4));
      case 0xde:
        return map(u(2));
      case 0xdf:
        return map(u(4));
      default:
        throw new Error(`byte 0x${b.toString(16)} at ${p - 1} is not plain msgpack (an extension?)`);
    }
  };
  const value = read();
  if (p !== bytes.length) throw new Error(`${bytes.length - p} trailing bytes`);
  return value;
}

/** What a plain msgpack peer should see: the message with each typed array as its raw bytes. */
function wireOf(v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return bytesOf(v);
  if (Array.isArray(v)) return v.map(wireOf);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, wireOf(x)]));
  return v;
}

/** The reason a decode failed: a ProtocolError's reason, 'accepted', or what else was thrown. */
function reasonOf(decode: () => unknown): string {
  try {
    decode();
  } catch (err) {
    return err instanceof ProtocolError ? err.reason : `not a ProtocolError: ${String(err)}`;
  }
  return 'accepted';
}

/** A copy of a map with one key left out (not set to undefined, which msgpackr encodes as an extension). */
function without(map: Record<string, unknown>, key: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(map).filter(([k]) => k !== key));
}

const fromWorker =
  (value: unknown, limits = LIMITS) =>
  () =>
    decodeWorkerMessage(pack(value), limits);
const fromCoordinator = (value: unknown) => () => decodeCoordinatorMessage(pack(value));

describe('round trips', () => {
  it.each(WORKER_MESSAGES.map((m) => [m.type, m] as const))(
    'worker → coordinator: %s, at every alignment',
    (_, message) => {
      const bytes = encode(message);
      for (let shift = 0; shift < 4; shift++) {
        const decoded = decodeWorkerMessage(shifted(bytes, shift), LIMITS);
        expect(plain(decoded)).toStrictEqual(plain(message));
        if (decoded.type === 'result') expect(decoded.grads).toBeInstanceOf(Float32Array);
      }
    },
  );

  it.each(COORDINATOR_MESSAGES.map((m) => [m.type, m] as const))(
    'coordinator → worker: %s, at every alignment',
    (_, message) => {
      const bytes = encode(message);
      for (let shift = 0; shift < 4; shift++) {
        const decoded = decodeCoordinatorMessage(shifted(bytes, shift));
        expect(plain(decoded)).toStrictEqual(plain(message));
        if (decoded.type === 'weights') expect(decoded.weights).toBeInstanceOf(Float32Array);
        if (decoded.type === 'task') for (const s of decoded.shards) expect(s.indices).toBeInstanceOf(Uint32Array);
      }
    },
  );

  it('encodes typed arrays that are views into a larger buffer (only their own bytes)', () => {
    const backing = floats(3 * PARAMS + 1, 4);
    const grads = backing.subarray(1, 1 + PARAMS); // byteOffset 4: a view, not the whole buffer
    const message: WorkerMessage = {
      type: 'result',
      taskId: 1,
      version: 1,
      nodes: [{ lo: 0, size: 1, lossSum: 1, count: 1, correct: 1 }],
      dtype: 'f32',
      diverged: false,
      grads,
      computeMs: 0,
    };
    expect(plain(decodeWorkerMessage(shifted(encode(message), 1), LIMITS))).toStrictEqual(plain(message));
  });

  it('is plain msgpack: a reference reader sees maps, typed arrays as bin (and a pad of zeros before a tensor)', () => {
    for (const message of [...WORKER_MESSAGES, ...COORDINATOR_MESSAGES]) {
      const { pad, ...seen } = referenceDecode(encode(message)) as Record<string, unknown>;
      expect(plain(seen)).toStrictEqual(plain(wireOf(message)));
      if (tensorOf(message) !== null)
        expect([...(pad as Uint8Array)].every((b) => b === 0) && (pad as Uint8Array).length < 4).toBe(true);
      else expect(pad).toBeUndefined();
    }
  });

  it('puts a tensor after a head of a multiple of 4 bytes, and decodes it (f32) as a view of the message', () => {
    for (const message of [...WORKER_MESSAGES, ...COORDINATOR_MESSAGES]) {
      const layout = encodeLayout(message);
      const tensor = tensorOf(message);
      const bytes = encode(message);
      if (tensor === null) {
        expect(layout.tensor).toBeNull();
        expect(bytes).toEqual(layout.head);
        continue;
      }
      expect(layout.tensor).toBe(tensor);
      expect(layout.head.byteLength % 4).toBe(0);
      expect(bytes.byteLength).toBe(layout.head.byteLength + tensor.byteLength);
      expect(bytes.subarray(layout.head.byteLength)).toEqual(
        new Uint8Array(tensor.buffer, tensor.byteOffset, tensor.byteLength),
      );
      const decoded = message.type === 'result' ? decodeWorkerMessage(bytes, LIMITS) : decodeCoordinatorMessage(bytes);
      expect(tensorOf(decoded)?.buffer).toBe(bytes.buffer);
    }
  });

  it('bf16 tensors: half the bytes, rounded to nearest even on encode, widened exactly on decode', () => {
    const values = new Float32Array([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5e-20, 3.0e38, 0]);
    const rounded = values.slice();
    roundBf16(rounded);
    expect([rounded[1], rounded[2]]).toEqual([1, 1 + 2 ** -6]); // the two ties, to even
    const f32 = encode({ type: 'weights', version: 1, dtype: 'f32', weights: values });
    const bf16 = encode({ type: 'weights', version: 1, dtype: 'bf16', weights: values });
    expect(f32.byteLength - bf16.byteLength).toBeGreaterThanOrEqual(2 * values.length - 8);
    const decoded = decodeCoordinatorMessage(bf16);
    expect(decoded.type === 'weights' && decoded.dtype).toBe('bf16');
    expect(decoded.type === 'weights' ? [...decoded.weights] : null).toEqual([...rounded]);
    const bf16Limits = { ...LIMITS, wireDtype: 'bf16' } as const;
    const result: WorkerMessage = {
      type: 'result',
      taskId: 1,
      version: 1,
      nodes: [{ lo: 0, size: 1, lossSum: 1, count: 1, correct: 1 }],
      dtype: 'bf16',
      diverged: false,
      grads: new Float32Array(PARAMS).map((_, i) => Math.sin(i)),
      computeMs: 1,
    };
    const back = decodeWorkerMessage(encode(result), bf16Limits);
    expect(back.type === 'result' ? back.grads.length : 0).toBe(PARAMS);
    // ws hands messages over as Node Buffers, whose slice() is a view, not a copy: a bf16
    // tensor at an odd offset must still be read (a copy), never crash the coordinator.
    const bytes = encode(result);
    const widened = back.type === 'result' ? [...back.grads] : [];
    for (let shift = 0; shift < 4; shift++) {
      const big = Buffer.alloc(bytes.byteLength + shift);
      big.set(bytes, shift);
      const again = decodeWorkerMessage(big.subarray(shift), bf16Limits);
      expect(again.type === 'result' ? [...again.grads] : null).toEqual(widened);
    }
  });

  it("refuses a tensor in a dtype other than the run's, or of an odd number of bf16 bytes", () => {
    const result: WorkerMessage = {
      type: 'result',
      taskId: 1,
      version: 1,
      nodes: [{ lo: 0, size: 1, lossSum: 1, count: 1, correct: 1 }],
      dtype: 'bf16',
      diverged: false,
      grads: new Float32Array(PARAMS).map((_, i) => Math.sin(i)),
      computeMs: 1,
    };
    expect(reasonOf(() => decodeWorkerMessage(encode(result), LIMITS))).toBe('malformed');
    const wire = referenceDecode(encode(result)) as Record<string, unknown>;
    expect(reasonOf(() => decodeWorkerMessage(pack({ ...wire, dtype: 'f16' }), { ...LIMITS, wireDtype: 'bf16' }))).toBe(
      'malformed',
    );
    expect(
      reasonOf(() =>
        decodeWorkerMessage(pack({ ...wire, grads: new Uint8Array(2 * PARAMS + 1) }), { ...LIMITS, wireDtype: 'bf16' }),
      ),
    ).toBe('bad_length');
    expect(
      reasonOf(() =>
        decodeWorkerMessage(pack({ ...wire, grads: new Uint8Array(2 * PARAMS - 2) }), { ...LIMITS, wireDtype: 'bf16' }),
      ),
    ).toBe('bad_length');
  });

  it('widens a bf16 tensor into the buffer the caller provides; an f32 tensor stays a view of the message', () => {
    const values = new Float32Array([1, -2.5, 3.25, 0]);
    const mine = new Float32Array(4);
    const asked: number[] = [];
    const alloc = (n: number): Float32Array => {
      asked.push(n);
      return mine;
    };
    const bf16 = decodeCoordinatorMessage(
      encode({ type: 'weights', version: 1, dtype: 'bf16', weights: values }),
      alloc,
    );
    expect(bf16.type === 'weights' && bf16.weights).toBe(mine);
    expect([...mine]).toEqual([1, -2.5, 3.25, 0]);
    const bytes = encode({ type: 'weights', version: 1, dtype: 'f32', weights: values });
    const f32 = decodeCoordinatorMessage(bytes, alloc);
    expect(f32.type === 'weights' && f32.weights.buffer).toBe(bytes.buffer);
    expect(asked).toEqual([4]);
  });

  it('a diverged result carries no gradient; one with a gradient, or a non-boolean flag, is refused', () => {
    const diverged: WorkerMessage = {
      type: 'result',
      taskId: 2,
      version: 1,
      nodes: [{ lo: 0, size: 1, lossSum: 0, count: 1, correct: 0 }],
      dtype: 'f32',
      diverged: true,
      grads: new Float32Array(0),
      computeMs: 1,
    };
    const back = decodeWorkerMessage(encode(diverged), LIMITS);
    expect(back.type === 'result' && back.diverged && back.grads.length).toBe(0);
    const wire = referenceDecode(encode(diverged)) as Record<string, unknown>;
    expect(
      reasonOf(() => decodeWorkerMessage(pack({ ...wire, grads: bytesOf(new Float32Array(PARAMS)) }), LIMITS)),
    ).toBe('bad_length');
    expect(reasonOf(() => decodeWorkerMessage(pack({ ...wire, diverged: 1 }), LIMITS))).toBe('malformed');
    expect(reasonOf(() => decodeWorkerMessage(pack({ ...wire, diverged: undefined }), LIMITS))).toBe('malformed');
  });

  it('a later encode does not overwrite an earlier one (msgpackr reuses its output buffer)', () => {
    const first = encodeLayout(WORKER_MESSAGES[2]).head;
    const copy = Uint8Array.from(first);
    for (const m of COORDINATOR_MESSAGES) encode(m);
    expect(hex(first)).toBe(hex(copy));
  });

  it('a message decoded by the wrong side is an unknown type', () => {
    for (const m of WORKER_MESSAGES) expect(reasonOf(() => decodeCoordinatorMessage(encode(m)))).toBe('unknown_type');
    for (const m of COORDINATOR_MESSAGES)
      expect(reasonOf(() => decodeWorkerMessage(encode(m), LIMITS))).toBe('unknown_type');
  });
});

describe('byte fixtures', () => {
  const HELLO: WorkerMessage = { type: 'hello', protocol: 1, token: 'tok', kind: 'node', agent: 'test' };
  // map16 of 5 entries: type "hello", protocol 1, token "tok", kind "node", agent "test".
  const HELLO_HEX =
    'de0005' +
    'a474797065a568656c6c6f' +
    'a870726f746f636f6c01' +
    'a5746f6b656ea3746f6b' +
    'a46b696e64a46e6f6465' +
    'a56167656e74a474657374';
  const RESULT: WorkerMessage = {
    type: 'result',
    taskId: 7,
    version: 3,
    nodes: [{ lo: 0, size: 2, lossSum: 1.5, count: 2, correct: 1 }],
    dtype: 'bf16',
    diverged: false,
    grads: new Float32Array([1, -2.5]),
    computeMs: 12.25,
  };
  // map16 of 9 entries; lossSum and computeMs as float64 (cb); dtype "bf16"; diverged
  // false (c2); then "pad" as bin8 of 2 zero bytes, so that grads, last, as bin32
  // (c6 00000004), starts at byte 144, a multiple of 4: bf16 LE 1.0 (3f80), -2.5 (c020),
  // the upper halves of the f32s.
  const RESULT_HEX =
    'de0009' +
    'a474797065a6726573756c74' +
    'a67461736b496407' +
    'a776657273696f6e03' +
    'a56e6f64657391' +
    'de0005' +
    'a26c6f00' +
    'a473697a6502' +
    'a76c6f737353756dcb3ff8000000000000' +
    'a5636f756e7402' +
    'a7636f727265637401' +
    'a56474797065a462663136' +
    'a86469766572676564c2' +
    'a9636f6d707574654d73cb4028800000000000' +
    'a3706164c4020000' +
    'a56772616473c600000004' +
    '803f20c0';

  it('hello encodes to the checked-in bytes and decodes back', () => {
    const bytes = encode(HELLO);
    expect(hex(bytes)).toBe(HELLO_HEX);
    expect(referenceDecode(Buffer.from(HELLO_HEX, 'hex'))).toStrictEqual(HELLO);
    expect(plain(decodeWorkerMessage(Buffer.from(HELLO_HEX, 'hex'), LIMITS))).toStrictEqual(plain(HELLO));
  });

  it('result encodes to the checked-in bytes and decodes back', () => {
    const limits = { paramCount: 2, maxNodes: 1, wireDtype: 'bf16' } as const;
    expect(hex(encode(RESULT))).toBe(RESULT_HEX);
    expect(plain(referenceDecode(Buffer.from(RESULT_HEX, 'hex')))).toStrictEqual(
      plain({ ...(wireOf(RESULT) as object), grads: new Uint8Array([0x80, 0x3f, 0x20, 0xc0]), pad: new Uint8Array(2) }),
    );
    expect(plain(decodeWorkerMessage(Buffer.from(RESULT_HEX, 'hex'), limits))).toStrictEqual(plain(RESULT));
  });

  it('every message is a top-level map (fixmap or map16), never a msgpackr record', () => {
    for (const message of [HELLO, RESULT, ...WORKER_MESSAGES, ...COORDINATOR_MESSAGES]) {
      const first = encode(message)[0];
      expect((first & 0xf0) === 0x80 || first === 0xde, `first byte 0x${first.toString(16)} of ${message.type}`).toBe(
        true,
      );
    }
  });
});

describe('hostile input to decodeWorkerMessage', () => {
  const node = { lo: 0, size: 4, lossSum: 2.5, count: 4, correct: 3 };
  const grads = (values: ArrayLike<number>): Uint8Array => bytesOf(new Float32Array(values));
  const result = {
    type: 'result',
    taskId: 1,
    version: 1,
    nodes: [node],
    dtype: 'f32',
    diverged: false,
    grads: grads(floats(PARAMS, 0)),
    computeMs: 3,
  };
  const hello = { type: 'hello', protocol: 1, token: 'tok', kind: 'node', agent: 'a' };
  const digest = { type: 'digest', checkId: 2, digest: 'c4'.repeat(32) };

  it('garbage that is not one msgpack map is malformed', () => {
    const rng = deriveRng(7, 'protocol-test', 'random-bytes');
    const random = Uint8Array.from({ length: 64 }, () => rng.nextInt(256));
    const valid = encode(WORKER_MESSAGES[2]);
    const cases: Uint8Array[] = [
      random,
      new Uint8Array(0),
      new Uint8Array([0xc1]), // the never-used byte, which msgpackr decodes to a sentinel object
      new Uint8Array([0xd6, 0xff, 0, 0, 0, 0]), // a msgpack timestamp, which msgpackr decodes to a Date
      pack([1, 2, 3]),
      pack('hello'),
      pack(42),
      pack(null),
      pack(bytesOf(new Float32Array(4))),
      Uint8Array.from([...valid, 0x00]), // trailing byte after a complete message
    ];
    for (const bytes of cases)
      expect(
        reasonOf(() => decodeWorkerMessage(bytes, LIMITS)),
        hex(bytes).slice(0, 40),
      ).toBe('malformed');
  });

  it('every strict prefix of a valid message is malformed', () => {
    const bytes = encode(WORKER_MESSAGES[2]);
    for (let n = 0; n < bytes.length; n++)
      expect(
        reasonOf(() => decodeWorkerMessage(bytes.subarray(0, n), LIMITS)),
        `prefix ${n}`,
      ).toBe('malformed');
  });

  it.each([
    { name: 'unknown type', value: { type: 'gossip' }, reason: 'unknown_type' },
    { name: 'missing type', value: { token: 'tok' }, reason: 'unknown_type' },
    { name: 'type a map with a toString key', value: { type: { toString: 1 } }, reason: 'unknown_type' },
    { name: 'hello without token', value: without(hello, 'token'), reason: 'malformed' },
    { name: 'hello token a number', value: { ...hello, token: 1234 }, reason: 'malformed' },
    { name: 'hello token of 10k characters', value: { ...hello, token: 'x'.repeat(10_000) }, reason: 'malformed' },
    { name: 'hello kind unknown', value: { ...hello, kind: 'toaster' }, reason: 'malformed' },
    { name: 'hello protocol a string', value: { ...hello, protocol: '1' }, reason: 'malformed' },
    {
      name: 'ready hash of 129 characters',
      value: { type: 'ready', datasetHash: 'a'.repeat(129) },
      reason: 'malformed',
    },
    {
      name: 'result grads of 2 nodes for 1 node',
      value: { ...result, grads: grads(floats(2 * PARAMS, 0)) },
      reason: 'bad_length',
    },
    {
      name: 'result grads one float short',
      value: { ...result, grads: grads(floats(PARAMS - 1, 0)) },
      reason: 'bad_length',
    },
    { name: 'result grads of 6 bytes', value: { ...result, grads: new Uint8Array(6) }, reason: 'bad_length' },
    {
      name: 'result grads an array of numbers',
      value: { ...result, grads: Array.from(floats(PARAMS, 0)) },
      reason: 'malformed',
    },
    {
      name: 'result grads with NaN',
      value: { ...result, grads: grads([...floats(PARAMS - 1, 0), NaN]) },
      reason: 'non_finite',
    },
    {
      name: 'result grads with Infinity',
      value: { ...result, grads: grads([Infinity, ...floats(PARAMS - 1, 0)]) },
      reason: 'non_finite',
    },
    {
      name: 'result grads with -Infinity',
      value: { ...result, grads: grads([...floats(5, 0), -Infinity, ...floats(PARAMS - 6, 0)]) },
      reason: 'non_finite',
    },
    { name: 'result lossSum NaN', value: { ...result, nodes: [{ ...node, lossSum: NaN }] }, reason: 'non_finite' },
    { name: 'result computeMs Infinity', value: { ...result, computeMs: Infinity }, reason: 'non_finite' },
    {
      name: 'result with more nodes than maxNodes',
      value: { ...result, nodes: Array(LIMITS.maxNodes + 1).fill(node) },
      reason: 'too_large',
    },
    { name: 'result nodes a map', value: { ...result, nodes: node }, reason: 'malformed' },
    { name: 'result node a number', value: { ...result, nodes: [3] }, reason: 'malformed' },
    { name: 'result node of size 0', value: { ...result, nodes: [{ ...node, size: 0 }] }, reason: 'malformed' },
    { name: 'result without nodes', value: { ...result, nodes: [] }, reason: 'malformed' },
    { name: 'result taskId negative', value: { ...result, taskId: -1 }, reason: 'malformed' },
    { name: 'result taskId 1.5', value: { ...result, taskId: 1.5 }, reason: 'malformed' },
    { name: 'result taskId beyond 2^53', value: { ...result, taskId: 2 ** 60 }, reason: 'malformed' },
    {
      name: 'result taskId a map with a toString key',
      value: { ...result, taskId: { toString: 'x' } },
      reason: 'malformed',
    },
    { name: 'result version a string', value: { ...result, version: '1' }, reason: 'malformed' },
    { name: 'digest without checkId', value: without(digest, 'checkId'), reason: 'malformed' },
    { name: 'digest checkId negative', value: { ...digest, checkId: -1 }, reason: 'malformed' },
    { name: 'digest checkId 1.5', value: { ...digest, checkId: 1.5 }, reason: 'malformed' },
    { name: 'digest without digest', value: without(digest, 'digest'), reason: 'malformed' },
    { name: 'digest of 63 characters', value: { ...digest, digest: 'a'.repeat(63) }, reason: 'malformed' },
    { name: 'digest of 65 characters', value: { ...digest, digest: 'a'.repeat(65) }, reason: 'malformed' },
    { name: 'digest in upper case', value: { ...digest, digest: 'A'.repeat(64) }, reason: 'malformed' },
    { name: 'digest not hex', value: { ...digest, digest: 'g'.repeat(64) }, reason: 'malformed' },
    { name: 'digest a megabyte string', value: { ...digest, digest: 'a'.repeat(1 << 20) }, reason: 'malformed' },
    { name: 'digest as raw bytes', value: { ...digest, digest: new Uint8Array(32) }, reason: 'malformed' },
    { name: 'digest a map with a toString key', value: { ...digest, digest: { toString: 'x' } }, reason: 'malformed' },
  ])('$name → $reason', ({ value, reason }) => {
    expect(reasonOf(fromWorker(value))).toBe(reason);
  });

  it('the unhostile baselines of the table above are accepted', () => {
    expect(reasonOf(fromWorker(digest))).toBe('accepted');
    expect(reasonOf(fromWorker(result))).toBe('accepted');
    expect(reasonOf(fromWorker(hello))).toBe('accepted');
  });
});

/**
 * A convolutional spec over the same 3 features seen as a 3x1x1 image (the codec checks the spec,
 * not its size against the weights).
 */
const CONV = { type: 'conv2d', out: 2, kernel: 1, stride: 1, pad: 0, init: 'he' } as const;
const IMAGE_SPEC = {
  inputSize: 3,
  inputShape: [3, 1, 1],
  layers: [
    CONV,
    { type: 'leaky_relu', slope: 0.01 },
    { type: 'dropout', p: 0.5, seed: 3 },
    { type: 'flatten' },
    { type: 'dense', units: 2, init: 'xavier' },
  ],
  loss: 'cross_entropy',
};

describe('hostile input to decodeCoordinatorMessage', () => {
  const welcome = wireOf(COORDINATOR_MESSAGES[0]) as Record<string, unknown>;
  const spec = welcome.spec as Record<string, unknown>;
  const task = {
    type: 'task',
    taskId: 1,
    version: 1,
    step: 1,
    numShards: 2,
    shards: [{ id: 1, indices: bytesOf(new Uint32Array([0, 5])) }],
    dtype: 'f32',
    weights: null,
  };
  const { taskId: _taskId, ...work } = task;
  const check = { ...work, type: 'check', checkId: 1 };

  it.each([
    { name: 'welcome without spec', value: without(welcome, 'spec'), reason: 'malformed' },
    { name: 'welcome spec a string', value: { ...welcome, spec: 'mlp' }, reason: 'malformed' },
    { name: 'welcome spec with no layers', value: { ...welcome, spec: { ...spec, layers: [] } }, reason: 'malformed' },
    {
      name: 'welcome spec with a conv on its flat input',
      value: { ...welcome, spec: { ...spec, layers: [CONV, { type: 'flatten' }, ...(spec.layers as unknown[])] } },
      reason: 'malformed',
    },
    {
      name: 'welcome spec with a huge image',
      value: { ...welcome, spec: { ...spec, inputSize: 2 ** 40, inputShape: [2 ** 20, 2 ** 20, 1] } },
      reason: 'malformed',
    },
    {
      name: 'welcome spec with a conv of 2^30 channels',
      value: {
        ...welcome,
        spec: { ...IMAGE_SPEC, layers: [{ ...CONV, out: 2 ** 30 }, ...IMAGE_SPEC.layers.slice(1)] },
      },
      reason: 'malformed',
    },
    {
      name: 'welcome spec with units 0',
      value: { ...welcome, spec: { ...spec, layers: [{ type: 'dense', units: 0, init: 'he' }] } },
      reason: 'malformed',
    },
    {
      name: 'welcome spec inputSize with a toString key',
      value: { ...welcome, spec: { ...spec, inputSize: { toString: 1 } } },
      reason: 'malformed',
    },
    { name: 'welcome without kernels', value: without(welcome, 'kernels'), reason: 'malformed' },
    { name: 'welcome kernels unknown', value: { ...welcome, kernels: 'cuda' }, reason: 'malformed' },
    { name: 'welcome kernels a number', value: { ...welcome, kernels: 1 }, reason: 'malformed' },
    {
      name: 'welcome dataset kind unknown',
      value: { ...welcome, dataset: { ...(welcome.dataset as object), kind: 'ranking' } },
      reason: 'malformed',
    },
    {
      name: 'welcome dataset dtype unknown',
      value: { ...welcome, dataset: { ...(welcome.dataset as object), dtype: 'f16' } },
      reason: 'malformed',
    },
    {
      name: 'welcome dataset without dtype',
      value: { ...welcome, dataset: without(welcome.dataset as Record<string, unknown>, 'dtype') },
      reason: 'malformed',
    },
    {
      name: 'weights with NaN',
      value: { type: 'weights', version: 2, dtype: 'f32', weights: bytesOf(new Float32Array([1, NaN, 2])) },
      reason: 'non_finite',
    },
    {
      name: 'weights of 7 bytes',
      value: { type: 'weights', version: 2, dtype: 'f32', weights: new Uint8Array(7) },
      reason: 'bad_length',
    },
    {
      name: 'task shard id = numShards',
      value: { ...task, shards: [{ ...task.shards[0], id: 2 }] },
      reason: 'malformed',
    },
    {
      name: 'task shard id far beyond numShards',
      value: { ...task, shards: [{ ...task.shards[0], id: 1e9 }] },
      reason: 'malformed',
    },
    {
      name: 'task indices of 5 bytes',
      value: { ...task, shards: [{ id: 0, indices: new Uint8Array(5) }] },
      reason: 'bad_length',
    },
    {
      name: 'task with more shards than numShards',
      value: { ...task, shards: [task.shards[0], task.shards[0], task.shards[0]] },
      reason: 'too_large',
    },
    { name: 'task numShards 0', value: { ...task, numShards: 0, shards: [] }, reason: 'malformed' },
    { name: 'task without weights (a version-3 sender)', value: without(task, 'weights'), reason: 'malformed' },
    { name: 'task without step (a version-5 sender)', value: without(task, 'step'), reason: 'malformed' },
    { name: 'task step negative', value: { ...task, step: -1 }, reason: 'malformed' },
    { name: 'task step fractional', value: { ...task, step: 1.5 }, reason: 'malformed' },
    { name: 'task step beyond 2^53', value: { ...task, step: 2 ** 53 }, reason: 'malformed' },
    { name: 'task step a string', value: { ...task, step: '1' }, reason: 'malformed' },
    { name: 'task without dtype', value: without(task, 'dtype'), reason: 'malformed' },
    { name: 'task dtype unknown', value: { ...task, dtype: 'f16' }, reason: 'malformed' },
    { name: 'task weights a number', value: { ...task, weights: 3 }, reason: 'malformed' },
    {
      name: 'task weights with Infinity',
      value: { ...task, weights: bytesOf(new Float32Array([1, Infinity])) },
      reason: 'non_finite',
    },
    { name: 'task weights of 6 bytes (f32)', value: { ...task, weights: new Uint8Array(6) }, reason: 'bad_length' },
    {
      name: 'task weights of 3 bytes (bf16)',
      value: { ...task, dtype: 'bf16', weights: new Uint8Array(3) },
      reason: 'bad_length',
    },
    { name: 'check without checkId', value: without(check, 'checkId'), reason: 'malformed' },
    { name: 'check checkId negative', value: { ...check, checkId: -1 }, reason: 'malformed' },
    { name: 'check without step', value: without(check, 'step'), reason: 'malformed' },
    { name: 'check without weights', value: without(check, 'weights'), reason: 'malformed' },
    { name: 'check numShards 0', value: { ...check, numShards: 0, shards: [] }, reason: 'malformed' },
    {
      name: 'check shard id = numShards',
      value: { ...check, shards: [{ ...check.shards[0], id: 2 }] },
      reason: 'malformed',
    },
    {
      name: 'check indices of 5 bytes',
      value: { ...check, shards: [{ id: 0, indices: new Uint8Array(5) }] },
      reason: 'bad_length',
    },
    {
      name: 'check weights with NaN',
      value: { ...check, weights: bytesOf(new Float32Array([1, NaN])) },
      reason: 'non_finite',
    },
    { name: 'check weights of 6 bytes (f32)', value: { ...check, weights: new Uint8Array(6) }, reason: 'bad_length' },
    { name: 'stop reason a number', value: { type: 'stop', reason: 4000 }, reason: 'malformed' },
    { name: 'unknown type', value: { type: 'hello' }, reason: 'unknown_type' },
  ])('$name → $reason', ({ value, reason }) => {
    expect(reasonOf(fromCoordinator(value))).toBe(reason);
  });

  it('the unhostile baselines of the table above are accepted', () => {
    expect(reasonOf(fromCoordinator(welcome))).toBe('accepted');
    expect(reasonOf(fromCoordinator({ ...welcome, spec: IMAGE_SPEC }))).toBe('accepted');
    expect(reasonOf(fromCoordinator(task))).toBe('accepted');
    expect(reasonOf(fromCoordinator(check))).toBe('accepted');
    expect(reasonOf(fromCoordinator({ ...task, weights: bytesOf(new Float32Array([1, 2])) }))).toBe('accepted');
  });
});

describe('fuzz', () => {
  /** Checks an accepted message is one encode → decode reproduces, with the invariants decode promises. */
  function assertValid(message: WorkerMessage | CoordinatorMessage, side: 'worker' | 'coordinator'): void {
    const again =
      side === 'worker' ? decodeWorkerMessage(encode(message), LIMITS) : decodeCoordinatorMessage(encode(message));
    expect(plain(again)).toStrictEqual(plain(message));
    if (message.type === 'result') {
      expect(message.grads.length).toBe(message.nodes.length * PARAMS);
      expect(message.grads.every(Number.isFinite)).toBe(true);
    }
    if (message.type === 'task') for (const s of message.shards) expect(s.id).toBeLessThan(message.numShards);
  }

  it('2,000 seeded mutations of valid messages: a valid message or a ProtocolError, nothing else', () => {
    const rng = deriveRng(20240611, 'protocol-test', 'fuzz');
    const corpus = [...WORKER_MESSAGES, ...COORDINATOR_MESSAGES].map((m) => encode(m));
    const outcomes = new Map<string, number>();
    const started = performance.now();
    for (let iter = 0; iter < 2000; iter++) {
      const bytes = Array.from(corpus[rng.nextInt(corpus.length)]);
      const edits = 1 + rng.nextInt(4);
      for (let e = 0; e < edits; e++) {
        const at = rng.nextInt(bytes.length + 1);
        switch (rng.nextInt(3)) {
          case 0:
            if (at < bytes.length) bytes[at] ^= 1 + rng.nextInt(255);
            break; // flip some bits
          case 1:
            bytes.splice(at, 0, rng.nextInt(256));
            break; // insert
          default:
            bytes.splice(at, 1); // delete
        }
      }
      const mutant = shifted(Uint8Array.from(bytes), rng.nextInt(4));
      for (const side of ['worker', 'coordinator'] as const) {
        let message: WorkerMessage | CoordinatorMessage;
        try {
          message = side === 'worker' ? decodeWorkerMessage(mutant, LIMITS) : decodeCoordinatorMessage(mutant);
        } catch (err) {
          if (!(err instanceof ProtocolError))
            throw new Error(`iteration ${iter}, ${side}: ${String(err)} for bytes ${hex(mutant)}`);
          outcomes.set(err.reason, (outcomes.get(err.reason) ?? 0) + 1);
          continue;
        }
        assertValid(message, side);
        outcomes.set('accepted', (outcomes.get('accepted') ?? 0) + 1);
      }
    }
    // Not vacuous: mutations both survive (inside float bytes) and trip several distinct checks.
    expect(outcomes.get('accepted') ?? 0).toBeGreaterThan(0);
    expect(outcomes.get('malformed') ?? 0).toBeGreaterThan(0);
    expect(outcomes.size).toBeGreaterThanOrEqual(4);
    expect(performance.now() - started).toBeLessThan(20_000);
  }, 30_000);
});
