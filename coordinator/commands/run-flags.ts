// The flag groups of every command that runs training (train, coordinator): data,
// model, training and output, declared once. Model and training flags are named as
// the RunConfig fields they set and spread into it, so a new one is one entry in its
// group plus its RunConfig field; their ranges are checked by resolveConfig.

import { parseInputShape } from '../../shared/model/layers-flag.js';
import { LOG_GROUP } from '../../shared/node/log-flags.js';
import {
  boolean,
  choice,
  flagError,
  mapped,
  number,
  text,
  type Flag,
  type FlagGroup,
  type GroupValues,
} from '../../shared/node/flags.js';
import { DEFAULTS } from '../../shared/defaults.js';
import { ConfigError } from '../../shared/errors.js';
import { kernelSetAvailable } from '../../shared/kernels/kernel-set.js';
import { ADAM_DEFAULTS } from '../../shared/optim/adam.js';
import { OPTIMIZER_NAMES } from '../../shared/optim/create.js';
import { LR_SCHEDULE_DEFAULTS, LR_SCHEDULES } from '../../shared/optim/schedule.js';
import { WIRE_DTYPES } from '../../shared/wire-dtype.js';
import { resolveConfig, type DataSource } from '../config.js';
import type { TrainOptions } from './options.js';

const { data, model, training, output } = DEFAULTS;

export const DATA_GROUP = {
  title: 'Data',
  flags: {
    dataset: choice(['mnist', 'spirals', 'blobs', 'regression'], {
      default: data.dataset,
      describe: 'built-in dataset (ignored with --csv, --idx-images or --npy-x)',
    }),
    samples: number({ default: data.samples, describe: 'samples to generate for a synthetic dataset' }),
    csv: text({ describe: 'train on a CSV file with a header row instead of a built-in dataset' }),
    idxImages: text({
      describe: 'train on images in an IDX file (gzip or not), e.g. train-images-idx3-ubyte.gz; with --idx-labels',
    }),
    idxLabels: text({ describe: 'the IDX file of labels for --idx-images, e.g. train-labels-idx1-ubyte.gz' }),
    npyX: text({ describe: 'train on the samples of an NPY file (n, ...); with --npy-y' }),
    npyY: text({ describe: 'the NPY file of labels (class indices, or targets with --loss mse) for --npy-x' }),
    labelColumn: text({
      default: data.labelColumn,
      describe: 'CSV column holding the label (class name/integer, or a number with --loss mse)',
    }),
    targetColumns: mapped(
      text({ describe: 'regression on several CSV columns, comma-separated (instead of --label-column)' }),
      (t, name) => columnList(t, name),
    ),
    categorical: mapped(
      text({
        describe:
          'CSV feature columns of names, comma-separated: each one-hot encoded (the encoding goes in the model)',
      }),
      (t, name) => columnList(t, name),
    ),
    valCsv: text({ describe: 'validation rows from this CSV file (same columns) instead of --val-fraction of --csv' }),
    standardize: boolean({
      default: data.standardize,
      describe: 'standardize CSV features with training-set mean and std (--no-standardize to turn off)',
    }),
    valFraction: number({
      default: data.valFraction,
      describe: 'fraction held out for validation (MNIST always holds out 2,000)',
    }),
  },
} satisfies FlagGroup;

/** "a, b" → ["a", "b"]; absent → null. */
function columnList(text: string | null, flag: string): string[] | null {
  if (text === null) return null;
  const names = text.split(',').map((c) => c.trim());
  if (names.some((c) => c === '')) throw flagError(flag, 'comma-separated column names', text);
  return names;
}

/** "128,64" → [128, 64]; "" or "none" → []. Sizes are checked by resolveConfig. */
function layerWidths(text: string, flag: string): number[] {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === 'none') return [];
  const widths = trimmed.split(',').map((part) => Number(part.trim()));
  if (!widths.every((n) => Number.isInteger(n)))
    throw flagError(flag, 'comma-separated positive integers like 128,64', text);
  return widths;
}

