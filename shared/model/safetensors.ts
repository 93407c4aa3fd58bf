// The safetensors file format (https://huggingface.co/docs/safetensors), F32 only:
// encode the flat parameter buffer into a file PyTorch can load into nn.Sequential,
// decode and validate an untrusted file, and copy its tensors back into a flat buffer.
// Pure functions over Uint8Array, no fs, so the browser worker can use it too.
//
// File layout:
//   [0, 8)          N, the header length in bytes, u64 little-endian
//   [8, 8 + N)      UTF-8 JSON header, padded with spaces so the data starts 8-aligned
//   [8 + N, end)    data section: tensors back to back, f32 little-endian
// Header: {"__metadata__": {string: string}, "<name>": {"dtype": "F32", "shape": [...],
// "data_offsets": [begin, end]}, ...}, offsets in bytes relative to the data section.

import { ModelFileError } from '../errors.js';
import type { ParamLayout } from './spec.js';

export interface SafetensorsTensor {
  readonly dtype: string;
  readonly shape: number[];
  /** Row-major, shape.reduce(*) floats, a fresh copy owned by the caller. */
  readonly data: Float32Array;
}

export interface SafetensorsFile {
  readonly metadata: Record<string, string>;
  /** In header order, except that JSON.parse puts integer-like names ("7") first. */
  readonly tensors: Map<string, SafetensorsTensor>;
}

/** Same limit as the reference implementation: a bigger header is not a model file. */
const MAX_HEADER_BYTES = 100_000_000;
const HEADER_LENGTH_BYTES = 8;
/** The reference implementation aligns the data section to 8 bytes. */
const DATA_ALIGNMENT = 8;
const F32_BYTES = 4;
const METADATA_KEY = '__metadata__';
const ENTRY_KEYS = ['data_offsets', 'dtype', 'shape'];

/** A validated header entry; begin/end are byte offsets into the data section. */
interface TensorEntry {
  readonly name: string;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export function encodeSafetensors(
  layout: ParamLayout,
  params: Float32Array,
  metadata: Record<string, string>,
): Uint8Array {
  if (params.length !== layout.totalSize) {
    throw new RangeError(`encodeSafetensors: expected ${layout.totalSize} params for the layout, got ${params.length}`);
  }
  // Built by hand rather than JSON.stringify(object): that would move integer-like
  // keys to the front, and the tensors must appear in layout order.
  const entries: string[] = [`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`];
  let dataBytes = 0;
  for (const t of layout.tensors) {
    const info = { dtype: 'F32', shape: t.shape, data_offsets: [dataBytes, dataBytes + t.size * F32_BYTES] };
    entries.push(`${JSON.stringify(t.name)}:${JSON.stringify(info)}`);
    dataBytes += t.size * F32_BYTES;
  }
  const json = new TextEncoder().encode(`{${entries.join(',')}}`);
  const padding = (DATA_ALIGNMENT - ((HEADER_LENGTH_BYTES + json.length) % DATA_ALIGNMENT)) % DATA_ALIGNMENT;
  const headerBytes = json.length + padding;
  const dataStart = HEADER_LENGTH_BYTES + headerBytes;

  const out = new Uint8Array(dataStart + dataBytes);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes), true);
  out.set(json, HEADER_LENGTH_BYTES);
  out.fill(0x20, HEADER_LENGTH_BYTES + json.length, dataStart);
  let pos = dataStart;
  for (const t of layout.tensors) {
    writeF32LE(out, pos, params.subarray(t.offset, t.offset + t.size));
    pos += t.size * F32_BYTES;
  }
  return out;
}

/** Parses and validates an untrusted safetensors file; every problem is a ModelFileError. */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < HEADER_LENGTH_BYTES) {
    throw new ModelFileError(`safetensors: expected at least ${HEADER_LENGTH_BYTES} bytes, got ${bytes.length}`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw new ModelFileError(
      `safetensors: expected a header of at most ${MAX_HEADER_BYTES} bytes, got ${headerLength}`,
    );
  }
  if (headerLength > BigInt(bytes.length - HEADER_LENGTH_BYTES)) {
    throw new ModelFileError(
      `safetensors: header length ${headerLength} exceeds ` +
        `the ${bytes.length - HEADER_LENGTH_BYTES} bytes after the length prefix`,
    );
  }
  const dataStart = HEADER_LENGTH_BYTES + Number(headerLength);
  const dataBytes = bytes.length - dataStart;
  const header = parseHeader(bytes.subarray(HEADER_LENGTH_BYTES, dataStart));

  let metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(raw);
      continue;
    }
    entries.push(parseEntry(name, raw, dataBytes));
  }
  checkCoverage(entries, dataBytes);

  const tensors = new Map<string, SafetensorsTensor>();
  for (const { name, shape, begin, end } of entries) {
    const data = readF32LE(bytes, dataStart + begin, (end - begin) / F32_BYTES);
    tensors.set(name, { dtype: 'F32', shape, data });
  }
  return { metadata, tensors };
}

/** A new flat buffer of layout.totalSize filled from the file; names and shapes must match exactly. */
export function loadParams(layout: ParamLayout, file: SafetensorsFile): Float32Array {
  const params = new Float32Array(layout.totalSize);
  const expected = new Set<string>();
  for (const t of layout.tensors) {
    expected.add(t.name);
    const found = file.tensors.get(t.name);
    if (found === undefined) {
      throw new ModelFileError(`safetensors: missing tensor ${quote(t.name)} (expected shape ${fmtShape(t.shape)})`);
    }
    if (!sameShape(found.shape, t.shape) || found.data.length !== t.size) {
      throw new ModelFileError(
        `safetensors: tensor ${quote(t.name)} has the wrong shape: expected ${fmtShape(t.shape)}, ` +
          `found ${fmtShape(found.shape)}`,
      );
    }
    params.set(found.data, t.offset);
  }
  for (const [name, t] of file.tensors) {
    if (!expected.has(name)) {
      throw new ModelFileError(
        `safetensors: unexpected tensor ${quote(name)} with shape ${fmtShape(t.shape)} (not in the model)`,
      );
    }
  }
  return params;
}

