// The input flags of the commands that use a trained model (predict, evaluate): the
// model file and exactly one source of rows.

import { ConfigError } from '../../shared/errors.js';
import { requiredText, text, type FlagGroup, type GroupValues } from '../../shared/node/flags.js';
import type { InputSource } from '../inference.js';

export const MODEL_INPUT_GROUP = {
  title: 'Input',
  flags: {
    model: requiredText({ describe: 'model file written by train --out' }),
    csv: text({ describe: 'CSV file with a header row: the feature columns in any order, the label column optional' }),
    idxImages: text({ describe: 'image model: an IDX file of images (gzip or not), e.g. t10k-images-idx3-ubyte.gz' }),
    npyX: text({ describe: 'image model: an NPY file of images (n, height, width)' }),
  },
} satisfies FlagGroup;

export const LABEL_FILES_GROUP = {
  title: 'Labels',
  flags: {
    idxLabels: text({ describe: 'the IDX file of labels for --idx-images' }),
    npyY: text({ describe: 'the NPY file of labels for --npy-x' }),
  },
} satisfies FlagGroup;

/** The one source the flags name (besides a built-in dataset, which the caller adds). */
export function inputSource(
  v: GroupValues<{ input: typeof MODEL_INPUT_GROUP }>['input'],
  labels: { idxLabels: string | null; npyY: string | null } = { idxLabels: null, npyY: null },
  others: readonly string[] = [],
): InputSource | null {
  const given = [
    v.csv !== null ? '--csv' : '',
    v.idxImages !== null ? '--idx-images' : '',
    v.npyX !== null ? '--npy-x' : '',
    ...others,
  ].filter((s) => s !== '');
  if (given.length > 1) throw new ConfigError(`give one input, got ${given.join(' and ')}`);
  if (labels.idxLabels !== null && v.idxImages === null) throw new ConfigError('--idx-labels needs --idx-images');
  if (labels.npyY !== null && v.npyX === null) throw new ConfigError('--npy-y needs --npy-x');
  if (v.csv !== null) return { kind: 'csv', path: v.csv };
  if (v.idxImages !== null) return { kind: 'images', path: v.idxImages, labels: labels.idxLabels };
  if (v.npyX !== null) return { kind: 'images', path: v.npyX, labels: labels.npyY };
  return null;
}
