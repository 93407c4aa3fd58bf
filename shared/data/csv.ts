// CSV files as Datasets: an RFC 4180 record reader (quoted fields, doubled quotes,
// commas and line breaks inside quotes, CRLF) and the mapping of its columns to
// features and a label. Platform-neutral: it parses text, and reading the file is
// coordinator/data/csv-file.ts's. Every problem in the file is a DataError naming
// file:line[:column], what was expected and what was found.

import { DataError } from '../errors.js';
import type { CategoricalEncoding, Dataset, TaskKind } from './dataset.js';

export interface CsvOptions {
  /** The name errors cite (`<fileName>:<line>: ...`); its base name without extension names the dataset. */
  readonly fileName: string;
  /** Header name of the label column; every other column is a feature. */
  readonly labelColumn: string;
  readonly task: TaskKind;
  /** Regression only: several target columns, in output order, instead of labelColumn. */
  readonly targetColumns?: readonly string[];
  /** Feature columns of names (not numbers), each one-hot encoded over the values it holds, sorted. */
  readonly categorical?: readonly string[];
  /**
   * A training file's encodings and class names, for a validation file read with them:
   * its categories and classes must be among these.
   */
  readonly like?: { readonly categorical: readonly CategoricalEncoding[]; readonly classNames: readonly string[] };
}

/** Integer class labels above this are refused: they would make a huge, mostly empty output layer. */
const MAX_CLASSES = 65_536;

/** A decimal number as people write them: 12, -3.5, .5, 1e-3. No hex, Infinity or NaN. */
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const NON_NEGATIVE_INTEGER = /^\d+$/;

export interface CsvRecord {
  /** The field values, quotes removed. */
  readonly fields: string[];
  /** (fields.length) 1-based line in the file where each field starts. */
  readonly lines: number[];
}

/** A CSV file's header (names trimmed, unique) and its data records. */
export interface CsvTable {
  readonly header: readonly string[];
  /** The 1-based line of the header. */
  readonly headerLine: number;
  readonly rows: readonly CsvRecord[];
}

/** Reads CSV text into its header and records; a DataError for an empty file or a repeated column name. */
export function readCsvTable(text: string, file: string): CsvTable {
  const records = readRecords(text.startsWith('\uFEFF') ? text.slice(1) : text, file);
  if (records.length === 0) throw new DataError(`${file}: empty file, expected a header row and data rows`);
  const header = records[0].fields.map((name) => name.trim());
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) throw new DataError(`${file}:${records[0].lines[0]}: duplicate column name ${quote(name)}`);
    seen.add(name);
  }
  return { header, headerLine: records[0].lines[0], rows: records.slice(1) };
}

