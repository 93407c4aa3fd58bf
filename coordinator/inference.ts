// Using a trained model: its inputs read from a CSV file, an IDX or NPY file (image
// models) or a built-in dataset and preprocessed as in training; its predictions as a
// CSV table; its metrics against the labels. `predict`, `evaluate` and the library's
// Model share these, so the three give the same numbers.

import { readFileSync } from 'node:fs';
import { readCsvTable, parseNumber, quote } from '../shared/data/csv.js';
import type { Dataset } from '../shared/data/dataset.js';
import { inputSize, prepareFeatures, rowsFromCsv, type ModelInput } from '../shared/data/preprocess.js';
import { syntheticDatasets } from '../shared/data/synthetic.js';
import { DataError } from '../shared/errors.js';
import { classificationMetrics, regressionMetrics, type Metrics } from '../shared/metrics.js';
import { argmaxRows, forwardRows, softmaxRows } from '../shared/model/predictor.js';
import { outputSize } from '../shared/model/spec.js';
import { loadMnist } from './data/mnist.js';
import { readImageFile } from './data/image-file.js';
import type { LoadedModel } from './model-file.js';

/** Where the rows to predict or evaluate come from. */
export type InputSource =
  | { readonly kind: 'csv'; readonly path: string }
  /** IDX (gzip or not) or NPY images, for image models; labels from a second file of the same format. */
  | { readonly kind: 'images'; readonly path: string; readonly labels: string | null }
  | {
      readonly kind: 'dataset';
      readonly name: 'mnist' | 'spirals' | 'blobs' | 'regression';
      readonly samples: number;
      readonly seed: number;
    };

/** Rows as the model takes them, with their labels when the input had them. */
export interface ModelRows {
  readonly numSamples: number;
  /** (numSamples, inputSize) preprocessed. */
  readonly features: Float32Array;
  /** (numSamples) class indices or target values; null without labels. */
  readonly labels: Float32Array | null;
}

export function readRows(model: LoadedModel, source: InputSource): ModelRows {
  switch (source.kind) {
    case 'csv':
      return csvRows(model.input, source.path);
    case 'images':
      return imageRows(model, source.path, source.labels);
    case 'dataset': {
      const ds = source.name === 'mnist' ? loadMnist() : syntheticDatasets[source.name](source.samples, source.seed);
      return datasetRows(model.input, ds);
    }
  }
}

/** A dataset's rows (raw features, before standardization) for this model. */
export function datasetRows(input: ModelInput, ds: Dataset): ModelRows {
  const size = inputSize(input);
  if (ds.numFeatures !== size)
    throw new DataError(`${ds.name} has ${ds.numFeatures} features per sample; the model takes ${size}`);
  if (ds.kind !== input.task) throw new DataError(`${ds.name} is a ${ds.kind} dataset; the model does ${input.task}`);
  if (ds.kind === 'classification' && ds.numClasses > input.classNames.length)
    throw new DataError(`${ds.name} has ${ds.numClasses} classes; the model knows ${input.classNames.length}`);
  return { numSamples: ds.numSamples, features: prepareFeatures(ds.features, input), labels: ds.labels };
}