export const MODEL_GROUP = {
  title: 'Model',
  flags: {
    hidden: mapped(
      text({ default: model.hidden.join(','), describe: 'hidden layer widths, comma-separated ("" for none)' }),
      layerWidths,
    ),
    activation: choice(['relu', 'sigmoid', 'tanh'], {
      default: model.activation,
      describe: 'activation after each hidden layer',
    }),
    layers: text({
      describe:
        'the model as comma-separated layers, e.g. conv2d:16:5,relu,maxpool2d:2,flatten,dense:10 ' +
        '(replaces --hidden/--activation; see docs/cli.md for every item)',
    }),
    inputShape: mapped(text({ describe: 'CSV features as an image CxHxW for --layers (MNIST is 1x28x28)' }), (value) =>
      value === null ? null : parseInputShape(value),
    ),
    loss: mapped(
      choice(['auto', 'cross_entropy', 'mse'], {
        default: model.loss,
        describe: 'loss; auto: cross_entropy for class labels, mse for numeric targets',
      }),
      (word) => (word === 'auto' ? null : word),
    ),
  },
} satisfies FlagGroup;

/**
 * A number whose absence means something (undefined: not given), for the settings whose
 * default depends on others (lr on the optimizer) or that others refuse (momentum with Adam).
 */
function optionalNumber(o: { describe: string; defaultText: string }): Flag<number | undefined> {
  const flag = number(o);
  return { ...flag, read: (raw, name) => (raw === undefined ? undefined : flag.read(raw, name)) };
}

export const TRAINING_GROUP = {
  title: 'Training',
  flags: {
    epochs: number({ default: training.epochs, describe: 'passes over the training set' }),
    batchSize: number({ default: training.batchSize, describe: 'samples per optimizer step (global batch)' }),
    shardSize: number({
      default: training.shardSize,
      describe: 'samples per micro-shard, the unit of work (independent of the worker count)',
    }),
    optimizer: choice(OPTIMIZER_NAMES, {
      default: training.optimizer,
      describe: 'sgd; adam (L2 --weight-decay); adamw (decoupled --weight-decay)',
    }),
    lr: optionalNumber({
      defaultText: `${training.lr} (sgd), ${ADAM_DEFAULTS.lr} (adam, adamw)`,
      describe: 'learning rate (the peak of a schedule)',
    }),
    momentum: optionalNumber({ defaultText: String(training.momentum), describe: 'SGD momentum (0 = none)' }),
    nesterov: boolean({ default: training.nesterov, describe: 'use Nesterov momentum (SGD)' }),
    weightDecay: number({
      default: training.weightDecay,
      describe: 'weight decay: L2 (sgd, adam) or decoupled (adamw)',
    }),
    beta1: number({ default: ADAM_DEFAULTS.beta1, describe: "Adam's first-moment decay" }),
    beta2: number({ default: ADAM_DEFAULTS.beta2, describe: "Adam's second-moment decay" }),
    eps: number({ default: ADAM_DEFAULTS.eps, describe: "Adam's denominator epsilon" }),
    lrSchedule: choice(LR_SCHEDULES, {
      default: training.lrSchedule,
      describe:
        'learning rate after warmup: constant, step (× --lr-gamma every --lr-step-size steps), ' +
        'cosine or linear to --min-lr',
    }),
    warmupSteps: number({ default: training.warmupSteps, describe: 'steps of linear warmup to --lr (0: none)' }),
    lrStepSize: number({ default: LR_SCHEDULE_DEFAULTS.lrStepSize, describe: 'step schedule: steps between decays' }),
    lrGamma: number({ default: LR_SCHEDULE_DEFAULTS.lrGamma, describe: 'step schedule: factor of each decay' }),
    minLr: number({
      default: LR_SCHEDULE_DEFAULTS.minLr,
      describe: 'cosine and linear schedules: the final learning rate',
    }),
    clipNorm: number({
      default: training.clipNorm,
      describe: 'rescale the mean gradient of each step to at most this global L2 norm (0: no clipping)',
    }),
    seed: number({ default: training.seed, describe: 'seed of every random choice (init, split, data order)' }),
    kernels: mapped(
      choice(['auto', 'wasm', 'js'], {
        default: training.kernels,
        describe:
          'compute kernels of the whole run (wasm: WebAssembly SIMD; js: plain JS); ' +
          'auto: wasm when this engine has WebAssembly SIMD. The two give different bits',
      }),
      (word) => (word === 'auto' ? (kernelSetAvailable('wasm') ? 'wasm' : 'js') : word),
    ),
    wireDtype: choice(WIRE_DTYPES, {
      default: training.wireDtype,
      describe:
        'number format of weights and gradients on the wire; bf16 halves the bytes, rounding at fixed points: ' +
        'deterministic, but other bits than f32',
    }),
  },
} satisfies FlagGroup;