/** Parses CSV text with a header row into a Dataset (see CsvOptions for the column roles). */
export function parseCsv(text: string, options: CsvOptions): Dataset {
  const { fileName: file, task } = options;
  const { header, rows } = readCsvTable(text, file);
  const labelColumns =
    task === 'regression' && options.targetColumns?.length ? options.targetColumns : [options.labelColumn];
  for (const column of labelColumns)
    if (!header.includes(column))
      throw new DataError(
        `${file}: no ${labelColumns.length > 1 ? 'target' : 'label'} column ${quote(column)}; ` +
          `the columns are ${header.map(quote).join(', ')}`,
      );
  for (const column of options.categorical ?? [])
    if (!header.includes(column) || labelColumns.includes(column))
      throw new DataError(
        `${file}: no feature column ${quote(column)} to one-hot encode; ` +
          `the columns are ${header.map(quote).join(', ')}`,
      );
  const inputs = header.map((name, j) => ({ name, j })).filter(({ name }) => !labelColumns.includes(name));
  if (inputs.length === 0)
    throw new DataError(`${file}: no feature columns besides the label column ${quote(labelColumns[0])}`);
  if (rows.length === 0) throw new DataError(`${file}: no data rows after the header`);
  for (const { fields, lines } of rows)
    if (fields.length !== header.length)
      throw new DataError(
        `${file}:${lines[0]}: expected ${header.length} fields as in the header, got ${fields.length}`,
      );

  const encodings = (options.categorical ?? []).map((column): CategoricalEncoding => {
    const given = options.like?.categorical.find((e) => e.column === column);
    if (given !== undefined) return given;
    const j = header.indexOf(column);
    return { column, values: [...new Set(rows.map((r) => r.fields[j].trim()))].sort() };
  });
  // Each input column becomes one feature, or one per category value.
  const featureNames: string[] = [];
  const fill: ((fields: readonly string[], lines: readonly number[], out: Float32Array, k: number) => number)[] = [];
  for (const { name, j } of inputs) {
    const encoding = encodings.find((e) => e.column === name);
    if (encoding === undefined) {
      featureNames.push(name);
      fill.push((fields, lines, out, k) => {
        out[k] = parseNumber(fields[j], `${file}:${lines[j]}:${name}`);
        return k + 1;
      });
      continue;
    }
    const index = new Map(encoding.values.map((v, c) => [v, c]));
    featureNames.push(...encoding.values.map((v) => `${name}=${v}`));
    fill.push((fields, lines, out, k) => {
      const c = index.get(fields[j].trim());
      if (c === undefined)
        throw new DataError(
          `${file}:${lines[j]}:${name}: unknown value ${quote(fields[j])}; ` +
            `the training file has ${encoding.values.map(quote).join(', ')}`,
        );
      out[k + c] = 1;
      return k + encoding.values.length;
    });
  }

  const numSamples = rows.length;
  const numFeatures = featureNames.length;
  const features = new Float32Array(numSamples * numFeatures); // (numSamples, numFeatures)
  rows.forEach(({ fields, lines }, i) => {
    let k = i * numFeatures;
    for (const f of fill) k = f(fields, lines, features, k);
  });

  const labelIndex = header.indexOf(labelColumns[0]);
  const labelAt = (i: number): string => `${file}:${rows[i].lines[labelIndex]}:${labelColumns[0]}`;
  const common = {
    name: baseName(file),
    numSamples,
    numFeatures,
    features,
    featureNames,
    labelColumns,
    ...(encodings.length > 0 ? { categorical: encodings } : {}),
  };
  if (task === 'regression') {
    const T = labelColumns.length;
    const labels = new Float32Array(numSamples * T); // (numSamples, T)
    const at = labelColumns.map((c) => header.indexOf(c));
    rows.forEach(({ fields, lines }, i) =>
      at.forEach((j, t) => {
        labels[i * T + t] = parseNumber(fields[j], `${file}:${lines[j]}:${header[j]}`);
      }),
    );
    return { ...common, kind: 'regression', labelWidth: T, labels, numClasses: 0, classNames: [] };
  }
  const texts = rows.map((r) => r.fields[labelIndex]);
  const { labels, classNames } =
    options.like === undefined
      ? classLabels(texts, labelAt)
      : knownClassLabels(texts, options.like.classNames, labelAt);
  return { ...common, kind: 'classification', labelWidth: 1, labels, numClasses: classNames.length, classNames };
}

/** Class indices of label texts among a training file's class names. */
function knownClassLabels(
  texts: readonly string[],
  classNames: readonly string[],
  where: (i: number) => string,
): { labels: Float32Array; classNames: readonly string[] } {
  const index = new Map(classNames.map((c, k) => [c, k]));
  const labels = new Float32Array(texts.length); // (numSamples, 1)
  texts.forEach((text, i) => {
    const k = index.get(text.trim());
    if (k === undefined)
      throw new DataError(
        `${where(i)}: class ${quote(text)} is not in the training file (${classNames.map(quote).join(', ')})`,
      );
    labels[i] = k;
  });
  return { labels, classNames };
}

