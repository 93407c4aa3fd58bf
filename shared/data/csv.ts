// CSV files as Datasets: an RFC 4180 record reader (quoted fields, doubled quotes,
// commas and line breaks inside quotes, CRLF) and the mapping of its columns to
// features and a label. Platform-neutral: it parses text, and reading the file is
// coordinator/data/csv-file.ts's. Every problem in the file is a DataError naming
// file:line[:column], what was expected and what was found.

import { DataError } from '../errors.js';
import type { Dataset, TaskKind } from './dataset.js';

export interface CsvOptions {
  /** The name errors cite (`<fileName>:<line>: ...`); its base name without extension names the dataset. */
  readonly fileName: string;
  /** Header name of the label column; every other column is a numeric feature. */
  readonly labelColumn: string;
  readonly task: TaskKind;
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
  const { fileName: file, labelColumn, task } = options;
  const { header, rows } = readCsvTable(text, file);
  const labelIndex = header.indexOf(labelColumn);
  if (labelIndex < 0) {
    throw new DataError(
      `${file}: no label column ${quote(labelColumn)}; the columns are ${header.map(quote).join(', ')}`,
    );
  }
  if (header.length < 2)
    throw new DataError(`${file}: no feature columns besides the label column ${quote(labelColumn)}`);
  if (rows.length === 0) throw new DataError(`${file}: no data rows after the header`);

  const numSamples = rows.length;
  const numFeatures = header.length - 1;
  const features = new Float32Array(numSamples * numFeatures); // (numSamples, numFeatures)
  const labelTexts: string[] = [];
  for (let i = 0; i < numSamples; i++) {
    const { fields, lines } = rows[i];
    if (fields.length !== header.length) {
      throw new DataError(
        `${file}:${lines[0]}: expected ${header.length} fields as in the header, got ${fields.length}`,
      );
    }
    let k = i * numFeatures;
    for (let j = 0; j < fields.length; j++) {
      if (j === labelIndex) continue;
      features[k++] = parseNumber(fields[j], `${file}:${lines[j]}:${header[j]}`);
    }
    labelTexts.push(fields[labelIndex]);
  }

  const labelAt = (i: number): string => `${file}:${rows[i].lines[labelIndex]}:${labelColumn}`;
  const name = baseName(file);
  const featureNames = header.filter((_, j) => j !== labelIndex);
  if (task === 'regression') {
    const labels = new Float32Array(numSamples); // (numSamples, 1)
    for (let i = 0; i < numSamples; i++) labels[i] = parseNumber(labelTexts[i], labelAt(i));
    return {
      name,
      kind: 'regression',
      numSamples,
      numFeatures,
      features,
      labelWidth: 1,
      labels,
      numClasses: 0,
      classNames: [],
      featureNames,
      labelColumn,
    };
  }
  const { labels, classNames } = classLabels(labelTexts, labelAt);
  return {
    name,
    kind: 'classification',
    numSamples,
    numFeatures,
    features,
    labelWidth: 1,
    labels,
    numClasses: classNames.length,
    classNames,
    featureNames,
    labelColumn,
  };
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