export const OUTPUT_GROUP = {
  title: 'Output',
  flags: {
    init: text({ describe: 'start from the weights in this safetensors file' }),
    out: text({ describe: 'write the final weights to this safetensors file' }),
    logEvery: number({ default: output.logEvery, integer: true, min: 1, describe: 'log a step line every N steps' }),
    checkpointDir: text({
      describe: 'write checkpoints here: every epoch end, on Ctrl-C, and every --checkpoint-every steps',
    }),
    checkpointEvery: number({
      default: output.checkpointEvery,
      integer: true,
      min: 0,
      describe: 'also checkpoint every N steps (0: only at epoch ends and on interruption)',
    }),
    keepCheckpoints: number({
      default: output.keepCheckpoints,
      integer: true,
      min: 1,
      describe: 'checkpoints kept in --checkpoint-dir',
    }),
    metricsCsv: text({ describe: 'append one CSV row per logged step and per epoch (the fields of their log lines)' }),
    outBest: text({
      describe:
        'write the weights of the best validation loss so far to this model file (at each epoch that improves it)',
    }),
    earlyStop: number({
      default: output.earlyStop,
      integer: true,
      min: 0,
      describe: 'stop after this many epochs without a better validation loss (0: never)',
    }),
    resume: text({
      describe: 'continue exactly from the newest checkpoint in this directory (same flags; --epochs may grow)',
    }),
  },
} satisfies FlagGroup;

/** The groups of a command that trains, in --help order. */
export const RUN_GROUPS = {
  data: DATA_GROUP,
  model: MODEL_GROUP,
  training: TRAINING_GROUP,
  output: OUTPUT_GROUP,
  log: LOG_GROUP,
};

function dataSource(d: GroupValues<typeof RUN_GROUPS>['data']): DataSource {
  const files = [
    d.csv !== null ? '--csv' : '',
    d.idxImages !== null ? '--idx-images' : '',
    d.npyX !== null ? '--npy-x' : '',
  ];
  const given = files.filter((f) => f !== '');
  if (given.length > 1) throw new ConfigError(`give one data source, got ${given.join(' and ')}`);
  for (const [images, labels, a, b] of [
    [d.idxImages, d.idxLabels, 'idx-images', 'idx-labels'],
    [d.npyX, d.npyY, 'npy-x', 'npy-y'],
  ] as const) {
    if (images !== null && labels === null) throw new ConfigError(`--${a} needs --${b}`);
    if (images === null && labels !== null) throw new ConfigError(`--${b} needs --${a}`);
  }
  if (d.idxImages !== null && d.idxLabels !== null) return { kind: 'idx', images: d.idxImages, labels: d.idxLabels };
  if (d.npyX !== null && d.npyY !== null) return { kind: 'npy', images: d.npyX, labels: d.npyY };
  if (d.csv === null && (d.valCsv !== null || d.targetColumns !== null || d.categorical !== null))
    throw new ConfigError('--val-csv, --target-columns and --categorical need --csv');
  if (d.csv !== null)
    return {
      kind: 'csv',
      path: d.csv,
      labelColumn: d.labelColumn,
      ...(d.targetColumns !== null ? { targetColumns: d.targetColumns } : {}),
      ...(d.categorical !== null ? { categorical: d.categorical } : {}),
      ...(d.valCsv !== null ? { valPath: d.valCsv } : {}),
    };
  return d.dataset === 'mnist' ? { kind: 'mnist' } : { kind: 'synthetic', name: d.dataset, samples: d.samples };
}

/** The options of a training run from its flags; a ConfigError for a bad value or combination. */
export function trainOptions(v: GroupValues<typeof RUN_GROUPS>): TrainOptions {
  const config = resolveConfig({
    ...v.model,
    ...v.training,
    data: dataSource(v.data),
    standardize: v.data.standardize,
    valFraction: v.data.valFraction,
  });
  const { resume, init } = v.output;
  if (resume !== null && init !== null)
    throw new ConfigError('--resume and --init cannot be combined: a checkpoint already holds the weights');
  return { ...v.output, ...v.log, config, checkpointDir: v.output.checkpointDir ?? resume };
}