function csvRows(input: ModelInput, path: string): ModelRows {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DataError(`${path}: cannot read the CSV file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const table = readCsvTable(text, path);
  const rows = rowsFromCsv(table, input, path);
  if (rows.labels === null) return { numSamples: rows.numSamples, features: rows.features, labels: null };
  const T = input.labelColumns.length;
  const labels = new Float32Array(rows.numSamples * T); // (numSamples, T)
  const index = new Map(input.classNames.map((name, k) => [name, k]));
  rows.labels.forEach((texts, i) =>
    texts.forEach((text, t) => {
      const where = `${path}:${rows.lines[i]}:${input.labelColumns[t]}`;
      if (input.task === 'regression') {
        labels[i * T + t] = parseNumber(text, where);
        return;
      }
      const k = index.get(text);
      if (k === undefined)
        throw new DataError(
          `${where}: unknown class ${quote(text)}; the model knows ${input.classNames.map(quote).join(', ')}`,
        );
      labels[i] = k;
    }),
  );
  return { numSamples: rows.numSamples, features: rows.features, labels };
}

function imageRows(model: LoadedModel, path: string, labelsPath: string | null): ModelRows {
  const { input } = model;
  if (input.byteScale === null)
    throw new DataError(`${path}: this model was trained on tables, not images; give it --csv`);
  const images = readImageFile(path);
  const size = inputSize(input);
  const per = images.shape.slice(1).reduce((a, b) => a * b, 1);
  if (per !== size)
    throw new DataError(
      `${path}: images of shape ${JSON.stringify(images.shape.slice(1))} hold ${per} values; ` +
        `the model takes ${JSON.stringify(input.shape)}`,
    );
  const n = images.shape[0];
  const raw = new Float32Array(n * size);
  const scale = images.bytes ? input.byteScale : 1;
  for (let i = 0; i < raw.length; i++) raw[i] = images.values[i] * scale;
  let labels: Float32Array | null = null;
  if (labelsPath !== null) {
    const file = readImageFile(labelsPath);
    const width = input.task === 'classification' ? 1 : outputSize(model.spec);
    if (file.shape[0] !== n || file.values.length !== n * width)
      throw new DataError(
        `${labelsPath}: expected ${width === 1 ? `${n} labels` : `${n}×${width} targets`} (one per sample), ` +
          `got shape ${JSON.stringify(file.shape)}`,
      );
    labels = Float32Array.from(file.values);
    for (let i = 0; i < n && input.task === 'classification'; i++) {
      const v = file.values[i];
      if (!(Number.isInteger(v) && v >= 0 && v < input.classNames.length))
        throw new DataError(
          `${labelsPath}: label ${i} is ${v}; the model knows classes 0..${input.classNames.length - 1}`,
        );
    }
  }
  return { numSamples: n, features: prepareFeatures(raw, input), labels };
}

/** The model's outputs (n, outputSize) on rows. */
export function outputsOf(model: LoadedModel, rows: ModelRows): Float32Array {
  return forwardRows(model.spec, model.params, rows.features, rows.numSamples, model.kernels);
}

/** A float32 value in the fewest digits that read back as the same float32 (9 significant digits suffice). */
function f32Text(v: number): string {
  return String(Number(v.toPrecision(9)));
}

function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * The predictions as CSV text, one row per input row in order: `prediction` (the class
 * name, or the value) and for classification one `p_<class>` probability per class.
 */
export function predictionCsv(model: LoadedModel, outputs: Float32Array, n: number): string {
  const K = outputSize(model.spec);
  const lines: string[] = [];
  if (model.input.task === 'classification') {
    const names = model.input.classNames;
    const p = softmaxRows(outputs, n, K);
    const best = argmaxRows(outputs, n, K);
    lines.push(['prediction', ...names.map((c) => `p_${c}`)].map(csvField).join(','));
    for (let i = 0; i < n; i++) {
      const probs = Array.from(p.subarray(i * K, (i + 1) * K), (v) => String(Number(v.toPrecision(6))));
      lines.push([csvField(names[best[i]]), ...probs].join(','));
    }
  } else {
    lines.push(K === 1 ? 'prediction' : Array.from({ length: K }, (_, k) => `prediction_${k}`).join(','));
    for (let i = 0; i < n; i++) lines.push(Array.from(outputs.subarray(i * K, (i + 1) * K), f32Text).join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** The metrics of the model on labelled rows. */
export function metricsOf(model: LoadedModel, rows: ModelRows): Metrics {
  if (rows.labels === null) throw new DataError('the input has no label column, so there is nothing to compare with');
  const outputs = outputsOf(model, rows);
  return model.input.task === 'classification'
    ? classificationMetrics(outputs, rows.labels, rows.numSamples, model.input.classNames)
    : regressionMetrics(outputs, rows.labels, rows.numSamples, outputSize(model.spec));
}

function fixed(v: number, digits = 4): string {
  return v.toFixed(digits);
}

/** Metrics as people read them: a summary, then (classification) the per-class table and the confusion matrix. */
export function metricsText(m: Metrics): string {
  if (m.task === 'regression')
    return (
      `${m.samples} samples  loss (mse) ${fixed(m.loss)}  ` +
      `MAE ${fixed(m.mae)}  RMSE ${fixed(m.rmse)}  R² ${fixed(m.r2)}\n`
    );
  const names = m.classes.map((c) => c.name);
  const w = Math.max(5, ...names.map((n) => n.length));
  const out = [`${m.samples} samples  loss ${fixed(m.loss)}  accuracy ${fixed(m.accuracy)}`, ''];
  out.push(`${'class'.padEnd(w)}  precision  recall      f1  support`);
  for (const c of m.classes)
    out.push(
      `${c.name.padEnd(w)}  ${fixed(c.precision).padStart(9)}  ${fixed(c.recall).padStart(6)}  ` +
        `${fixed(c.f1).padStart(6)}  ${String(c.support).padStart(7)}`,
    );
  const cw = Math.max(...names.map((n) => n.length), ...m.confusion.flat().map((v) => String(v).length));
  out.push('', `confusion (rows: true class, columns: predicted)`);
  out.push(`${''.padEnd(w)}  ${names.map((n) => n.padStart(cw)).join(' ')}`);
  m.confusion.forEach((row, t) =>
    out.push(`${names[t].padEnd(w)}  ${row.map((v) => String(v).padStart(cw)).join(' ')}`),
  );
  return `${out.join('\n')}\n`;
}
