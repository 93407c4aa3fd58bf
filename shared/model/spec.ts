// The model described as data: a JSON-serializable spec (what the user asked for)
// and the parameter layout derived from it (where each tensor lives in the one flat
// Float32Array that holds all parameters). The layout's order is the order of the
// wire format, the optimizer state and the safetensors file; nothing else fixes it.

import { ConfigError } from '../errors.js';

export type Activation = 'relu' | 'sigmoid' | 'tanh';
export type Init = 'he' | 'xavier';
export type LossKind = 'cross_entropy' | 'mse';

export type LayerSpec =
  | { readonly type: 'dense'; readonly units: number; readonly init: Init }
  | { readonly type: Activation };

export interface ModelSpec {
  readonly inputSize: number;
  readonly layers: readonly LayerSpec[];
  /** cross_entropy: the last layer's outputs are logits, softmax is part of the loss. */
  readonly loss: LossKind;
}

export interface ParamTensor {
  /** PyTorch nn.Sequential name: `${layerIndex}.weight` or `${layerIndex}.bias`. */
  readonly name: string;
  /** weight: [out, in] (row-major, as PyTorch stores nn.Linear); bias: [out]. */
  readonly shape: readonly number[];
  /** Offset in floats into the flat parameter buffer. */
  readonly offset: number;
  /** Number of floats. */
  readonly size: number;
}

export interface ParamLayout {
  readonly tensors: readonly ParamTensor[];
  /** Total number of floats in the flat parameter buffer. */
  readonly totalSize: number;
}

const ACTIVATIONS: readonly string[] = ['relu', 'sigmoid', 'tanh'];

/** Builds an MLP spec: dense layers of the given hidden sizes, each followed by the activation, then the output layer. */
export function mlpSpec(
  inputSize: number,
  hidden: readonly number[],
  outputSize: number,
  activation: Activation,
  loss: LossKind,
): ModelSpec {
  const init: Init = activation === 'relu' ? 'he' : 'xavier';
  const layers: LayerSpec[] = [];
  for (const units of hidden) {
    layers.push({ type: 'dense', units, init });
    layers.push({ type: activation });
  }
  layers.push({ type: 'dense', units: outputSize, init: 'xavier' });
  return validateSpec({ inputSize, layers, loss });
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 1 << 24;
}

/** Validates an untrusted value (a file, a message) into a ModelSpec, or throws ConfigError. */
export function validateSpec(value: unknown): ModelSpec {
  if (typeof value !== 'object' || value === null)
    throw new ConfigError(`model spec: expected an object, got ${typeof value}`);
  const v = value as Record<string, unknown>;
  if (!isPositiveInt(v.inputSize))
    throw new ConfigError(`model spec: inputSize must be a positive integer, got ${String(v.inputSize)}`);
  if (v.loss !== 'cross_entropy' && v.loss !== 'mse')
    throw new ConfigError(`model spec: loss must be cross_entropy or mse, got ${String(v.loss)}`);
  if (!Array.isArray(v.layers) || v.layers.length === 0 || v.layers.length > 64)
    throw new ConfigError('model spec: layers must be a non-empty array of at most 64 layers');
  const layers: LayerSpec[] = [];
  for (const [i, raw] of (v.layers as unknown[]).entries()) {
    if (typeof raw !== 'object' || raw === null) throw new ConfigError(`model spec: layer ${i} is not an object`);
    const l = raw as Record<string, unknown>;
    if (l.type === 'dense') {
      if (!isPositiveInt(l.units))
        throw new ConfigError(`model spec: layer ${i} units must be a positive integer, got ${String(l.units)}`);
      if (l.init !== 'he' && l.init !== 'xavier')
        throw new ConfigError(`model spec: layer ${i} init must be he or xavier, got ${String(l.init)}`);
      layers.push({ type: 'dense', units: l.units, init: l.init });
    } else if (typeof l.type === 'string' && ACTIVATIONS.includes(l.type)) {
      layers.push({ type: l.type as Activation });
    } else {
      throw new ConfigError(`model spec: layer ${i} has unknown type ${String(l.type)}`);
    }
  }
  if (layers[0].type !== 'dense') throw new ConfigError('model spec: the first layer must be dense');
  if (layers[layers.length - 1].type !== 'dense')
    throw new ConfigError('model spec: the last layer must be dense (its outputs feed the loss)');
  return { inputSize: v.inputSize, layers, loss: v.loss };
}

/** Width of the tensor flowing out of each layer, index-aligned with spec.layers. */
export function layerWidths(spec: ModelSpec): number[] {
  const widths: number[] = [];
  let width = spec.inputSize;
  for (const layer of spec.layers) {
    if (layer.type === 'dense') width = layer.units;
    widths.push(width);
  }
  return widths;
}

export function outputSize(spec: ModelSpec): number {
  const widths = layerWidths(spec);
  return widths[widths.length - 1];
}

export function paramLayout(spec: ModelSpec): ParamLayout {
  const tensors: ParamTensor[] = [];
  let offset = 0;
  let inWidth = spec.inputSize;
  spec.layers.forEach((layer, i) => {
    if (layer.type !== 'dense') return;
    const weightSize = layer.units * inWidth;
    tensors.push({ name: `${i}.weight`, shape: [layer.units, inWidth], offset, size: weightSize });
    offset += weightSize;
    tensors.push({ name: `${i}.bias`, shape: [layer.units], offset, size: layer.units });
    offset += layer.units;
    inWidth = layer.units;
  });
  return { tensors, totalSize: offset };
}

/** A named view into a flat buffer laid out by `layout`. No copy. */
export function tensorView(buffer: Float32Array, layout: ParamLayout, name: string): Float32Array {
  const t = layout.tensors.find((x) => x.name === name);
  if (t === undefined) throw new Error(`no tensor named ${name} in layout`);
  return buffer.subarray(t.offset, t.offset + t.size);
}
