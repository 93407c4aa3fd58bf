// The run configuration: everything a run is a function of. Its defaults are
// shared/defaults.ts's; the CLI fills a partial config from flags and `resolveConfig`
// merges and checks it (the one check of each value, naming its flag), refusing
// contradictions with a one-line ConfigError.

import { DEFAULTS } from '../shared/defaults.js';
import { ConfigError } from '../shared/errors.js';
import { KERNEL_SET_NAMES, kernelSetAvailable, type KernelSetName } from '../shared/kernels/kernel-set.js';
import type { Activation, LossKind } from '../shared/model/spec.js';
import { ADAM_DEFAULTS } from '../shared/optim/adam.js';
import { OPTIMIZER_NAMES, type OptimizerName } from '../shared/optim/create.js';
import { LR_SCHEDULE_DEFAULTS, LR_SCHEDULES, type LrScheduleKind } from '../shared/optim/schedule.js';
import { WIRE_DTYPES, type WireDtype } from '../shared/wire-dtype.js';

export type DataSource =
  | { readonly kind: 'mnist' }
  | { readonly kind: 'synthetic'; readonly name: 'spirals' | 'blobs' | 'regression'; readonly samples: number }
  | {
      readonly kind: 'csv';
      readonly path: string;
      readonly labelColumn: string;
      /** Regression targets instead of labelColumn (several outputs). */
      readonly targetColumns?: readonly string[];
      /** Feature columns of names, one-hot encoded. */
      readonly categorical?: readonly string[];
      /** The validation rows, from this file instead of a held-out fraction. */
      readonly valPath?: string;
    }
  /** Images and labels in two files of one format: IDX (gzip or not) or NPY. */
  | { readonly kind: 'idx' | 'npy'; readonly images: string; readonly labels: string }
  /** Samples handed over in memory by a library caller (coordinator/api/); `name` only labels the run. */
  | { readonly kind: 'memory'; readonly name: string };

export interface RunConfig {
  readonly data: DataSource;
  /** Hidden layer widths, e.g. [128] for 784-128-10. */
  readonly hidden: readonly number[];
  readonly activation: Activation;
  /** --layers: the model as a list of layers (shared/model/layers-flag.ts), in place of hidden/activation. */
  readonly layers: string | null;
  /** --input-shape [C, H, W] of CSV features; null: flat (MNIST is 1x28x28 by itself). */
  readonly inputShape: readonly [number, number, number] | null;
  /** null: cross_entropy for classification data, mse for regression data. */
  readonly loss: LossKind | null;
  readonly epochs: number;
  /** Samples per optimizer step (the global batch). */
  readonly batchSize: number;
  /** Samples per micro-shard: the unit of work and of the reduction tree. */
  readonly shardSize: number;
  /** sgd, adam (L2 weight decay) or adamw (decoupled weight decay). */
  readonly optimizer: OptimizerName;
  /** Peak learning rate (a schedule's value after warmup, before decay). */
  readonly lr: number;
  /** SGD only. */
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  /** Adam and AdamW only: moment decays and the denominator's epsilon. */
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** The learning rate after warmup, per step (shared/optim/schedule.ts). */
  readonly lrSchedule: LrScheduleKind;
  /** Steps of linear warmup to lr; 0: none. */
  readonly warmupSteps: number;
  /** `step` schedule: steps between decays, and the factor of each. */
  readonly lrStepSize: number;
  readonly lrGamma: number;
  /** `cosine` and `linear`: the learning rate reached at the last step. */
  readonly minLr: number;
  /** Rescale the batch-mean gradient to at most this global L2 norm before the step; 0: never. */
  readonly clipNorm: number;
  readonly seed: number;
  /** Fraction of samples held out for validation (MNIST always holds out 2,000). */
  readonly valFraction: number;
  /** Standardize CSV features with training-set mean and std. */
  readonly standardize: boolean;
  /** Compute kernels of every participant (shared/kernels/kernel-set.ts): the two sets give different bits. */
  readonly kernels: KernelSetName;
  /**
   * Number format of weights and gradients on the wire (shared/wire-dtype.ts): bf16 halves the bytes, with other bits.
   */
  readonly wireDtype: WireDtype;
}

const { data, model, training } = DEFAULTS;

/**
 * DEFAULTS as a run configuration: 'auto' loss is null (decided by the data), and
 * 'auto' kernels are wasm, what every supported Node has.
 */
export const RUN_DEFAULTS: RunConfig = {
  data: { kind: 'mnist' },
  hidden: model.hidden,
  activation: model.activation,
  layers: model.layers,
  inputShape: model.inputShape,
  loss: null,
  epochs: training.epochs,
  batchSize: training.batchSize,
  shardSize: training.shardSize,
  optimizer: training.optimizer,
  lr: training.lr,
  momentum: training.momentum,
  nesterov: training.nesterov,
  weightDecay: training.weightDecay,
  beta1: ADAM_DEFAULTS.beta1,
  beta2: ADAM_DEFAULTS.beta2,
  eps: ADAM_DEFAULTS.eps,
  lrSchedule: training.lrSchedule,
  warmupSteps: training.warmupSteps,
  lrStepSize: LR_SCHEDULE_DEFAULTS.lrStepSize,
  lrGamma: LR_SCHEDULE_DEFAULTS.lrGamma,
  minLr: LR_SCHEDULE_DEFAULTS.minLr,
  clipNorm: training.clipNorm,
  seed: training.seed,
  valFraction: data.valFraction,
  standardize: data.standardize,
  kernels: 'wasm',
  wireDtype: training.wireDtype,
};

function positiveInt(name: string, v: number, max = 1 << 24): void {
  if (!(Number.isInteger(v) && v > 0 && v <= max))
    throw new ConfigError(`--${name} must be an integer in [1, ${max}], got ${v}`);
}

