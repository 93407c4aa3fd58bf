// The text forms of a model on the command line: `--layers SPEC` (a comma-separated
// list of layers, in nn.Sequential order) and `--input-shape CxHxW`. Pure functions:
// text and the data's shape in, a validated ModelSpec out, or a one-line ConfigError
// naming the item and its position (1-based, as a user counts them).
//
//   conv2d:OUT:K[:STRIDE[:PAD]]   maxpool2d:K[:STRIDE]   avgpool2d:K[:STRIDE]
//   dense:UNITS   dropout:P   flatten   relu   leaky_relu[:SLOPE]   sigmoid   tanh

import { ConfigError } from '../errors.js';
import {
  formatShape,
  inferShapes,
  SPEC_LIMITS,
  validateSpec,
  type Init,
  type LayerSpec,
  type LossKind,
  type ModelSpec,
  type Shape,
} from './spec.js';

/** What the model must fit: the data's sample shape and how many outputs the loss reads. */
export interface LayersTarget {
  /** [features], or [C, H, W] for image data. */
  readonly inputShape: Shape;
  /** Classes (cross_entropy) or target values (mse) per sample. */
  readonly outputs: number;
  readonly loss: LossKind;
  /** The run's seed; dropout masks are drawn from it. */
  readonly seed: number;
}

const FORMS: Record<string, string> = {
  conv2d: 'conv2d:OUT:K[:STRIDE[:PAD]]',
  maxpool2d: 'maxpool2d:K[:STRIDE]',
  avgpool2d: 'avgpool2d:K[:STRIDE]',
  dense: 'dense:UNITS',
  dropout: 'dropout:P',
  flatten: 'flatten',
  relu: 'relu',
  leaky_relu: 'leaky_relu[:SLOPE]',
  sigmoid: 'sigmoid',
  tanh: 'tanh',
};

/** PyTorch's LeakyReLU default. */
const DEFAULT_SLOPE = 0.01;

/** Parses `--layers` into a spec that fits `target`, or throws a one-line ConfigError. */
export function parseLayers(text: string, target: LayersTarget): ModelSpec {
  const items = text.split(',').map((s) => s.trim());
  if (items.length > SPEC_LIMITS.layers)
    throw new ConfigError(`--layers has ${items.length} items; at most ${SPEC_LIMITS.layers} allowed`);
  const where = (i: number): string => `--layers item ${i + 1} ("${items[i]}")`;
  const parsed = items.map((item, i) => parseItem(item, i, where(i), target.seed));
  // He for a layer whose outputs go through a ReLU, Xavier otherwise (and for the output layer).
  const layers: LayerSpec[] = parsed.map((layer, i) => {
    if (layer.type !== 'dense' && layer.type !== 'conv2d') return layer;
    const next = parsed[i + 1]?.type;
    const init: Init = next === 'relu' || next === 'leaky_relu' ? 'he' : 'xavier';
    return { ...layer, init };
  });
  if (!layers.some((l) => l.type === 'dense' || l.type === 'conv2d'))
    throw new ConfigError(`--layers "${text}" has no layer with weights (add dense or conv2d)`);
  const shapes = inferShapes(target.inputShape, layers, where);
  const out = shapes[shapes.length - 1];
  if (out[0] !== target.outputs) {
    const what = target.loss === 'cross_entropy' ? 'classes' : 'target values';
    throw new ConfigError(
      `${where(layers.length - 1)}: the model ends with ${out[0]} outputs, but the data has ${target.outputs} ${what}` +
        ` (end with dense:${target.outputs})`,
    );
  }
  const inputSize = target.inputShape.reduce((a, b) => a * b, 1);
  const s = target.inputShape;
  return validateSpec(
    s.length === 3
      ? { inputSize, inputShape: [s[0], s[1], s[2]], layers, loss: target.loss }
      : { inputSize, layers, loss: target.loss },
  );
}

/** One item; `init` is fixed afterwards, when the next layer is known. */
function parseItem(item: string, i: number, where: string, seed: number): LayerSpec {
  if (item === '') throw new ConfigError(`--layers item ${i + 1} is empty (a stray comma?)`);
  const [name, ...args] = item.split(':');
  const form = FORMS[name];
  if (form === undefined)
    throw new ConfigError(`${where}: unknown layer "${name}" (expected one of ${Object.keys(FORMS).join(', ')})`);
  const max = form.split(':').length - 1;
  const min = form.replace(/\[.*$/, '').split(':').length - 1;
  if (args.length < min || args.length > max)
    throw new ConfigError(
      `${where}: expected ${form}, got ` +
        `${args.length === 0 ? 'no values' : `${args.length} value${args.length === 1 ? '' : 's'}`}`,
    );
  const names = form.replace(/[[\]]/g, '').split(':').slice(1);
  const int = (k: number, lo: number, hi: number): number => {
    const n = Number(args[k]);
    if (!(/^\d+$/.test(args[k]) && n >= lo && n <= hi))
      throw new ConfigError(`${where}: ${names[k]} must be an integer in [${lo}, ${hi}], got "${args[k]}"`);
    return n;
  };
  const fraction = (k: number): number => {
    const n = Number(args[k]);
    if (!(args[k].trim() !== '' && n >= 0 && n < 1))
      throw new ConfigError(`${where}: ${names[k]} must be a number in [0, 1), got "${args[k]}"`);
    return n;
  };
  switch (name) {
    case 'conv2d': {
      const kernel = int(1, 1, SPEC_LIMITS.window);
      return {
        type: 'conv2d',
        out: int(0, 1, SPEC_LIMITS.dim),
        kernel,
        stride: args.length > 2 ? int(2, 1, SPEC_LIMITS.window) : 1,
        pad: args.length > 3 ? int(3, 0, kernel - 1) : 0,
        init: 'xavier',
      };
    }
    case 'maxpool2d':
    case 'avgpool2d': {
      const kernel = int(0, 1, SPEC_LIMITS.window);
      return { type: name, kernel, stride: args.length > 1 ? int(1, 1, SPEC_LIMITS.window) : kernel };
    }
    case 'dense':
      return { type: 'dense', units: int(0, 1, SPEC_LIMITS.activation), init: 'xavier' };
    case 'dropout':
      return { type: 'dropout', p: fraction(0), seed };
    case 'leaky_relu':
      return { type: 'leaky_relu', slope: args.length > 0 ? fraction(0) : DEFAULT_SLOPE };
    case 'flatten':
    case 'relu':
    case 'sigmoid':
    case 'tanh':
      return { type: name };
    default:
      throw new Error(`parseItem: no case for ${name}`);
  }
}

/** Parses `--input-shape CxHxW` into [C, H, W]. */
export function parseInputShape(text: string): [number, number, number] {
  const parts = text.trim().split(/x/i);
  const dims = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : Number.NaN));
  if (dims.length !== 3 || !dims.every((d) => d >= 1 && d <= SPEC_LIMITS.dim))
    throw new ConfigError(
      `--input-shape expects CxHxW with each in [1, ${SPEC_LIMITS.dim}], like 1x28x28, got "${text}"`,
    );
  return [dims[0], dims[1], dims[2]];
}

/** The sample shape of data with `numFeatures` columns: `given` (checked against them), or flat. */
export function dataInputShape(given: readonly [number, number, number] | null, numFeatures: number): Shape {
  if (given === null) return [numFeatures];
  const size = given[0] * given[1] * given[2];
  if (size !== numFeatures)
    throw new ConfigError(
      `--input-shape ${formatShape(given)} holds ${size} values, but the data has ${numFeatures} feature columns`,
    );
  return given;
}
