// What a model expects of its input, as stored in its model file ("flocktrain.input"),
// and how raw inputs become the rows it was trained on: CSV columns picked by name into
// the training column order, image bytes scaled, then the training set's
// standardization. Training and prediction apply the same formula
// (split.ts's applyStandardization), so a row predicts as it trained. Platform-neutral.

import { DataError, ModelFileError } from '../errors.js';
import { parseNumber, quote, type CsvTable } from './csv.js';
import type { Dataset, TaskKind } from './dataset.js';
import { applyStandardization, type Standardization } from './split.js';

/** A categorical column one-hot encoded into `values.length` features, in this order. */
export interface CategoricalEncoding {
  readonly column: string;
  readonly values: readonly string[];
}

export interface ModelInput {
  readonly task: TaskKind;
  /** Shape of one sample as the data has it: [features] for tables, [height, width] for images. */
  readonly shape: readonly number[];
  /** Feature column names in model input order; null when the data had no names (built-in sets). */
  readonly featureColumns: readonly string[] | null;
  /** The CSV column holding the label; null when the data had no names. */
  readonly labelColumn: string | null;
  /** Class names in output order (classification); empty for regression. */
  readonly classNames: readonly string[];
  /** The training set's statistics applied to every row, or null when features are used as they are. */
  readonly standardization: Standardization | null;
  /** One-hot encoded columns (none yet: every CSV feature is numeric). */
  readonly categorical: readonly CategoricalEncoding[];
  /** Images: the factor that turns a stored byte (IDX, uint8 NPY) into a model input; null for tables. */
  readonly byteScale: number | null;
}

/** The input description of a model trained on `ds` (its features before standardization). */
export function modelInputOf(
  ds: Dataset,
  standardization: Standardization | null,
  image: { readonly shape: readonly number[]; readonly byteScale: number } | null = null,
): ModelInput {
  return {
    task: ds.kind,
    shape: image?.shape ?? [ds.numFeatures],
    featureColumns: ds.featureNames ?? null,
    labelColumn: ds.labelColumn ?? null,
    classNames:
      ds.kind === 'classification'
        ? ds.classNames.length === ds.numClasses
          ? ds.classNames
          : Array.from({ length: ds.numClasses }, (_, c) => String(c))
        : [],
    standardization,
    categorical: [],
    byteScale: image?.byteScale ?? null,
  };
}

/** Number of features one sample has (the product of the shape). */
export function inputSize(input: ModelInput): number {
  return input.shape.reduce((a, b) => a * b, 1);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function isNumberArray(v: unknown, length: number): v is number[] {
  return Array.isArray(v) && v.length === length && v.every((x) => typeof x === 'number' && Number.isFinite(x));
}

/** Validates an untrusted value (a model file's metadata) into a ModelInput, or throws ModelFileError. */
export function validateModelInput(value: unknown, expectedSize: number): ModelInput {
  const bad = (what: string): ModelFileError => new ModelFileError(`model input description: ${what}`);
  if (typeof value !== 'object' || value === null) throw bad('expected an object');
  const v = value as Record<string, unknown>;
  if (v.task !== 'classification' && v.task !== 'regression') throw bad(`unknown task ${String(v.task)}`);
  if (!Array.isArray(v.shape) || !v.shape.every((n) => Number.isInteger(n) && n > 0))
    throw bad('shape must be a list of positive integers');
  const shape = v.shape as number[];
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== expectedSize)
    throw bad(`shape ${JSON.stringify(shape)} holds ${size} values, the model takes ${expectedSize}`);
  const featureColumns = v.featureColumns === null ? null : v.featureColumns;
  if (featureColumns !== null && !(isStringArray(featureColumns) && featureColumns.length === size))
    throw bad(`featureColumns must be null or ${size} names`);
  if (v.labelColumn !== null && typeof v.labelColumn !== 'string') throw bad('labelColumn must be null or a name');
  if (!isStringArray(v.classNames)) throw bad('classNames must be a list of names');
  const s = v.standardization as Record<string, unknown> | null;
  if (s !== null && !(typeof s === 'object' && isNumberArray(s.mean, size) && isNumberArray(s.std, size)))
    throw bad(`standardization must be null or {mean, std} of ${size} finite numbers each`);
  if (s !== null && (s.std as number[]).some((x) => x <= 0)) throw bad('standardization std must be positive');
  if (!Array.isArray(v.categorical) || v.categorical.length > 0)
    throw bad('categorical encodings are not supported by this version');
  if (v.byteScale !== null && !(typeof v.byteScale === 'number' && v.byteScale > 0))
    throw bad('byteScale must be null or a positive number');
  return {
    task: v.task,
    shape,
    featureColumns,
    labelColumn: v.labelColumn as string | null,
    classNames: v.classNames,
    standardization: s === null ? null : { mean: s.mean as number[], std: s.std as number[] },
    categorical: [],
    byteScale: v.byteScale as number | null,
  };
}

