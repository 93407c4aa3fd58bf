// The run configuration: everything a run is a function of. One defaults object;
// the CLI fills a partial config from flags and `resolveConfig` merges and checks it,
// refusing contradictions with a one-line ConfigError.

import { ConfigError } from '../shared/errors.js';
import { KERNEL_SET_NAMES, kernelSetAvailable, type KernelSetName } from '../shared/kernels/kernel-set.js';
import type { Activation, LossKind } from '../shared/model/spec.js';
import { WIRE_DTYPES, type WireDtype } from '../shared/wire-dtype.js';

export type DataSource =
  | { readonly kind: 'mnist' }
  | { readonly kind: 'synthetic'; readonly name: 'spirals' | 'blobs' | 'regression'; readonly samples: number }
  | { readonly kind: 'csv'; readonly path: string; readonly labelColumn: string };

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
  readonly lr: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  readonly seed: number;
  /** Fraction of samples held out for validation (MNIST always holds out 2,000). */
  readonly valFraction: number;
  /** Standardize CSV features with training-set mean and std. */
  readonly standardize: boolean;
  /** Compute kernels of every participant (shared/kernels/kernel-set.ts): the two sets give different bits. */
  readonly kernels: KernelSetName;
  /** Number format of weights and gradients on the wire (shared/wire-dtype.ts): bf16 halves the bytes, with other bits. */
  readonly wireDtype: WireDtype;
}

export const RUN_DEFAULTS: RunConfig = {
  data: { kind: 'mnist' },
  hidden: [128],
  activation: 'relu',
  layers: null,
  inputShape: null,
  loss: null,
  epochs: 3,
  batchSize: 64,
  shardSize: 16,
  lr: 0.1,
  momentum: 0.9,
  nesterov: false,
  weightDecay: 0,
  seed: 42,
  valFraction: 0.2,
  standardize: true,
  kernels: 'wasm',
  wireDtype: 'f32',
};

function positiveInt(name: string, v: number, max = 1 << 24): void {
  if (!(Number.isInteger(v) && v > 0 && v <= max))
    throw new ConfigError(`--${name} must be an integer in [1, ${max}], got ${v}`);
}

export function resolveConfig(partial: Partial<RunConfig>): RunConfig {
  const c: RunConfig = { ...RUN_DEFAULTS, ...partial };
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
