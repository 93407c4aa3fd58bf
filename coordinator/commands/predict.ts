// `flocktrain predict`: a model file's predictions for raw rows, as CSV.

import { writeFileSync } from 'node:fs';
import { ConfigError, DataError } from '../../shared/errors.js';
import { defineCommand, text } from '../../shared/node/flags.js';
import { inputSource, MODEL_INPUT_GROUP } from './inputs.js';

export const predictCommand = defineCommand({
  name: 'predict',
  summary: "write a model's predictions for the rows of a CSV, IDX or NPY file as CSV",
  groups: {
    input: MODEL_INPUT_GROUP,
    output: {
      title: 'Output',
      flags: {
        out: text({
          describe: 'CSV file to write (default: stdout): prediction, then p_<class> per class for classification',
        }),
      },
    },
  },
  run: async (v) => {
    const source = inputSource(v.input);
    if (source === null) throw new ConfigError('give the rows to predict: --csv, --idx-images or --npy-x');
    const { loadModelFile } = await import('../model-file.js');
    const { outputsOf, predictionCsv, readRows } = await import('../inference.js');
    const model = loadModelFile(v.input.model);
    const rows = readRows(model, source);
    const csv = predictionCsv(model, outputsOf(model, rows), rows.numSamples);
    if (v.output.out === null) process.stdout.write(csv);
    else {
      try {
        writeFileSync(v.output.out, csv);
      } catch (err) {
        throw new DataError(`cannot write ${v.output.out}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
    return 0;
  },
});
