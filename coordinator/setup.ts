// Turns a run configuration into the things training needs: the dataset (loaded,
// split, standardized), its hash, the model spec sized to it, and the description of
// its input that model files carry (so predictions preprocess rows as training did).

import type { Dataset, Split } from '../shared/data/dataset.js';
import { loadCsvFile } from './data/csv-file.js';
import { loadImageDataset } from './data/image-dataset.js';
import { datasetHash } from '../shared/node/dataset-hash.js';
import { loadMnist, mnistSplit } from './data/mnist.js';
import { modelInputOf, type ModelInput } from '../shared/data/preprocess.js';
import { featureStats, splitIndices, standardize } from '../shared/data/split.js';
import { syntheticDatasets } from '../shared/data/synthetic.js';
import { ConfigError } from '../shared/errors.js';
import { dataInputShape, parseLayers } from '../shared/model/layers-flag.js';
import { mlpSpec, type LossKind, type ModelSpec } from '../shared/model/spec.js';
import { checkScheduleFits, type RunConfig } from './config.js';
import { stepsPerEpoch } from './plan.js';

export interface PreparedRun {
  readonly config: RunConfig;
  readonly dataset: Dataset;
  readonly datasetHash: string;
  readonly split: Split;
  readonly spec: ModelSpec;
  /** What the model expects of a raw input row (stored in model files). */
  readonly input: ModelInput;
}

/** How an image set's samples are shaped and scaled, for the model file. */
type ImageInfo = { readonly shape: readonly number[]; readonly byteScale: number } | null;

export function prepareRun(config: RunConfig): PreparedRun {
  const { dataset, split, image } = loadData(config);
  return prepareLoaded(config, dataset, split, image);
}

/**
 * A run on a dataset already in memory (raw features, before standardization); `split`
 * defaults to splitIndices with the config's validation fraction and seed. Features are
 * standardized when config.standardize is on, except for built-in image sets.
 */
export function prepareLoaded(config: RunConfig, raw: Dataset, split?: Split, image: ImageInfo = null): PreparedRun {
  if (raw.numSamples === 0) throw new ConfigError(`dataset ${raw.name} has no samples`);
  const parts = split ?? splitIndices(raw.numSamples, config.valFraction, config.seed);
  // Tables are standardized (CSV, memory, NPY of non-byte values); images and built-in sets are used as they are.
  const kind = config.data.kind;
  const table = kind === 'csv' || kind === 'memory' || (kind === 'npy' && image?.byteScale === 1);
  const stats = config.standardize && table ? featureStats(raw, parts.train) : null;
  const dataset = stats === null ? raw : standardize(raw, parts.train, stats);
  const input = modelInputOf(raw, stats, image);
  return { ...sized(config, dataset, parts), input };
}

function sized(config: RunConfig, dataset: Dataset, split: Split): Omit<PreparedRun, 'input'> {
  if (dataset.numSamples === 0) throw new ConfigError(`dataset ${dataset.name} has no samples`);
  if (split.train.length === 0)
    throw new ConfigError(`dataset ${dataset.name} leaves no training samples after the validation split`);
  const loss: LossKind = config.loss ?? (dataset.kind === 'classification' ? 'cross_entropy' : 'mse');
  if (loss === 'cross_entropy' && dataset.kind !== 'classification') {
    throw new ConfigError(
      `--loss cross_entropy needs class labels, but ${dataset.name} is a regression dataset (use --loss mse)`,
    );
  }
  if (loss === 'mse' && dataset.kind === 'classification') {
    throw new ConfigError(
      `--loss mse needs numeric targets, but ${dataset.name} is a classification dataset (use --loss cross_entropy)`,
    );
  }
  const outputs = dataset.kind === 'classification' ? dataset.numClasses : dataset.labelWidth;
  if (dataset.kind === 'classification' && outputs < 2)
    throw new ConfigError(`dataset ${dataset.name} has ${outputs} class; classification needs at least 2`);
  const inputShape = dataInputShape(config.inputShape ?? defaultInputShape(config), dataset.numFeatures);
  const spec =
    config.layers === null
      ? mlpSpec(dataset.numFeatures, config.hidden, outputs, config.activation, loss)
      : parseLayers(config.layers, { inputShape, outputs, loss, seed: config.seed });
  checkScheduleFits(config, config.epochs * stepsPerEpoch(split.train.length, config.batchSize));
  return { config, dataset, datasetHash: datasetHash(dataset), split, spec };
}

/** The built-in image data's sample shape; null for flat data. */
function defaultInputShape(config: RunConfig): readonly [number, number, number] | null {
  return config.data.kind === 'mnist' ? [1, 28, 28] : null;
}

/** The raw dataset of the config's source, its split, and its image shape when it is an image set. */
function loadData(config: RunConfig): { dataset: Dataset; split: Split; image: ImageInfo } {
  const source = config.data;
  switch (source.kind) {
    case 'mnist':
      return { dataset: loadMnist(), split: mnistSplit(config.seed), image: { shape: [28, 28], byteScale: 1 / 255 } };
    case 'synthetic': {
      const dataset = syntheticDatasets[source.name](source.samples, config.seed);
      return { dataset, split: splitIndices(dataset.numSamples, config.valFraction, config.seed), image: null };
    }
    case 'idx':
    case 'npy': {
      const { dataset, image } = loadImageDataset(source.images, source.labels, config.loss === 'mse');
      return { dataset, split: splitIndices(dataset.numSamples, config.valFraction, config.seed), image };
    }
    case 'csv': {
      const task = config.loss === 'mse' || (source.targetColumns?.length ?? 0) > 0 ? 'regression' : 'classification';
      const roles = {
        labelColumn: source.labelColumn,
        task,
        ...(source.targetColumns ? { targetColumns: source.targetColumns } : {}),
        ...(source.categorical ? { categorical: source.categorical } : {}),
      } as const;
      const train = loadCsvFile(source.path, { ...roles, fileName: source.path });
      if (source.valPath === undefined)
        return { dataset: train, split: splitIndices(train.numSamples, config.valFraction, config.seed), image: null };
      const val = loadCsvFile(source.valPath, {
        ...roles,
        fileName: source.valPath,
        like: { categorical: train.categorical ?? [], classNames: train.classNames },
      });
      return { ...withValidation(train, val), image: null };
    }
    case 'memory':
      throw new ConfigError('a run on data in memory is prepared with its dataset (prepareLoaded)');
  }
}

/**
 * The training rows, then the validation rows of a second file read with the same roles;
 * the split says which are which.
 */
function withValidation(train: Dataset, val: Dataset): { dataset: Dataset; split: Split } {
  const features = new Float32Array(train.features.length + val.features.length);
  features.set(train.features);
  features.set(val.features, train.features.length);
  const labels = new Float32Array(train.labels.length + val.labels.length);
  labels.set(train.labels);
  labels.set(val.labels, train.labels.length);
  const n = train.numSamples;
  const m = val.numSamples;
  return {
    dataset: { ...train, numSamples: n + m, features, labels },
    split: {
      train: Uint32Array.from({ length: n }, (_, i) => i),
      val: Uint32Array.from({ length: m }, (_, i) => n + i),
    },
  };
}
