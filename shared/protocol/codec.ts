// Encoding and validation of protocol messages. `decode*` is the one place where
// bytes from a peer become typed values: it checks the type, the protocol version,
// every field's type and range, lengths against the model, and finiteness, and
// throws ProtocolError otherwise. Nothing past this file sees an unchecked message.

import { Packr } from 'msgpackr';
import { KERNEL_SET_NAMES, type KernelSetName } from '../kernels/kernel-set.js';
import { type ModelSpec, validateSpec } from '../model/spec.js';
import { ProtocolError } from './codes.js';
import { packBf16, unpackBf16 } from '../kernels/bf16.js';
import { allFinite, firstNonFinite } from '../finite.js';
import { WIRE_DTYPES, wireBytesPer, type WireDtype } from '../wire-dtype.js';
import type {
  CoordinatorMessage,
  DatasetDescriptor,
  DigestMessage,
  HelloMessage,
  NodeStats,
  ResultMessage,
  ShardWork,
  TaskMessage,
  WeightsRef,
  WelcomeMessage,
  WorkerMessage,
} from './messages.js';

// Plain msgpack maps (no record extension), so any msgpack implementation can speak it.
// int64AsType 'auto' (missing from msgpackr's typings): 64-bit ints that fit a double
// decode as numbers, so encoders that always write 64-bit ints can speak to us too.
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'auto' as 'number' });

