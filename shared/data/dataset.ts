// The in-memory dataset every part of flocktrain works on: one flat feature matrix
// and one flat label matrix, addressed by sample index. Loaders (mnist, synthetic,
// csv) produce it; the coordinator hashes it and serves it to workers, who then only
// ever receive sample indices into it.

export type TaskKind = 'classification' | 'regression';

/**
 * How a dataset's features are stored, hashed and sent: 'f32' as `features` holds them,
 * 'u8' as one byte per value indexing a table of 256 float32 values (MNIST's pixels).
 */
export type FeatureDtype = 'f32' | 'u8';

/** Features with at most 256 distinct values, held exactly: value i is `levels[codes[i]]`. */
export interface ByteFeatures {
  /** (numSamples, numFeatures), row-major: each value's index into `levels`. */
  readonly codes: Uint8Array;
  /** (256): the float32 value each code stands for, ascending over the codes in use (unused codes: 0). */
  readonly levels: Float32Array;
}

export interface Dataset {
  /** Human name, e.g. "mnist" or the CSV file's base name. */
  readonly name: string;
  readonly kind: TaskKind;
  readonly numSamples: number;
  readonly numFeatures: number;
  /** (numSamples, numFeatures), row-major: what compute reads, whatever the stored dtype. */
  readonly features: Float32Array;
  /**
   * Present when the features are stored as bytes ('u8'): the form that is hashed and
   * sent, of which `features` is the widening. Absent: stored as `features` ('f32').
   */
  readonly bytes?: ByteFeatures;
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
