// The dashboard's config table: what the run actually uses, in words, rather than the
// raw config. Defaults the data decides are resolved (the loss), the model is the
// spec the run built, and options that do nothing for this run are left out (feature
// standardization, which only CSV data gets). Config fields without a row of their
// own are still shown, readably, so a new option is never silently missing.

import type { RunStarted } from './events.js';
import type { ModelSpec } from '../shared/model/spec.js';

type Row = readonly [string, string];

/** The fields the rows below speak for. */
const DESCRIBED: ReadonlySet<string> = new Set([
  'data',
  'hidden',
  'activation',
  'loss',
  'epochs',
  'batchSize',
  'shardSize',
  'lr',
  'momentum',
  'nesterov',
  'weightDecay',
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
    ['learning rate', String(c.lr)],
    ['momentum', c.momentum === 0 ? 'none' : `${c.momentum}${c.nesterov ? ', Nesterov' : ''}`],
    ['weight decay', c.weightDecay === 0 ? 'none' : String(c.weightDecay)],
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

/** "784-128-10 relu, cross_entropy": the dense widths, the first activation, the loss. */
export function modelSummary(spec: ModelSpec): string {
  const widths = spec.layers.flatMap((l) => (l.type === 'dense' ? [l.units] : []));
  const activation = spec.layers.find((l) => l.type !== 'dense')?.type;
  return `${[spec.inputSize, ...widths].join('-')}${activation !== undefined ? ` ${activation}` : ''}, ${spec.loss}`;
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