/**
 * The defaults merged with `partial` (an undefined field is not given) and checked.
 * An absent lr is the optimizer's default: SGD's, or Adam's (ADAM_DEFAULTS.lr).
 */
export function resolveConfig(partial: Partial<RunConfig>): RunConfig {
  const given = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<RunConfig>;
  const optimizer = given.optimizer ?? RUN_DEFAULTS.optimizer;
  if (!OPTIMIZER_NAMES.includes(optimizer))
    throw new ConfigError(`--optimizer must be one of ${OPTIMIZER_NAMES.join(', ')}, got ${String(optimizer)}`);
  const adam = optimizer !== 'sgd';
  if (adam && given.momentum !== undefined)
    throw new ConfigError(`--momentum is SGD's; ${optimizer} uses --beta1 instead`);
  if (adam && given.nesterov === true) throw new ConfigError(`--nesterov is SGD's; ${optimizer} has no Nesterov form`);
  const c: RunConfig = { ...RUN_DEFAULTS, ...(adam ? { lr: ADAM_DEFAULTS.lr } : {}), ...given };
  positiveInt('epochs', c.epochs, 1_000_000);
  positiveInt('batch-size', c.batchSize);
  positiveInt('shard-size', c.shardSize);
  if (c.shardSize > c.batchSize)
    throw new ConfigError(`--shard-size (${c.shardSize}) cannot exceed --batch-size (${c.batchSize})`);
  if (c.batchSize / c.shardSize > 4096)
    throw new ConfigError(
      `--batch-size / --shard-size is ${Math.ceil(c.batchSize / c.shardSize)} shards per step; at most 4096 allowed`,
    );
  for (const h of c.hidden) positiveInt('hidden', h, 1 << 16);
  if (!(Number.isFinite(c.lr) && c.lr > 0)) throw new ConfigError(`--lr must be a positive number, got ${c.lr}`);
  if (!(c.momentum >= 0 && c.momentum < 1)) throw new ConfigError(`--momentum must be in [0, 1), got ${c.momentum}`);
  if (c.nesterov && c.momentum === 0) throw new ConfigError('--nesterov needs --momentum > 0');
  if (!(Number.isFinite(c.weightDecay) && c.weightDecay >= 0))
    throw new ConfigError(`--weight-decay must be ≥ 0, got ${c.weightDecay}`);
  if (!(Number.isInteger(c.seed) && c.seed >= 0 && c.seed <= 0xffffffff))
    throw new ConfigError(`--seed must be an integer in [0, 4294967295], got ${c.seed}`);
  if (!(c.valFraction >= 0 && c.valFraction < 1))
    throw new ConfigError(`--val-fraction must be in [0, 1), got ${c.valFraction}`);
  for (const [name, v] of [
    ['beta1', c.beta1],
    ['beta2', c.beta2],
  ] as const)
    if (!(v >= 0 && v < 1)) throw new ConfigError(`--${name} must be in [0, 1), got ${v}`);
  if (!(Number.isFinite(c.eps) && c.eps > 0)) throw new ConfigError(`--eps must be a positive number, got ${c.eps}`);
  if (optimizer === 'adamw' && c.lr * c.weightDecay >= 1)
    throw new ConfigError(`adamw needs --lr × --weight-decay < 1, got ${c.lr} × ${c.weightDecay}`);
  if (!LR_SCHEDULES.includes(c.lrSchedule))
    throw new ConfigError(`--lr-schedule must be one of ${LR_SCHEDULES.join(', ')}, got ${String(c.lrSchedule)}`);
  if (!(Number.isInteger(c.warmupSteps) && c.warmupSteps >= 0))
    throw new ConfigError(`--warmup-steps must be an integer ≥ 0, got ${c.warmupSteps}`);
  positiveInt('lr-step-size', c.lrStepSize, 1 << 30);
  if (!(c.lrGamma > 0 && c.lrGamma <= 1)) throw new ConfigError(`--lr-gamma must be in (0, 1], got ${c.lrGamma}`);
  if (!(c.minLr >= 0 && c.minLr <= c.lr))
    throw new ConfigError(`--min-lr must be in [0, --lr = ${c.lr}], got ${c.minLr}`);
  if (!(Number.isFinite(c.clipNorm) && c.clipNorm >= 0))
    throw new ConfigError(`--clip-norm must be ≥ 0 (0: no clipping), got ${c.clipNorm}`);
  if (c.data.kind === 'synthetic') positiveInt('samples', c.data.samples, 10_000_000);
  if (!KERNEL_SET_NAMES.includes(c.kernels))
    throw new ConfigError(`--kernels must be one of ${KERNEL_SET_NAMES.join(', ')}, got ${String(c.kernels)}`);
  if (!WIRE_DTYPES.includes(c.wireDtype))
    throw new ConfigError(`--wire-dtype must be one of ${WIRE_DTYPES.join(', ')}, got ${String(c.wireDtype)}`);
  if (!kernelSetAvailable(c.kernels))
    throw new ConfigError(
      `--kernels ${c.kernels} needs WebAssembly SIMD-128, which this JavaScript engine lacks; use --kernels js`,
    );
  return c;
}

/**
 * Refuses a schedule that does not fit the run, once its length is known (the number of
 * training samples fixes the steps per epoch): warmup must end before the last step.
 */
export function checkScheduleFits(c: RunConfig, totalSteps: number): void {
  if (c.warmupSteps > 0 && c.warmupSteps >= totalSteps)
    throw new ConfigError(
      `--warmup-steps (${c.warmupSteps}) must be below the run's ${totalSteps} steps (--epochs × steps per epoch)`,
    );
}
