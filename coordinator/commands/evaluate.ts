// `flocktrain evaluate`: a model file's metrics on labelled rows.

import { DEFAULTS } from '../../shared/defaults.js';
import { ConfigError } from '../../shared/errors.js';
import { boolean, choice, defineCommand, number } from '../../shared/node/flags.js';
import type { InputSource } from '../inference.js';
import { inputSource, LABEL_FILES_GROUP, MODEL_INPUT_GROUP } from './inputs.js';

export const evaluateCommand = defineCommand({
  name: 'evaluate',
  summary: "print a model's loss and metrics on labelled rows (a CSV file, IDX/NPY files or a built-in dataset)",
  groups: {
    input: MODEL_INPUT_GROUP,
    labels: LABEL_FILES_GROUP,
    dataset: {
      title: 'Built-in data',
      flags: {
        dataset: choice(['none', 'mnist', 'spirals', 'blobs', 'regression'], {
          default: 'none',
          describe: 'evaluate on a whole built-in dataset instead of a file',
        }),
        samples: number({
          default: DEFAULTS.data.samples,
          integer: true,
          min: 1,
          describe: 'samples to generate for a synthetic dataset',
        }),
        seed: number({
          default: DEFAULTS.training.seed,
          integer: true,
          min: 0,
          describe: 'seed of the synthetic dataset',
        }),
      },
    },
    output: {
      title: 'Output',
      flags: {
        json: boolean({ default: false, describe: 'print the metrics as one JSON object' }),
      },
    },
  },
  run: async (v) => {
    const { dataset, samples, seed } = v.dataset;
    const file = inputSource(v.input, v.labels, dataset === 'none' ? [] : ['--dataset']);
    const source: InputSource | null =
      file ?? (dataset === 'none' ? null : { kind: 'dataset', name: dataset, samples, seed });
    if (source === null) throw new ConfigError('give labelled rows: --csv, --idx-images, --npy-x or --dataset');
    if (source.kind === 'images' && source.labels === null)
      throw new ConfigError(`evaluate needs labels: add ${v.input.idxImages !== null ? '--idx-labels' : '--npy-y'}`);
    const { loadModelFile } = await import('../model-file.js');
    const { metricsOf, metricsText, readRows } = await import('../inference.js');
    const model = loadModelFile(v.input.model);
    const metrics = metricsOf(model, readRows(model, source));
    process.stdout.write(v.output.json ? `${JSON.stringify(metrics)}\n` : metricsText(metrics));
    return 0;
  },
});
