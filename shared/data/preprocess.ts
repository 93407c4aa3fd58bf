// What a model expects of its input, as stored in its model file ("flocktrain.input"),
// and how raw inputs become the rows it was trained on: CSV columns picked by name into
// the training column order, image bytes scaled, then the training set's
// standardization. Training and prediction apply the same formula
// (split.ts's applyStandardization), so a row predicts as it trained. Platform-neutral.

import { DataError, ModelFileError } from '../errors.js';
import { parseNumber, quote, type CsvTable } from './csv.js';
import type { CategoricalEncoding, Dataset, TaskKind } from './dataset.js';

export type { CategoricalEncoding } from './dataset.js';
import { applyStandardization, type Standardization } from './split.js';

export interface ModelInput {
  readonly task: TaskKind;
  /** Shape of one sample as the data has it: [features] for tables, [height, width] for images. */
  readonly shape: readonly number[];
  /** Feature names in model input order (one-hot ones as column=value); null when the data had no names. */
  readonly featureColumns: readonly string[] | null;
  /** The CSV columns holding the label or the targets, in output order; empty when the data had no names. */
  readonly labelColumns: readonly string[];
  /** Class names in output order (classification); empty for regression. */
  readonly classNames: readonly string[];
  /** The training set's statistics applied to every row, or null when features are used as they are. */
  readonly standardization: Standardization | null;
  /** The CSV columns one-hot encoded into features. */
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
    labelColumns: ds.labelColumns ?? [],
    classNames:
      ds.kind === 'classification'
        ? ds.classNames.length === ds.numClasses
          ? ds.classNames
          : Array.from({ length: ds.numClasses }, (_, c) => String(c))
        : [],
    standardization,
    categorical: ds.categorical ?? [],
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
  if (!isStringArray(v.labelColumns)) throw bad('labelColumns must be a list of names');
  if (!isStringArray(v.classNames)) throw bad('classNames must be a list of names');
  const s = v.standardization as Record<string, unknown> | null;
  if (s !== null && !(typeof s === 'object' && isNumberArray(s.mean, size) && isNumberArray(s.std, size)))
    throw bad(`standardization must be null or {mean, std} of ${size} finite numbers each`);
  if (s !== null && (s.std as number[]).some((x) => x <= 0)) throw bad('standardization std must be positive');
  if (!Array.isArray(v.categorical)) throw bad('categorical must be a list');
  const categorical = (v.categorical as unknown[]).map((e): CategoricalEncoding => {
    const c = e as Record<string, unknown> | null;
    if (typeof c !== 'object' || c === null || typeof c.column !== 'string' || !isStringArray(c.values))
      throw bad('each categorical encoding must be {column, values}');
    for (const value of c.values)
      if (featureColumns === null || !featureColumns.includes(`${c.column}=${value}`))
        throw bad(`categorical ${c.column}: no feature ${c.column}=${value}`);
    return { column: c.column, values: c.values };
  });
  if (v.byteScale !== null && !(typeof v.byteScale === 'number' && v.byteScale > 0))
    throw bad('byteScale must be null or a positive number');
  return {
    task: v.task,
    shape,
    featureColumns,
    labelColumns: v.labelColumns,
    classNames: v.classNames,
    standardization: s === null ? null : { mean: s.mean as number[], std: s.std as number[] },
    categorical,
    byteScale: v.byteScale as number | null,
  };
}

/** Model-ready rows and, when the input had them, the label texts. */
export interface PreparedRows {
  readonly numSamples: number;
  /** (numSamples, inputSize), standardized as in training. */
  readonly features: Float32Array;
  /** (numSamples, label columns) label texts as in the file, or null when the label columns are absent. */
  readonly labels: readonly (readonly string[])[] | null;
  /** (numSamples) the 1-based line of each row, for messages. */
  readonly lines: readonly number[];
}

/**
 * The model's rows from a raw CSV table: input columns picked by name (any order),
 * categorical ones one-hot encoded as in training, the label columns optional (all or
 * none), any other column refused; numbers checked with file:line:column.
 */
export function rowsFromCsv(table: CsvTable, input: ModelInput, file: string): PreparedRows {
  const features = input.featureColumns;
  if (features === null)
    throw new DataError(`${file}: this model was not trained on named columns; give it IDX or NPY input`);
  const oneHot = new Map<string, { column: string; value: string }>();
  for (const e of input.categorical)
    for (const value of e.values) oneHot.set(`${e.column}=${value}`, { column: e.column, value });
  const columns = [...new Set(features.map((f) => oneHot.get(f)?.column ?? f))];
  const at = new Map(table.header.map((name, j) => [name, j]));
  const missing = columns.filter((c) => !at.has(c));
  if (missing.length > 0)
    throw new DataError(`${file}: missing column${missing.length > 1 ? 's' : ''} ${missing.map(quote).join(', ')}`);
  const labelColumns = input.labelColumns;
  const known = new Set([...columns, ...labelColumns]);
  const extra = table.header.filter((c) => !known.has(c));
  const optional = labelColumns.length === 0 ? '' : ` and optionally ${labelColumns.map(quote).join(', ')}`;
  if (extra.length > 0)
    throw new DataError(
      `${file}: unexpected column${extra.length > 1 ? 's' : ''} ${extra.map(quote).join(', ')}; ` +
        `the model takes ${columns.map(quote).join(', ')}${optional}`,
    );
  const givenLabels = labelColumns.filter((c) => at.has(c));
  if (givenLabels.length > 0 && givenLabels.length < labelColumns.length)
    throw new DataError(
      `${file}: missing column ${quote(labelColumns.find((c) => !at.has(c)) as string)} ` +
        '(give all label columns or none)',
    );
  const d = features.length;
  const n = table.rows.length;
  if (n === 0) throw new DataError(`${file}: no data rows after the header`);
  const raw = new Float32Array(n * d); // (n, d)
  const labels: string[][] = [];
  const lines: number[] = [];
  table.rows.forEach(({ fields, lines: fieldLines }, i) => {
    if (fields.length !== table.header.length)
      throw new DataError(
        `${file}:${fieldLines[0]}: expected ${table.header.length} fields as in the header, got ${fields.length}`,
      );
    features.forEach((feature, k) => {
      const hot = oneHot.get(feature);
      const j = at.get(hot?.column ?? feature) as number;
      if (hot === undefined) {
        raw[i * d + k] = parseNumber(fields[j], `${file}:${fieldLines[j]}:${feature}`);
        return;
      }
      const value = fields[j].trim();
      if (value === hot.value) raw[i * d + k] = 1;
      else if (!oneHot.has(`${hot.column}=${value}`)) {
        const known = (input.categorical.find((e) => e.column === hot.column) as CategoricalEncoding).values;
        throw new DataError(
          `${file}:${fieldLines[j]}:${hot.column}: unknown value ${quote(fields[j])}; ` +
            `the model knows ${known.map(quote).join(', ')}`,
        );
      }
    });
    if (givenLabels.length > 0) labels.push(labelColumns.map((c) => fields[at.get(c) as number].trim()));
    lines.push(fieldLines[0]);
  });
  return {
    numSamples: n,
    features: prepareFeatures(raw, input),
    labels: givenLabels.length > 0 ? labels : null,
    lines,
  };
}

/** Raw feature rows (n, inputSize) as the model takes them: standardized when it was trained so. */
export function prepareFeatures(raw: Float32Array, input: ModelInput): Float32Array {
  if (input.standardization === null) return raw;
  const out = new Float32Array(raw.length);
  applyStandardization(out, raw, input.standardization);
  return out;
}
