// A trained model as the library hands it out: loaded from a model file or returned by
// train(); predicts from rows in memory or from files, preprocessing raw rows as the
// model file says (the same code as `flocktrain predict` and `evaluate`).

import type { ModelInput } from '../../shared/data/preprocess.js';
import { prepareFeatures } from '../../shared/data/preprocess.js';
import type { Metrics } from '../../shared/metrics.js';
import { argmaxRows, softmaxRows } from '../../shared/model/predictor.js';
import { outputSize, type ModelSpec } from '../../shared/model/spec.js';
import type { KernelSetName } from '../../shared/kernels/kernel-set.js';
import { datasetRows, metricsOf, outputsOf, readRows, type InputSource, type ModelRows } from '../inference.js';
import { DataError } from '../../shared/errors.js';
import { loadModelFile, type LoadedModel } from '../model-file.js';
import { memoryDataset, type MemoryData } from './memory-data.js';

/** Rows of raw features: one array of numbers per sample, or one flat array of all samples. */
export type Rows = readonly (readonly number[])[] | Float32Array;

export class Model implements LoadedModel {
  readonly spec: ModelSpec;
  readonly params: Float32Array;
  readonly input: ModelInput;
  readonly kernels: KernelSetName;

  constructor(loaded: LoadedModel) {
    this.spec = loaded.spec;
    this.params = loaded.params;
    this.input = loaded.input;
    this.kernels = loaded.kernels;
  }

  /** Reads a model file written by `flocktrain train --out` or train({ out }). */
  static load(path: string): Model {
    return new Model(loadModelFile(path));
  }

  /** Class names in output order; empty for a regression model. */
  get classNames(): readonly string[] {
    return this.input.classNames;
  }

  /** The predicted class name of each row (classification), or its predicted value (regression). */
  predict(rows: Rows): (string | number)[] {
    const r = this.#rows(rows);
    const outputs = outputsOf(this, r);
    const K = outputSize(this.spec);
    if (this.input.task === 'regression') return Array.from({ length: r.numSamples }, (_, i) => outputs[i * K]);
    return Array.from(argmaxRows(outputs, r.numSamples, K), (k) => this.classNames[k]);
  }

  /** Each row's class probabilities, in the order of classNames (classification only). */
  predictProba(rows: Rows): number[][] {
    if (this.input.task !== 'classification') throw new DataError('predictProba: a regression model has no classes');
    const r = this.#rows(rows);
    const K = outputSize(this.spec);
    const p = softmaxRows(outputsOf(this, r), r.numSamples, K);
    return Array.from({ length: r.numSamples }, (_, i) => Array.from(p.subarray(i * K, (i + 1) * K)));
  }

  /** Loss and metrics on labelled data in memory (labels as train() takes them). */
  evaluate(data: MemoryData): Metrics {
    const ds = memoryDataset({ ...data, task: this.input.task, featureNames: this.input.featureColumns ?? undefined });
    // Class names of the data map onto the model's, not onto their own sorted order.
    if (this.input.task === 'classification' && data.labels.length > 0 && typeof data.labels[0] === 'string') {
      const index = new Map(this.classNames.map((c, k) => [c, k]));
      const labels = new Float32Array(ds.numSamples);
      (data.labels as readonly string[]).forEach((name, i) => {
        const k = index.get(name);
        if (k === undefined) throw new DataError(`evaluate: unknown class ${JSON.stringify(name)} at sample ${i}`);
        labels[i] = k;
      });
      return metricsOf(this, { numSamples: ds.numSamples, features: prepareFeatures(ds.features, this.input), labels });
    }
    return metricsOf(this, datasetRows(this.input, ds));
  }

  /** Metrics on a labelled file: { kind: 'csv', path } or IDX/NPY images with their labels. */
  evaluateFile(source: InputSource): Metrics {
    return metricsOf(this, readRows(this, source));
  }

  /** Predictions for the rows of a CSV, IDX or NPY file, in file order. */
  predictFile(source: InputSource): (string | number)[] {
    const r = readRows(this, source);
    const outputs = outputsOf(this, r);
    const K = outputSize(this.spec);
    if (this.input.task === 'regression') return Array.from({ length: r.numSamples }, (_, i) => outputs[i * K]);
    return Array.from(argmaxRows(outputs, r.numSamples, K), (k) => this.classNames[k]);
  }

  #rows(rows: Rows): ModelRows {
    const d = this.spec.inputSize;
    const flat = rows instanceof Float32Array ? rows : Float32Array.from(rows.flat());
    if (!(rows instanceof Float32Array) && rows.some((row) => row.length !== d))
      throw new DataError(`predict: every row needs ${d} values`);
    if (flat.length % d !== 0) throw new DataError(`predict: ${flat.length} values are not rows of ${d}`);
    return { numSamples: flat.length / d, features: prepareFeatures(flat, this.input), labels: null };
  }
}
