// A labelled image set from two files of the same format, IDX (gzip or not: MNIST,
// Fashion-MNIST) or NPY: images (n, height, width[, channels]) and labels (n), into a
// Dataset. Byte pixels are scaled to [0, 1] as the embedded MNIST is; other values are
// used as they are. NPY labels that are not all integers are regression targets.

import type { Dataset } from '../../shared/data/dataset.js';
import type { NumericArray } from '../../shared/data/arrays.js';
import { DataError } from '../../shared/errors.js';
import { readImageFile } from './image-file.js';

/** Labels above this are refused: they would make a huge, mostly empty output layer. */
const MAX_CLASSES = 65_536;

export interface ImageDataset {
  readonly dataset: Dataset;
  /** The shape of one sample, and the factor applied to stored bytes (1 when values are not bytes). */
  readonly image: { readonly shape: readonly number[]; readonly byteScale: number };
}

/** `regression`: the labels are targets (--loss mse), else class indices. */
export function loadImageDataset(imagesPath: string, labelsPath: string, regression: boolean): ImageDataset {
  const images = readImageFile(imagesPath);
  const labels = readImageFile(labelsPath);
  if (images.shape.length < 2)
    throw new DataError(
      `${imagesPath}: expected samples of at least one dimension, got shape ${JSON.stringify(images.shape)}`,
    );
  const n = images.shape[0];
  const d = images.values.length / Math.max(n, 1);
  if (labels.shape[0] !== n)
    throw new DataError(`${labelsPath}: ${labels.shape[0]} labels for the ${n} samples of ${imagesPath}`);
  const labelWidth = labels.values.length / Math.max(n, 1);
  const scale = images.bytes ? 1 / 255 : 1;
  const features = new Float32Array(images.values.length); // (n, d)
  for (let i = 0; i < features.length; i++) {
    features[i] = images.values[i] * scale;
    if (!Number.isFinite(features[i]))
      throw new DataError(`${imagesPath}: sample ${Math.floor(i / d)} value ${i % d} is ${images.values[i]}`);
  }
  const name = imagesPath
    .replace(/^.*[\\/]/, '')
    .replace(/(\.gz)?$/, '')
    .replace(/\.[^.]*$/, '');
  const base = { name, numSamples: n, numFeatures: d, features };
  const image = { shape: images.shape.slice(1), byteScale: scale };
  if (regression) return { dataset: { ...base, ...targets(labels, labelsPath, labelWidth) }, image };
  if (labelWidth !== 1)
    throw new DataError(
      `${labelsPath}: class labels must be one per sample, got shape ${JSON.stringify(labels.shape)}`,
    );
  const classes = new Float32Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) {
    const v = labels.values[i];
    if (!(Number.isInteger(v) && v >= 0 && v < MAX_CLASSES))
      throw new DataError(`${labelsPath}: label ${i} is ${v}, expected a class index in [0, ${MAX_CLASSES})`);
    classes[i] = v;
    max = Math.max(max, v);
  }
  const dataset: Dataset = {
    ...base,
    kind: 'classification',
    labelWidth: 1,
    labels: classes,
    numClasses: max + 1,
    classNames: Array.from({ length: max + 1 }, (_, c) => String(c)),
  };
  return { dataset, image };
}

function targets(
  labels: NumericArray,
  path: string,
  width: number,
): Omit<Dataset, 'name' | 'numSamples' | 'numFeatures' | 'features'> {
  const values = Float32Array.from(labels.values);
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new DataError(`${path}: target ${bad} is ${labels.values[bad]}`);
  return { kind: 'regression', labelWidth: width, labels: values, numClasses: 0, classNames: [] };
}
