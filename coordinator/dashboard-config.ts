// The dashboard's config table: what the run actually uses, in words, rather than the
// raw config. Defaults the data decides are resolved (the loss), the model is the
// spec the run built, and options that do nothing for this run are left out (feature
// standardization, which only CSV data gets). Config fields without a row of their
// own are still shown, readably, so a new option is never silently missing.

import type { RunStarted } from './events.js';
import { formatShape, inputShapeOf, type LayerSpec, type ModelSpec } from '../shared/model/spec.js';

type Row = readonly [string, string];

/** The fields the rows below speak for. */
const DESCRIBED: ReadonlySet<string> = new Set([
  'data',
  'hidden',
  'activation',
  'layers',
  'inputShape',
  'loss',
  'epochs',
  'batchSize',
  'shardSize',
  'optimizer',
  'lr',
  'momentum',
  'nesterov',
  'weightDecay',
  'beta1',
  'beta2',
  'eps',
  'lrSchedule',
  'warmupSteps',
  'lrStepSize',
  'lrGamma',
  'minLr',
  'clipNorm',
  'seed',
  'valFraction',
  'standardize',
  'kernels',
  'wireDtype',
]);

export function configRows(run: RunStarted): Row[] {
  const c = run.config;
  const shards = Math.ceil(c.batchSize / c.shardSize);
  const rows: Row[] = [
    ['data', dataText(run)],
    ['model', modelSummary(run.spec)],
    ['loss', c.loss === null ? `${run.spec.loss} (for ${lossReason(run.spec)} data)` : run.spec.loss],
    ['epochs', String(c.epochs)],
    ['batch size', `${c.batchSize} samples, in ${shards} shard${shards === 1 ? '' : 's'} of ${c.shardSize}`],
    ['optimizer', optimizerText(c)],
    ['learning rate', scheduleText(c)],
    ['weight decay', c.weightDecay === 0 ? 'none' : String(c.weightDecay)],
    ['gradient clipping', c.clipNorm === 0 ? 'none' : `global L2 norm at most ${c.clipNorm}`],
    ['seed', String(c.seed)],
    ['validation', validationText(run)],
  ];
  if (c.data.kind === 'csv')
    rows.push(['standardize features', c.standardize ? 'yes (training-set mean and std)' : 'no']);
  rows.push(
    ['kernels', c.kernels === 'wasm' ? 'wasm (WebAssembly SIMD)' : 'js (plain JavaScript)'],
    ['wire dtype', c.wireDtype === 'bf16' ? 'bf16 (half the bytes of f32)' : c.wireDtype],
  );
  for (const [key, value] of Object.entries(c)) if (!DESCRIBED.has(key)) rows.push([key, readable(value)]);
  return rows;
}

/**
 * An MLP as "784-128-10 relu, cross_entropy" (the dense widths, the activation, the
 * loss); any other model as its input shape and its layers in --layers syntax, e.g.
 * "1x28x28: conv2d:16:5, relu, maxpool2d:2, flatten, dense:10, cross_entropy".
 */
export function modelSummary(spec: ModelSpec): string {
  const activations: ReadonlySet<string> = new Set(['relu', 'sigmoid', 'tanh']);
  if (spec.inputShape === undefined && spec.layers.every((l) => l.type === 'dense' || activations.has(l.type))) {
    const widths = spec.layers.flatMap((l) => (l.type === 'dense' ? [l.units] : []));
    const activation = spec.layers.find((l) => l.type !== 'dense')?.type;
    return `${[spec.inputSize, ...widths].join('-')}${activation !== undefined ? ` ${activation}` : ''}, ${spec.loss}`;
  }
  return `${formatShape(inputShapeOf(spec))}: ${spec.layers.map(layerText).join(', ')}, ${spec.loss}`;
}

/** A layer as its --layers item (defaults left out). */
function layerText(l: LayerSpec): string {
  switch (l.type) {
    case 'dense':
      return `dense:${l.units}`;
    case 'conv2d': {
      const pad = l.pad !== 0 ? `:${l.pad}` : '';
      return `conv2d:${l.out}:${l.kernel}${l.stride !== 1 || l.pad !== 0 ? `:${l.stride}${pad}` : ''}`;
    }
    case 'maxpool2d':
    case 'avgpool2d':
      return `${l.type}:${l.kernel}${l.stride !== l.kernel ? `:${l.stride}` : ''}`;
    case 'dropout':
      return `dropout:${l.p}`;
    case 'leaky_relu':
      return `leaky_relu:${l.slope}`;
    default:
      return l.type;
  }
}

function optimizerText(c: RunStarted['config']): string {
  if (c.optimizer === 'sgd')
    return c.momentum === 0 ? 'sgd' : `sgd, momentum ${c.momentum}${c.nesterov ? ' (Nesterov)' : ''}`;
  return `${c.optimizer}, beta1 ${c.beta1}, beta2 ${c.beta2}, eps ${c.eps}`;
}

function scheduleText(c: RunStarted['config']): string {
  const warmup = c.warmupSteps > 0 ? `, after ${c.warmupSteps} warmup steps` : '';
  switch (c.lrSchedule) {
    case 'constant':
      return `${c.lr}${warmup}`;
    case 'step':
      return `${c.lr}, times ${c.lrGamma} every ${c.lrStepSize} steps${warmup}`;
    default:
      return `${c.lr}, ${c.lrSchedule} decay to ${c.minLr}${warmup}`;
  }
}

function dataText(run: RunStarted): string {
  const d = run.config.data;
  const samples = (run.train + run.val).toLocaleString('en-US');
  switch (d.kind) {
    case 'mnist':
      return `MNIST, embedded (${samples} images)`;
    case 'synthetic':
      return `synthetic ${d.name} (${samples} samples)`;
    case 'csv':
      return `CSV ${d.path}, label column ${d.labelColumn} (${samples} rows)`;
    default:
      return readable(d);
  }
}

function lossReason(spec: ModelSpec): string {
  return spec.loss === 'cross_entropy' ? 'classification' : 'regression';
}

function validationText(run: RunStarted): string {
  const split = `${run.train.toLocaleString('en-US')} train / ${run.val.toLocaleString('en-US')} validation`;
  if (run.val === 0) return `none (${run.train.toLocaleString('en-US')} train)`;
  return run.config.data.kind === 'mnist'
    ? `${split} (MNIST's fixed hold-out)`
    : `${split} (${Math.round(run.config.valFraction * 100)}% held out)`;
}

/** A config value without JSON punctuation: lists joined, records as "key value" pairs. */
function readable(v: unknown): string {
  if (v === null || v === undefined) return 'none';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return v.map(readable).join(', ');
  if (typeof v === 'object')
    return Object.entries(v)
      .map(([k, x]) => `${k} ${readable(x)}`)
      .join(', ');
  return String(v);
}
