// Samples handed over in memory by a library caller, as a Dataset: features as rows of
// numbers or one flat typed array, labels as class names, class indices or targets.
// Checked once here, each problem one DataError naming the sample.

import type { Dataset, TaskKind } from '../../shared/data/dataset.js';
import { DataError } from '../../shared/errors.js';

export interface MemoryData {
  /** One row of numbers per sample, or all rows in one flat array (then give numFeatures). */
  readonly features: readonly (readonly number[])[] | Float32Array | Float64Array;
  /** With flat features: values per sample. */
  readonly numFeatures?: number;
  /**
   * Class names (strings), class indices 0..K-1, or regression targets (numbers, with
   * task 'regression'). Names are ordered as CSV labels are: sorted by UTF-16 code unit.
   */
  readonly labels: readonly string[] | readonly number[] | Float32Array | Float64Array | Int32Array | Uint8Array;
  /** Default: classification. */
  readonly task?: TaskKind;
  /** Names of the feature columns (for predicting from CSV files later); default x0, x1, … */
  readonly featureNames?: readonly string[];
  /** The label's column name in CSV files the model is later evaluated on; default "label". */
  readonly labelName?: string;
  /** Names the run in logs and model files; default "memory". */
  readonly name?: string;
}

export function memoryDataset(data: MemoryData): Dataset {
  const rows = data.features;
  let features: Float32Array;
  let d: number;
  if (rows instanceof Float32Array || rows instanceof Float64Array) {
    d = data.numFeatures ?? 0;
    if (!(Number.isInteger(d) && d > 0 && rows.length % d === 0))
      throw new DataError(`flat features need numFeatures dividing their length ${rows.length}, got ${d}`);
    features = Float32Array.from(rows);
  } else {
    d = rows[0]?.length ?? 0;
    if (d === 0) throw new DataError('features: expected rows of at least one number');
    features = new Float32Array(rows.length * d);
    rows.forEach((row, i) => {
      if (row.length !== d) throw new DataError(`features: row ${i} has ${row.length} values, row 0 has ${d}`);
      features.set(row, i * d);
    });
  }
  const n = features.length / d;
  for (let i = 0; i < features.length; i++)
    if (!Number.isFinite(features[i]))
      throw new DataError(`features: sample ${Math.floor(i / d)} value ${i % d} is ${features[i]}`);
  if (data.labels.length !== n)
    throw new DataError(`labels: expected ${n} (one per sample), got ${data.labels.length}`);
  const featureNames = data.featureNames ?? Array.from({ length: d }, (_, j) => `x${j}`);
  if (featureNames.length !== d) throw new DataError(`featureNames: expected ${d} names, got ${featureNames.length}`);
  const base = {
    name: data.name ?? 'memory',
    numSamples: n,
    numFeatures: d,
    features,
    labelWidth: 1,
    featureNames,
    labelColumns: [data.labelName ?? 'label'],
  };
  const labels = new Float32Array(n);
  const texts = Array.from(data.labels as ArrayLike<string | number>);
  if (data.task === 'regression') {
    texts.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new DataError(`labels: sample ${i} is ${JSON.stringify(v)}, expected a finite number`);
      labels[i] = v;
    });
    return { ...base, kind: 'regression', labels, numClasses: 0, classNames: [] };
  }
  if (texts.every((v) => typeof v === 'string')) {
    const classNames = [...new Set(texts as string[])].sort();
    const index = new Map(classNames.map((c, k) => [c, k]));
    texts.forEach((v, i) => (labels[i] = index.get(v as string) as number));
    return { ...base, kind: 'classification', labels, numClasses: classNames.length, classNames };
  }
  let max = 0;
  texts.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= 65_536)
      throw new DataError(`labels: sample ${i} is ${JSON.stringify(v)}, expected a class name or index`);
    labels[i] = v;
    max = Math.max(max, v);
  });
  const classNames = Array.from({ length: max + 1 }, (_, c) => String(c));
  return { ...base, kind: 'classification', labels, numClasses: max + 1, classNames };
}
