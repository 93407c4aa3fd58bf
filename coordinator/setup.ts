// Turns a run configuration into the things training needs: the dataset (loaded,
// split, standardized), its hash, and the model spec sized to it.

import type { Dataset, Split } from '../shared/data/dataset.js';
import { loadCsvFile } from '../shared/data/csv.js';
import { datasetHash } from '../shared/data/hash.js';
import { loadMnist, mnistSplit } from '../shared/data/mnist.js';
import { splitIndices, standardize } from '../shared/data/split.js';
import { syntheticDatasets } from '../shared/data/synthetic.js';
import { ConfigError } from '../shared/errors.js';
import { dataInputShape, parseLayers } from '../shared/model/layers-flag.js';
import { mlpSpec, type LossKind, type ModelSpec } from '../shared/model/spec.js';
import type { RunConfig } from './config.js';

export interface PreparedRun {
  readonly config: RunConfig;
  readonly dataset: Dataset;
  readonly datasetHash: string;
  readonly split: Split;
  readonly spec: ModelSpec;
}

export function prepareRun(config: RunConfig): PreparedRun {
  const { dataset, split } = loadData(config);
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
      : parseLayers(config.layers, {
          inputShape,
          outputs,
          loss,
          seed: config.seed,
        });
  return { config, dataset, datasetHash: datasetHash(dataset), split, spec };
}

/** The built-in image data's sample shape; null for flat data. */
function defaultInputShape(config: RunConfig): readonly [number, number, number] | null {
  return config.data.kind === 'mnist' ? [1, 28, 28] : null;
}

function loadData(config: RunConfig): { dataset: Dataset; split: Split } {
  const source = config.data;
  switch (source.kind) {
    case 'mnist':
      return { dataset: loadMnist(), split: mnistSplit(config.seed) };
    case 'synthetic': {
      const dataset = syntheticDatasets[source.name](source.samples, config.seed);
      return { dataset, split: splitIndices(dataset.numSamples, config.valFraction, config.seed) };
    }
    case 'csv': {
      const task = config.loss === 'mse' ? 'regression' : 'classification';
      const raw = loadCsvFile(source.path, { fileName: source.path, labelColumn: source.labelColumn, task });
      const split = splitIndices(raw.numSamples, config.valFraction, config.seed);
      return { dataset: config.standardize ? standardize(raw, split.train) : raw, split };
    }
  }
}