/** Model-ready rows and, when the input had them, the label texts. */
export interface PreparedRows {
  readonly numSamples: number;
  /** (numSamples, inputSize), standardized as in training. */
  readonly features: Float32Array;
  /** (numSamples) label texts as in the file, or null when the label column is absent. */
  readonly labels: readonly string[] | null;
  /** (numSamples) the 1-based line of each row, for messages. */
  readonly lines: readonly number[];
}

/**
 * The model's rows from a raw CSV table: feature columns picked by name (any order), the
 * label column optional, any other column refused; numbers checked with file:line:column.
 */
export function rowsFromCsv(table: CsvTable, input: ModelInput, file: string): PreparedRows {
  const columns = input.featureColumns;
  if (columns === null)
    throw new DataError(`${file}: this model was not trained on named columns; give it IDX or NPY input`);
  const at = new Map(table.header.map((name, j) => [name, j]));
  const missing = columns.filter((c) => !at.has(c));
  if (missing.length > 0)
    throw new DataError(`${file}: missing column${missing.length > 1 ? 's' : ''} ${missing.map(quote).join(', ')}`);
  const known = new Set([...columns, ...(input.labelColumn === null ? [] : [input.labelColumn])]);
  const extra = table.header.filter((c) => !known.has(c));
  if (extra.length > 0)
    throw new DataError(
      `${file}: unexpected column${extra.length > 1 ? 's' : ''} ${extra.map(quote).join(', ')}; the model takes ${columns.map(quote).join(', ')}${input.labelColumn === null ? '' : ` and optionally ${quote(input.labelColumn)}`}`,
    );
  const labelIndex = input.labelColumn === null ? -1 : (at.get(input.labelColumn) ?? -1);
  const d = columns.length;
  const n = table.rows.length;
  if (n === 0) throw new DataError(`${file}: no data rows after the header`);
  const raw = new Float32Array(n * d); // (n, d)
  const labels: string[] = [];
  const lines: number[] = [];
  const picks = columns.map((c) => at.get(c) as number);
  table.rows.forEach(({ fields, lines: fieldLines }, i) => {
    if (fields.length !== table.header.length)
      throw new DataError(
        `${file}:${fieldLines[0]}: expected ${table.header.length} fields as in the header, got ${fields.length}`,
      );
    for (let k = 0; k < d; k++) {
      const j = picks[k];
      raw[i * d + k] = parseNumber(fields[j], `${file}:${fieldLines[j]}:${table.header[j]}`);
    }
    if (labelIndex >= 0) labels.push(fields[labelIndex].trim());
    lines.push(fieldLines[0]);
  });
  return { numSamples: n, features: prepareFeatures(raw, input), labels: labelIndex >= 0 ? labels : null, lines };
}

/** Raw feature rows (n, inputSize) as the model takes them: standardized when it was trained so. */
export function prepareFeatures(raw: Float32Array, input: ModelInput): Float32Array {
  if (input.standardization === null) return raw;
  const out = new Float32Array(raw.length);
  applyStandardization(out, raw, input.standardization);
  return out;
}
