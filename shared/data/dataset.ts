// The in-memory dataset every part of flocktrain works on: one flat feature matrix
// and one flat label matrix, addressed by sample index. Loaders (mnist, synthetic,
// csv) produce it; the coordinator hashes it and serves it to workers, who then only
// ever receive sample indices into it.

export type TaskKind = 'classification' | 'regression';

export interface Dataset {
  /** Human name, e.g. "mnist" or the CSV file's base name. */
  readonly name: string;
  readonly kind: TaskKind;
  readonly numSamples: number;
  readonly numFeatures: number;
  /** (numSamples, numFeatures), row-major. */
  readonly features: Float32Array;
  /** Values per label row: 1 for classification (the class index), the number of targets for regression. */
  readonly labelWidth: number;
  /** (numSamples, labelWidth), row-major. Classification labels are integers 0..numClasses-1. */
  readonly labels: Float32Array;
  /** Number of classes for classification, 0 for regression. */
  readonly numClasses: number;
  /** Class names in index order, when the source had names (CSV); otherwise empty. */
  readonly classNames: readonly string[];
  /** (numFeatures) names of the features in order, when the source named them (CSV; one-hot ones as column=value). */
  readonly featureNames?: readonly string[];
  /** (labelWidth) the columns the labels came from, when the source named them (CSV). */
  readonly labelColumns?: readonly string[];
  /** The CSV columns one-hot encoded into features, in feature order. */
  readonly categorical?: readonly CategoricalEncoding[];
}

/** A categorical column one-hot encoded into `values.length` features named column=value, in this order. */
export interface CategoricalEncoding {
  readonly column: string;
  readonly values: readonly string[];
}

/** Train/validation partition of a dataset's sample indices. */
export interface Split {
  readonly train: Uint32Array;
  readonly val: Uint32Array;
}