function parseHeader(raw: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    // fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a BOM stays and fails JSON.parse.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    throw new ModelFileError('safetensors: expected a UTF-8 header, got invalid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ModelFileError(`safetensors: expected a JSON header, got unparsable text (${oneLine(err)})`);
  }
  if (!isPlainObject(parsed)) {
    throw new ModelFileError(`safetensors: expected the header to be a JSON object, got ${describe(parsed)}`);
  }
  return parsed;
}

function parseMetadata(raw: unknown): Record<string, string> {
  if (!isPlainObject(raw)) {
    throw new ModelFileError(`safetensors: expected __metadata__ to be an object, got ${describe(raw)}`);
  }
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string') {
      throw new ModelFileError(
        `safetensors: expected __metadata__ value for key ${quote(key)} to be a string, got ${describe(value)}`,
      );
    }
  }
  // fromEntries defines own properties, so a "__proto__" key stays data, not a prototype.
  return Object.fromEntries(Object.entries(raw)) as Record<string, string>;
}

function parseEntry(name: string, raw: unknown, dataBytes: number): TensorEntry {
  if (!isPlainObject(raw)) {
    throw new ModelFileError(`safetensors: expected tensor ${quote(name)} to be an object, got ${describe(raw)}`);
  }
  const keys = Object.keys(raw).sort();
  if (keys.join(',') !== ENTRY_KEYS.join(',')) {
    throw new ModelFileError(
      `safetensors: expected tensor ${quote(name)} to have exactly the keys ${ENTRY_KEYS.join(', ')}, ` +
        `got ${quote(keys)}`,
    );
  }
  const { dtype, shape, data_offsets: offsets } = raw;
  if (typeof dtype !== 'string') {
    throw new ModelFileError(
      `safetensors: expected tensor ${quote(name)} dtype to be a string, got ${describe(dtype)}`,
    );
  }
  if (dtype !== 'F32') {
    throw new ModelFileError(`safetensors: tensor ${quote(name)} has dtype ${quote(dtype)}, only F32 is supported`);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeSafeInt)) {
    throw new ModelFileError(
      `safetensors: expected tensor ${quote(name)} shape to be an array of non-negative integers, got ${quote(shape)}`,
    );
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeSafeInt)) {
    throw new ModelFileError(
      `safetensors: expected tensor ${quote(name)} data_offsets to be two non-negative integers, got ${quote(offsets)}`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataBytes) {
    throw new ModelFileError(
      `safetensors: expected tensor ${quote(name)} data_offsets within [0, ${dataBytes}] with begin <= end, ` +
        `got [${begin}, ${end}]`,
    );
  }
  // Overflow shows up as Infinity, or as NaN once a zero dimension follows it.
  const byteSize = (shape as number[]).reduce((a, b) => a * b, 1) * F32_BYTES;
  if (!Number.isSafeInteger(byteSize)) {
    throw new ModelFileError(
      `safetensors: tensor ${quote(name)} has more elements than a file can hold, shape ${quote(shape)}`,
    );
  }
  if (byteSize !== end - begin) {
    throw new ModelFileError(
      `safetensors: tensor ${quote(name)} of shape ${fmtShape(shape as number[])} F32 needs ${byteSize} bytes, ` +
        `data_offsets span ${end - begin}`,
    );
  }
  return { name, shape: (shape as number[]).slice(), begin, end };
}

/** The format forbids overlaps and holes: sorted by begin, each range starts where the last ended. */
function checkCoverage(entries: readonly TensorEntry[], dataBytes: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous = '(start of data)';
  for (const r of sorted) {
    if (r.begin < covered) {
      throw new ModelFileError(
        `safetensors: tensor ${quote(r.name)} at byte ${r.begin} overlaps ${previous}, which ends at byte ${covered}`,
      );
    }
    if (r.begin > covered) {
      throw new ModelFileError(
        `safetensors: expected tensor data at byte ${covered} after ${previous}, ` +
          `got a hole up to byte ${r.begin} (tensor ${quote(r.name)})`,
      );
    }
    covered = r.end;
    previous = `tensor ${quote(r.name)}`;
  }
  if (covered !== dataBytes) {
    throw new ModelFileError(
      `safetensors: expected tensors to cover the ${dataBytes}-byte data section, they end at byte ${covered}`,
    );
  }
}

/** Writes src as little-endian f32 at out[pos..]. */
function writeF32LE(out: Uint8Array, pos: number, src: Float32Array): void {
  if (LITTLE_ENDIAN_HOST) {
    out.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), pos);
    return;
  }
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < src.length; i++) view.setFloat32(pos + i * F32_BYTES, src[i], true);
}

/** Reads count little-endian f32 from bytes[pos..] into a fresh array (pos need not be 4-aligned). */
function readF32LE(bytes: Uint8Array, pos: number, count: number): Float32Array {
  if (LITTLE_ENDIAN_HOST) {
    // A copy into a new, aligned ArrayBuffer. new Uint8Array(view) copies; a Node
    // Buffer's slice would not (it shares the whole underlying buffer).
    return new Float32Array(new Uint8Array(bytes.subarray(pos, pos + count * F32_BYTES)).buffer);
  }
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(pos + i * F32_BYTES, true);
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegativeSafeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `string ${quote(v)}` : typeof v;
}

/** Untrusted values in messages: JSON keeps them on one line, the cut keeps the line short. */
function quote(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