function bytesOf(a: Float32Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * A message as its msgpack head and its tensor, if it carries one (weights, result). The head ends with the tensor's
 * bin header; the tensor's bytes, in the dtype, follow it, and any msgpack decoder reads the two as one map. The head
 * is padded (a `pad` bin of 0–3 bytes) to a multiple of 4 bytes, so the tensor starts 4-byte aligned and the receiver
 * views it in place instead of copying.
 */
export type MessageLayout =
  | { readonly head: Uint8Array; readonly tensor: null }
  | { readonly head: Uint8Array; readonly tensor: Float32Array; readonly dtype: WireDtype };

export function encodeLayout(message: WorkerMessage | CoordinatorMessage): MessageLayout {
  switch (message.type) {
    case 'weights': {
      const { weights, ...head } = message;
      return {
        head: headWithTensor(head, 'weights', weights.length * wireBytesPer(message.dtype)),
        tensor: weights,
        dtype: message.dtype,
      };
    }
    case 'result': {
      const { grads, ...head } = message;
      return {
        head: headWithTensor(head, 'grads', grads.length * wireBytesPer(message.dtype)),
        tensor: grads,
        dtype: message.dtype,
      };
    }
    case 'task':
    case 'check': {
      const { weights, weightsRef, ...rest } = message;
      const head = {
        ...rest,
        shards: message.shards.map((s) => ({ id: s.id, indices: bytesOf(s.indices) })),
        // Only when given: a message without it is the common case, and a few bytes shorter.
        ...(weightsRef === undefined ? {} : { weightsRef: { path: weightsRef.path, sha256: weightsRef.sha256 } }),
      };
      if (weights === null) return { head: packr.pack({ ...head, weights: null }), tensor: null };
      return {
        head: headWithTensor(head, 'weights', weights.length * wireBytesPer(message.dtype)),
        tensor: weights,
        dtype: message.dtype,
      };
    }
    default:
      return { head: packr.pack(message), tensor: null };
  }
}

/** Bytes of the encoded message: the head, then the tensor in its dtype. */
export function encodedLength(layout: MessageLayout): number {
  return layout.head.byteLength + (layout.tensor === null ? 0 : layout.tensor.length * wireBytesPer(layout.dtype));
}

/**
 * Writes the whole message into `out` (encodedLength bytes, 2-byte aligned): one copy
 * of the tensor, even for bf16. `encoded`: the tensor already in its dtype (what one
 * publish of the weights makes once for every worker), copied as is instead.
 */
export function writeMessage(layout: MessageLayout, out: Uint8Array, encoded?: Uint8Array): void {
  out.set(layout.head);
  if (layout.tensor === null) return;
  const tail = out.subarray(layout.head.byteLength);
  if (encoded === undefined) return writeTensor(tail, layout.tensor, layout.dtype);
  if (encoded.byteLength !== tail.byteLength)
    throw new RangeError(`encoded tensor of ${encoded.byteLength} bytes, the message holds ${tail.byteLength}`);
  tail.set(encoded);
}

/** Writes `values` into `out` in the dtype: f32 as is, bf16 rounded (nearest, ties to even) to the upper halves. */
function writeTensor(out: Uint8Array, values: Float32Array, dtype: WireDtype): void {
  if (dtype === 'f32') {
    out.set(bytesOf(values));
    return;
  }
  if (out.byteOffset % 2 !== 0) throw new RangeError('a bf16 tensor must start 2-byte aligned');
  packBf16(new Uint16Array(out.buffer, out.byteOffset, values.length), values);
}

/** Encodes any protocol message into a fresh buffer (MessagePool reuses buffers for the per-step ones). */
export function encode(message: WorkerMessage | CoordinatorMessage): Uint8Array {
  const layout = encodeLayout(message);
  if (layout.tensor === null) return layout.head;
  const out = new Uint8Array(encodedLength(layout));
  writeMessage(layout, out);
  return out;
}

const utf8 = new TextEncoder();
const PAD_KEY = [0xa3, 0x70, 0x61, 0x64]; // fixstr "pad"
const BIN8 = 0xc4;
const BIN32 = 0xc6;
const FIXMAP = 0x80;
const MAP16 = 0xde;

/** The head of a map with `fields`, then `pad`, then `key` whose bin value (`payloadLength` bytes) follows it. */
function headWithTensor(fields: object, key: string, payloadLength: number): Uint8Array {
  const map = packr.pack(fields);
  const keyBytes = utf8.encode(key);
  const tail = PAD_KEY.length + 2 + 1 + keyBytes.length + 5; // pad key, bin8 header, fixstr key, bin32 header
  const padding = (4 - ((map.byteLength + tail) % 4)) % 4;
  const head = new Uint8Array(map.byteLength + tail + padding);
  head.set(map);
  // Two more entries in the map header than packr wrote.
  if (map[0] >= FIXMAP && map[0] <= FIXMAP + 13) head[0] = map[0] + 2;
  else if (map[0] === MAP16) new DataView(head.buffer).setUint16(1, ((map[1] << 8) | map[2]) + 2);
  else throw new Error(`unexpected msgpack map header 0x${map[0].toString(16)}`);
  let at = map.byteLength;
  head.set(PAD_KEY, at);
  at += PAD_KEY.length;
  head[at++] = BIN8;
  head[at++] = padding;
  at += padding; // zeros
  head[at++] = 0xa0 | keyBytes.length; // fixstr
  head.set(keyBytes, at);
  at += keyBytes.length;
  head[at++] = BIN32;
  new DataView(head.buffer).setUint32(at, payloadLength);
  return head;
}

/** Limits a coordinator applies to what workers send. */
export interface WorkerMessageLimits {
  /** Floats in the flat parameter buffer: every gradient is a multiple of it. */
  readonly paramCount: number;
  /** The most tree nodes one result may carry. */
  readonly maxNodes: number;
  /** The run's wire dtype: results in another are refused. */
  readonly wireDtype: WireDtype;
}

function unpack(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch {
    throw new ProtocolError('malformed', `not a msgpack message (${bytes.byteLength} bytes)`);
  }
  if (!isMap(value)) throw new ProtocolError('malformed', `expected a map, got ${describe(value)}`);
  return value;
}

/** A msgpack map decodes to a plain object; msgpackr extensions and the 0xc1 byte decode to other objects. */
function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return `${v.byteLength} raw bytes`;
  return typeof v;
}