/**
 * Class indices for label texts. All non-negative integers: the integer is the index
 * (classes 0..max, named "0".."max"). Otherwise the distinct names sorted by UTF-16
 * code unit give the indices.
 */
function classLabels(
  texts: readonly string[],
  where: (i: number) => string,
): { labels: Float32Array; classNames: string[] } {
  const trimmed = texts.map((t) => t.trim());
  const labels = new Float32Array(texts.length); // (numSamples, 1)
  const empty = trimmed.indexOf('');
  if (empty >= 0) throw new DataError(`${where(empty)}: expected a class label, got ${quote(texts[empty])}`);

  if (trimmed.every((t) => NON_NEGATIVE_INTEGER.test(t))) {
    let max = 0;
    for (let i = 0; i < trimmed.length; i++) {
      const value = Number(trimmed[i]);
      if (value >= MAX_CLASSES) {
        throw new DataError(`${where(i)}: expected a class index below ${MAX_CLASSES}, got ${quote(texts[i])}`);
      }
      labels[i] = value;
      if (value > max) max = value;
    }
    return { labels, classNames: Array.from({ length: max + 1 }, (_, c) => String(c)) };
  }

  const classNames = [...new Set(trimmed)].sort(); // default sort: by UTF-16 code unit
  const index = new Map(classNames.map((c, k) => [c, k]));
  for (let i = 0; i < trimmed.length; i++) labels[i] = index.get(trimmed[i]) as number;
  return { labels, classNames };
}

export function parseNumber(text: string, where: string): number {
  const t = text.trim();
  const value = NUMBER.test(t) ? Number(t) : NaN;
  // Number() is correctly rounded, so the same text gives the same bits everywhere.
  if (!Number.isFinite(value)) throw new DataError(`${where}: expected a number, got ${quote(text)}`);
  return value;
}

/**
 * Splits text into records (RFC 4180). A record ends at \n, \r\n or the end of the text;
 * a quoted field may contain commas, line breaks and "" for one quote. A quote inside an
 * unquoted field is kept as a character. Blank (empty or whitespace-only) lines are dropped.
 */
function readRecords(text: string, file: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  const end = text.length;
  let i = 0;
  let line = 1;
  while (i < end) {
    const fields: string[] = [];
    const lines: number[] = [];
    let anyQuoted = false;
    for (;;) {
      lines.push(line);
      if (text[i] === '"') {
        anyQuoted = true;
        let value = '';
        let j = i + 1;
        for (;;) {
          const q = text.indexOf('"', j);
          if (q < 0) throw new DataError(`${file}:${lines[lines.length - 1]}: unterminated quoted field`);
          value += text.slice(j, q);
          if (text[q + 1] !== '"') {
            j = q + 1;
            break;
          }
          value += '"';
          j = q + 2;
        }
        for (let k = i; k < j; k++) if (text[k] === '\n') line++;
        fields.push(value);
        i = j;
      } else {
        let j = i;
        while (j < end && text[j] !== ',' && text[j] !== '\n' && !(text[j] === '\r' && text[j + 1] === '\n')) j++;
        fields.push(text.slice(i, j));
        i = j;
      }
      // i is at the delimiter after the field.
      if (i >= end) break;
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '\n' || (text[i] === '\r' && text[i + 1] === '\n')) {
        i += text[i] === '\r' ? 2 : 1;
        line++;
        break;
      }
      throw new DataError(
        `${file}:${line}: expected a comma or a line end after a closing quote, got ${quote(text[i])}`,
      );
    }
    const blank = fields.length === 1 && !anyQuoted && fields[0].trim() === '';
    if (!blank) records.push({ fields, lines });
  }
  return records;
}

/** "data/iris.csv" → "iris" (either slash; only the last extension is removed). */
function baseName(file: string): string {
  const base = file.slice(Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\')) + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** A value quoted for a one-line message (JSON escapes quotes and line breaks), shortened past 60 characters. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}
