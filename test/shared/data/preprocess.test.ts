// The model file's input description is validated once where it enters: a hostile or
// mismatched description is one ModelFileError line; a good one round-trips. Raw CSV
// rows are picked by name and one-hot encoded as in training.

import { describe, expect, it } from 'vitest';
import { readCsvTable } from '../../../shared/data/csv.js';
import { rowsFromCsv, validateModelInput, type ModelInput } from '../../../shared/data/preprocess.js';
import { ModelFileError } from '../../../shared/errors.js';

const GOOD: ModelInput = {
  task: 'classification',
  shape: [3],
  featureColumns: ['size', 'colour=blue', 'colour=red'],
  labelColumns: ['label'],
  classNames: ['no', 'yes'],
  standardization: { mean: [1, 0.5, 0.5], std: [2, 0.5, 0.5] },
  categorical: [{ column: 'colour', values: ['blue', 'red'] }],
  byteScale: null,
};

describe('model input description', () => {
  it('round-trips through JSON', () => {
    expect(validateModelInput(JSON.parse(JSON.stringify(GOOD)), 3)).toEqual(GOOD);
  });

  it.each([
    [{ ...GOOD, shape: [4] }, 'shape [4] holds 4 values, the model takes 3'],
    [{ ...GOOD, featureColumns: ['a'] }, 'featureColumns must be null or 3 names'],
    [{ ...GOOD, standardization: { mean: [0, 0, 0], std: [1, 0, 1] } }, 'standardization std must be positive'],
    [
      { ...GOOD, standardization: { mean: [0, null, 0], std: [1, 1, 1] } },
      'standardization must be null or {mean, std} of 3 finite numbers each',
    ],
    [
      { ...GOOD, categorical: [{ column: 'colour', values: ['green'] }] },
      'categorical colour: no feature colour=green',
    ],
    [{ ...GOOD, task: 'ranking' }, 'unknown task ranking'],
    [null, 'expected an object'],
  ])('refuses %j', (value, message) => {
    expect(() => validateModelInput(value, 3)).toThrow(new ModelFileError(`model input description: ${message}`));
  });

  it('takes raw rows by column name, one-hot encodes, standardizes, and keeps the label texts', () => {
    const table = readCsvTable('colour,label,size\nred,yes,3\nblue,no,1\n', 'in.csv');
    const rows = rowsFromCsv(table, GOOD, 'in.csv');
    // (size − 1)/2, then (hot − 0.5)/0.5 for blue and red.
    expect(Array.from(rows.features)).toEqual([1, -1, 1, 0, 1, -1]);
    expect(rows.labels).toEqual([['yes'], ['no']]);
    expect(() => rowsFromCsv(readCsvTable('colour,size\ngreen,1\n', 'in.csv'), GOOD, 'in.csv')).toThrow(
      'in.csv:2:colour: unknown value "green"; the model knows "blue", "red"',
    );
  });
});