/** A peer's value for an error message; never throws (String() does on a map with a `toString` key). */
function show(v: unknown): string {
  return typeof v === 'object' && v !== null ? describe(v) : String(v);
}

function str(m: Record<string, unknown>, key: string, maxLength = 1024): string {
  const v = m[key];
  if (typeof v !== 'string' || v.length > maxLength)
    throw new ProtocolError(
      'malformed',
      `${key}: expected a string of at most ${maxLength} characters, got ${describe(v)}`,
    );
  return v;
}

function int(m: Record<string, unknown>, key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = m[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new ProtocolError('malformed', `${key}: expected an integer in [${min}, ${max}], got ${show(v)}`);
  return v;
}

function finite(m: Record<string, unknown>, key: string): number {
  const v = m[key];
  if (typeof v !== 'number') throw new ProtocolError('malformed', `${key}: expected a number, got ${describe(v)}`);
  if (!Number.isFinite(v)) throw new ProtocolError('non_finite', `${key}: expected a finite number, got ${v}`);
  return v;
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (!isMap(v)) throw new ProtocolError('malformed', `${what}: expected a map, got ${describe(v)}`);
  return v;
}

function array(m: Record<string, unknown>, key: string, maxLength: number): unknown[] {
  const v = m[key];
  if (!Array.isArray(v)) throw new ProtocolError('malformed', `${key}: expected an array, got ${describe(v)}`);
  if (v.length > maxLength)
    throw new ProtocolError('too_large', `${key}: at most ${maxLength} entries allowed, got ${v.length}`);
  return v;
}

function rawBytes(m: Record<string, unknown>, key: string): Uint8Array {
  const v = m[key];
  if (!(v instanceof Uint8Array))
    throw new ProtocolError('malformed', `${key}: expected raw bytes, got ${describe(v)}`);
  return v;
}

/** A Float32Array over the bytes; a view when 4-byte aligned, else a copy (typed views need alignment). */
function float32(bytes: Uint8Array, key: string): Float32Array {
  if (bytes.byteLength % 4 !== 0)
    throw new ProtocolError('bad_length', `${key}: ${bytes.byteLength} bytes is not a whole number of float32 values`);
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(new Uint8Array(bytes).buffer); // new Uint8Array(x) copies; Buffer#slice would not
}

function uint32(bytes: Uint8Array, key: string): Uint32Array {
  if (bytes.byteLength % 4 !== 0)
    throw new ProtocolError('bad_length', `${key}: ${bytes.byteLength} bytes is not a whole number of uint32 values`);
  if (bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Uint32Array(new Uint8Array(bytes).buffer);
}

function assertFinite(values: Float32Array, what: string): void {
  if (allFinite(values)) return;
  const i = firstNonFinite(values);
  throw new ProtocolError('non_finite', `${what}: value ${i} is ${values[i]}`);
}

/** Decodes and validates a message from a worker. */
/**
 * Where a decoded bf16 tensor is widened: a Float32Array of exactly `length` values
 * that the caller owns (so it can reuse memory, where a fresh 400 kB buffer costs ~10x
 * the widening). f32 tensors are views of the message and never use it.
 */
export type TensorAlloc = (length: number) => Float32Array;

const freshTensor: TensorAlloc = (length) => new Float32Array(length);

export function decodeWorkerMessage(
  bytes: Uint8Array,
  limits: WorkerMessageLimits,
  alloc: TensorAlloc = freshTensor,
): WorkerMessage {
  const m = unpack(bytes);
  switch (m.type) {
    case 'hello':
      return decodeHello(m);
    case 'ready':
      return { type: 'ready', datasetHash: str(m, 'datasetHash', 128) };
    case 'result':
      return decodeResult(m, limits, alloc);
    case 'digest':
      return decodeDigest(m);
    case 'banReport':
      return {
        type: 'banReport',
        workerId: str(m, 'workerId', 128),
        agent: str(m, 'agent', 256),
        remote: str(m, 'remote', 128),
        detail: str(m, 'detail', 1024),
      };
    default:
      throw new ProtocolError('unknown_type', `unknown message type ${JSON.stringify(show(m.type)).slice(0, 40)}`);
  }
}

function decodeHello(m: Record<string, unknown>): HelloMessage {
  const protocol = int(m, 'protocol', 0, 1 << 30);
  const token = str(m, 'token', 512);
  const kind = m.kind;
  if (kind !== 'node' && kind !== 'browser')
    throw new ProtocolError('malformed', `kind: expected node or browser, got ${describe(kind)}`);
  return { type: 'hello', protocol, token, kind, agent: str(m, 'agent', 256) };
}

function decodeResult(m: Record<string, unknown>, limits: WorkerMessageLimits, alloc: TensorAlloc): ResultMessage {
  const taskId = int(m, 'taskId');
  const version = int(m, 'version');
  const computeMs = finite(m, 'computeMs');
  const nodes: NodeStats[] = array(m, 'nodes', limits.maxNodes).map((raw, i) => {
    const n = record(raw, `nodes[${i}]`);
    return {
      lo: int(n, 'lo'),
      size: int(n, 'size', 1),
      lossSum: finite(n, 'lossSum'),
      count: int(n, 'count'),
      correct: int(n, 'correct'),
    };
  });
  if (nodes.length === 0) throw new ProtocolError('malformed', 'nodes: a result carries at least one node');
  const dtype = wireDtype(m.dtype, 'dtype');
  if (dtype !== limits.wireDtype)
    throw new ProtocolError(
      'malformed',
      `dtype: the run's wire dtype is ${limits.wireDtype}, the result is in ${dtype}`,
    );
  const diverged = m.diverged;
  if (typeof diverged !== 'boolean')
    throw new ProtocolError('malformed', `diverged: expected a boolean, got ${describe(diverged)}`);
  const bytes = rawBytes(m, 'grads');
  if (diverged) {
    if (bytes.byteLength !== 0)
      throw new ProtocolError('bad_length', `grads: a diverged result carries none, got ${bytes.byteLength} bytes`);
    return { type: 'result', taskId, version, nodes, dtype, diverged, grads: new Float32Array(0), computeMs };
  }
  const expected = nodes.length * limits.paramCount;
  const got = bytes.byteLength / wireBytesPer(dtype);
  if (got !== expected)
    throw new ProtocolError(
      'bad_length',
      `grads: expected ${expected} ${dtype} values (${nodes.length} nodes × ${limits.paramCount} parameters), ` +
        `got ${got}`,
    );
  const grads = tensor(bytes, dtype, 'grads', alloc);
  assertFinite(grads, 'grads');
  return { type: 'result', taskId, version, nodes, dtype, diverged, grads, computeMs };
}

/** Decodes and validates a message from the coordinator. */
export function decodeCoordinatorMessage(bytes: Uint8Array, alloc: TensorAlloc = freshTensor): CoordinatorMessage {
  const m = unpack(bytes);
  switch (m.type) {
    case 'welcome':
      return decodeWelcome(m);
    case 'weights': {
      const dtype = wireDtype(m.dtype, 'dtype');
      const weights = tensor(rawBytes(m, 'weights'), dtype, 'weights', alloc);
      assertFinite(weights, 'weights');
      return { type: 'weights', version: int(m, 'version'), dtype, weights };
    }
    case 'task':
      return { type: 'task', taskId: int(m, 'taskId'), ...decodeWork(m, alloc) };
    case 'check':
      return { type: 'check', checkId: int(m, 'checkId'), ...decodeWork(m, alloc) };
    case 'standby':
      return { type: 'standby', reason: str(m, 'reason') };
    case 'stop':
      return { type: 'stop', reason: str(m, 'reason') };
    default:
      throw new ProtocolError('unknown_type', `unknown message type ${JSON.stringify(show(m.type)).slice(0, 40)}`);
  }
}

function decodeWelcome(m: Record<string, unknown>): WelcomeMessage {
  const protocol = int(m, 'protocol');
  let spec: ModelSpec;
  try {
    spec = validateSpec(m.spec);
  } catch (err) {
    throw new ProtocolError('malformed', (err as Error).message);
  }
  return {
    type: 'welcome',
    protocol,
    workerId: str(m, 'workerId', 64),
    spec,
    dataset: decodeDescriptor(record(m.dataset, 'dataset')),
    shardSize: int(m, 'shardSize', 1, 1 << 20),
    kernels: kernelSetName(m.kernels),
    wireDtype: wireDtype(m.wireDtype, 'wireDtype'),
  };
}

function wireDtype(v: unknown, key: string): WireDtype {
  if (typeof v !== 'string' || !(WIRE_DTYPES as readonly string[]).includes(v)) {
    throw new ProtocolError(
      'malformed',
      `${key}: expected one of ${WIRE_DTYPES.join(', ')}, got ` +
        `${describe(v)}${typeof v === 'string' ? ` ${JSON.stringify(v.slice(0, 20))}` : ''}`,
    );
  }
  return v as WireDtype;
}

/** The values of a tensor in the dtype: f32 as float32() does, bf16 widened into a new Float32Array (exactly). */
function tensor(bytes: Uint8Array, dtype: WireDtype, key: string, alloc: TensorAlloc): Float32Array {
  if (dtype === 'f32') return float32(bytes, key);
  if (bytes.byteLength % 2 !== 0)
    throw new ProtocolError('bad_length', `${key}: ${bytes.byteLength} bytes is not a whole number of bf16 values`);
  const out = alloc(bytes.byteLength / 2);
  if (out.length !== bytes.byteLength / 2)
    throw new RangeError(`tensor allocator returned ${out.length} values, ${bytes.byteLength / 2} asked`);
  // Our encoder aligns the tensor (the pad field); another's may not: then read a copy.
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : new Uint8Array(bytes); // copies; Buffer#slice would not
  unpackBf16(out, new Uint16Array(aligned.buffer, aligned.byteOffset, out.length));
  return out;
}

function kernelSetName(v: unknown): KernelSetName {
  if (typeof v !== 'string' || !(KERNEL_SET_NAMES as readonly string[]).includes(v)) {
    throw new ProtocolError(
      'malformed',
      `kernels: expected one of ${KERNEL_SET_NAMES.join(', ')}, ` +
        `got ${describe(v)}${typeof v === 'string' ? ` ${JSON.stringify(v.slice(0, 20))}` : ''}`,
    );
  }
  return v as KernelSetName;
}

function decodeDescriptor(d: Record<string, unknown>): DatasetDescriptor {
  const kind = d.kind;
  if (kind !== 'classification' && kind !== 'regression')
    throw new ProtocolError('malformed', `dataset.kind: expected classification or regression, got ${describe(kind)}`);
  const classNames = array(d, 'classNames', 1 << 16).map((c, i) => {
    if (typeof c !== 'string') throw new ProtocolError('malformed', `dataset.classNames[${i}]: expected a string`);
    return c;
  });
  const dtype = d.dtype;
  if (dtype !== 'f32' && dtype !== 'u8')
    throw new ProtocolError('malformed', `dataset.dtype: expected f32 or u8, got ${describe(dtype)}`);
  return {
    name: str(d, 'name'),
    kind,
    numSamples: int(d, 'numSamples', 1),
    numFeatures: int(d, 'numFeatures', 1),
    labelWidth: int(d, 'labelWidth', 1),
    numClasses: int(d, 'numClasses'),
    classNames,
    dtype,
    hash: str(d, 'hash', 128),
    path: str(d, 'path'),
  };
}

const HEX_SHA256 = /^[0-9a-f]{64}$/;

function decodeDigest(m: Record<string, unknown>): DigestMessage {
  const checkId = int(m, 'checkId');
  const digest = m.digest;
  if (typeof digest !== 'string' || !HEX_SHA256.test(digest))
    throw new ProtocolError(
      'malformed',
      `digest: expected 64 lowercase hex characters, got ${describe(digest)}` +
        `${typeof digest === 'string' ? ` of length ${digest.length}` : ''}`,
    );
  return { type: 'digest', checkId, digest };
}

/** What a task and a check share: the work, at a version and step, with the weights when the worker lacks them. */
function decodeWork(m: Record<string, unknown>, alloc: TensorAlloc): Omit<TaskMessage, 'type' | 'taskId'> {
  const numShards = int(m, 'numShards', 1, 1 << 20);
  const shards: ShardWork[] = array(m, 'shards', numShards).map((raw, i) => {
    const s = record(raw, `shards[${i}]`);
    return { id: int(s, 'id', 0, numShards - 1), indices: uint32(rawBytes(s, 'indices'), `shards[${i}].indices`) };
  });
  const dtype = wireDtype(m.dtype, 'dtype');
  // Present or null, never missing: a missing field is a sender that does not speak this version.
  let weights: Float32Array | null = null;
  if (m.weights !== null) {
    weights = tensor(rawBytes(m, 'weights'), dtype, 'weights', alloc);
    assertFinite(weights, 'weights');
  }
  const version = int(m, 'version');
  const work = { version, step: int(m, 'step'), numShards, shards, dtype, weights };
  if (m.weightsRef === undefined) return work;
  if (weights !== null)
    throw new ProtocolError('malformed', 'weightsRef: a message carries the weights or a weightsRef, not both');
  return { ...work, weightsRef: decodeWeightsRef(record(m.weightsRef, 'weightsRef'), version) };
}

const WEIGHTS_PATH = /^\/weights\/(0|[1-9][0-9]{0,15})-([0-9a-f]{64})$/;

/** The HTTP path of weights `version` whose wire bytes hash to `sha256` (hex). */
export function weightsPath(version: number, sha256: string): string {
  return `/weights/${version}-${sha256}`;
}

/** The version and hash a weights path names, or null when it is not one (exactly as weightsPath writes it). */
export function parseWeightsPath(path: string): { readonly version: number; readonly sha256: string } | null {
  const m = WEIGHTS_PATH.exec(path);
  if (m === null) return null;
  const version = Number(m[1]);
  return Number.isSafeInteger(version) ? { version, sha256: m[2] } : null;
}

/** A path on the coordinator's own origin, of the message's version, and the hash it names. */
function decodeWeightsRef(r: Record<string, unknown>, version: number): WeightsRef {
  const path = str(r, 'path', 128);
  const sha256 = str(r, 'sha256', 64);
  const named = parseWeightsPath(path);
  if (named === null)
    throw new ProtocolError(
      'malformed',
      `weightsRef.path: expected /weights/<version>-<64 hex chars>, got ${JSON.stringify(path.slice(0, 100))}`,
    );
  if (named.version !== version || named.sha256 !== sha256)
    throw new ProtocolError(
      'malformed',
      `weightsRef: path ${JSON.stringify(path)} does not name version ${version} and hash ${JSON.stringify(sha256)}`,
    );
  return { path, sha256 };
}

/**
 * The weights in a body fetched from a weightsRef, checked as a message's would be:
 * `paramCount` values in `dtype`, all finite. The hash is the caller's to check first.
 */
export function decodeWeightsBody(
  bytes: Uint8Array,
  dtype: WireDtype,
  paramCount: number,
  alloc: TensorAlloc = freshTensor,
): Float32Array {
  const expected = paramCount * wireBytesPer(dtype);
  if (bytes.byteLength !== expected)
    throw new ProtocolError(
      'bad_length',
      `weights: expected ${paramCount} ${dtype} values (${expected} bytes), got ${bytes.byteLength} bytes`,
    );
  const weights = tensor(bytes, dtype, 'weights', alloc);
  assertFinite(weights, 'weights');
  return weights;
}
