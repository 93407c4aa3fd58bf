// The model described as data: a JSON-serializable spec (what the user asked for)
// and the parameter layout derived from it (where each tensor lives in the one flat
// Float32Array that holds all parameters). The layout's order is the order of the
// wire format, the optimizer state and the safetensors file; nothing else fixes it.
//
// Tensors flow in PyTorch's layout: a sample is either flat, shape [N], or an image,
// shape [C, H, W] stored channel by channel, row by row (NCHW for a batch). `flatten`
// keeps that order, so a spec is exactly an nn.Sequential of the same layers: layer i
// of the list is module i, and a parameter layer's tensors are `${i}.weight` and
// `${i}.bias` with PyTorch's shapes (Linear [out, in], Conv2d [out, in, kh, kw]).

import { ConfigError } from '../errors.js';

/** The activations the MLP shorthand (--activation) offers. */
export type Activation = 'relu' | 'sigmoid' | 'tanh';
export type Init = 'he' | 'xavier';
export type LossKind = 'cross_entropy' | 'mse';

export type LayerSpec =
  | { readonly type: 'dense'; readonly units: number; readonly init: Init }
  | {
      readonly type: 'conv2d';
      /** Output channels; the kernel is kernel × kernel, zero padding `pad` on every side. */
      readonly out: number;
      readonly kernel: number;
      readonly stride: number;
      readonly pad: number;
      readonly init: Init;
    }
  | { readonly type: 'maxpool2d' | 'avgpool2d'; readonly kernel: number; readonly stride: number }
  | { readonly type: 'flatten' }
  | { readonly type: Activation }
  /** PyTorch's LeakyReLU(negative_slope). */
  | { readonly type: 'leaky_relu'; readonly slope: number }
  /**
   * Inverted dropout (kept values scaled by 1/(1-p)), training only. The mask of a
   * sample is drawn from (seed, layer index, step, the sample's index in the dataset),
   * so it is the same whichever worker computes the sample.
   */
  | { readonly type: 'dropout'; readonly p: number; readonly seed: number };

export type LayerType = LayerSpec['type'];

export interface ModelSpec {
  /** Features per sample: the product of inputShape when there is one. */
  readonly inputSize: number;
  /** [C, H, W] when the features are an image; absent for flat features ([inputSize]). */
  readonly inputShape?: readonly [number, number, number];
  readonly layers: readonly LayerSpec[];
  /** cross_entropy: the last layer's outputs are logits, softmax is part of the loss. */
  readonly loss: LossKind;
}

/** A sample's shape between layers: [N] (flat) or [C, H, W] (image). */
export type Shape = readonly [number] | readonly [number, number, number];

export interface ParamTensor {
  /** PyTorch nn.Sequential name: `${layerIndex}.weight` or `${layerIndex}.bias`. */
  readonly name: string;
  /** weight: [out, in] (dense) or [out, in, kh, kw] (conv2d), row-major as PyTorch stores them; bias: [out]. */
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

/** Limits on untrusted specs, so a file or a peer cannot make us allocate without bound. */
export const SPEC_LIMITS = {
  layers: 64,
  /** Any one dimension (units, channels, height, width). */
  dim: 1 << 16,
  /** Kernel size, stride and padding. */
  window: 64,
  /** Floats of one sample's activation at any layer. */
  activation: 1 << 22,
  /** Floats of all parameters. */
  params: 1 << 27,
} as const;

const ACTIVATIONS: readonly string[] = ['relu', 'sigmoid', 'tanh'];

/** Whether a layer holds parameters (a weight and a bias). */
export function hasParams(layer: LayerSpec): layer is Extract<LayerSpec, { type: 'dense' | 'conv2d' }> {
  return layer.type === 'dense' || layer.type === 'conv2d';
}

/**
 * Builds an MLP spec: dense layers of the given hidden sizes, each followed by the activation, then the output layer.
 */
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

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

export function shapeSize(shape: Shape): number {
  return shape.length === 1 ? shape[0] : shape[0] * shape[1] * shape[2];
}

export function formatShape(shape: Shape): string {
  return shape.join('x');
}

/** The input shape of a spec: its image shape, or [inputSize]. */
export function inputShapeOf(spec: ModelSpec): Shape {
  return spec.inputShape ?? [spec.inputSize];
}

/**
 * The shape a layer gives for input `shape`, or a reason it cannot take it (a phrase
 * for an error message). The rules are PyTorch's: conv and pooling windows must fit
 * (no ceil mode), dense takes flat input only.
 */
export function layerOutputShape(layer: LayerSpec, shape: Shape): Shape | string {
  switch (layer.type) {
    case 'dense':
      if (shape.length !== 1) return `needs a flat input, got ${formatShape(shape)} (put flatten before it)`;
      return [layer.units];
    case 'conv2d':
    case 'maxpool2d':
    case 'avgpool2d': {
      if (shape.length !== 3)
        return (
          `needs an image input (CxHxW), got ${formatShape(shape)} features ` +
          '(give the input a shape with --input-shape)'
        );
      const [C, H, W] = shape;
      const pad = layer.type === 'conv2d' ? layer.pad : 0;
      const K = layer.kernel;
      if (H + 2 * pad < K || W + 2 * pad < K)
        return `a ${K}x${K} window does not fit its ${formatShape(shape)} input${pad > 0 ? ` padded by ${pad}` : ''}`;
      const OH = Math.floor((H + 2 * pad - K) / layer.stride) + 1;
      const OW = Math.floor((W + 2 * pad - K) / layer.stride) + 1;
      return [layer.type === 'conv2d' ? layer.out : C, OH, OW];
    }
    case 'flatten':
      return [shapeSize(shape)];
    case 'relu':
    case 'sigmoid':
    case 'tanh':
    case 'leaky_relu':
    case 'dropout':
      return shape;
    default:
      return assertNever(layer);
  }
}

/** Floats of a parameter layer's weight for input `shape` (the layer fits it). */
function weightShape(layer: Extract<LayerSpec, { type: 'dense' | 'conv2d' }>, shape: Shape): number[] {
  return layer.type === 'dense' ? [layer.units, shapeSize(shape)] : [layer.out, shape[0], layer.kernel, layer.kernel];
}

/**
 * Shape of the tensor flowing out of each layer, index-aligned with `layers`, checked
 * against SPEC_LIMITS. `where(i)` names layer i in the one-line ConfigError thrown when
 * a layer does not fit its input or the model is too large; the model's output must be
 * flat (the loss reads a vector per sample).
 */
export function inferShapes(input: Shape, layers: readonly LayerSpec[], where: (i: number) => string): Shape[] {
  const shapes: Shape[] = [];
  let shape = input;
  let params = 0;
  layers.forEach((layer, i) => {
    const next = layerOutputShape(layer, shape);
    if (typeof next === 'string') throw new ConfigError(`${where(i)}: ${next}`);
    if (shapeSize(next) > SPEC_LIMITS.activation)
      throw new ConfigError(
        `${where(i)}: gives ${formatShape(next)} values per sample, more than the ${SPEC_LIMITS.activation} allowed`,
      );
    if (hasParams(layer)) {
      const w = weightShape(layer, shape);
      params += w.reduce((a, b) => a * b, 1) + w[0];
      if (params > SPEC_LIMITS.params)
        throw new ConfigError(`${where(i)}: the model would exceed ${SPEC_LIMITS.params} parameters`);
    }
    shapes.push(next);
    shape = next;
  });
  if (shape.length !== 1)
    throw new ConfigError(
      `${where(layers.length - 1)}: the model's output must be flat for the loss, ` +
        `got ${formatShape(shape)} (end with flatten or dense)`,
    );
  return shapes;
}

/** Validates an untrusted value (a file, a message) into a ModelSpec, or throws a one-line ConfigError. */
export function validateSpec(value: unknown): ModelSpec {
  if (typeof value !== 'object' || value === null)
    throw new ConfigError(`model spec: expected an object, got ${typeof value}`);
  const v = value as Record<string, unknown>;
  if (!isInt(v.inputSize, 1, SPEC_LIMITS.activation))
    throw new ConfigError(
      `model spec: inputSize must be an integer in [1, ${SPEC_LIMITS.activation}], got ${String(v.inputSize)}`,
    );
  let inputShape: [number, number, number] | undefined;
  if (v.inputShape !== undefined) {
    const s = v.inputShape;
    if (!Array.isArray(s) || s.length !== 3 || !s.every((d) => isInt(d, 1, SPEC_LIMITS.dim)))
      throw new ConfigError(
        `model spec: inputShape must be [C, H, W] of integers in [1, ${SPEC_LIMITS.dim}], got ${safeJson(s)}`,
      );
    inputShape = [s[0], s[1], s[2]];
    if (shapeSize(inputShape) !== v.inputSize)
      throw new ConfigError(
        `model spec: inputShape ${formatShape(inputShape)} holds ${shapeSize(inputShape)} features, ` +
          `inputSize says ${v.inputSize}`,
      );
  }
  if (v.loss !== 'cross_entropy' && v.loss !== 'mse')
    throw new ConfigError(`model spec: loss must be cross_entropy or mse, got ${String(v.loss)}`);
  if (!Array.isArray(v.layers) || v.layers.length === 0 || v.layers.length > SPEC_LIMITS.layers)
    throw new ConfigError(`model spec: layers must be a non-empty array of at most ${SPEC_LIMITS.layers} layers`);
  const layers = (v.layers as unknown[]).map(validateLayer);
  if (!layers.some(hasParams)) throw new ConfigError('model spec: no layer has parameters (add dense or conv2d)');
  const spec: ModelSpec =
    inputShape === undefined
      ? { inputSize: v.inputSize, layers, loss: v.loss }
      : { inputSize: v.inputSize, inputShape, layers, loss: v.loss };
  inferShapes(inputShapeOf(spec), layers, (i) => `model spec: layer ${i} (${layers[i].type})`);
  return spec;
}

function validateLayer(raw: unknown, i: number): LayerSpec {
  if (typeof raw !== 'object' || raw === null) throw new ConfigError(`model spec: layer ${i} is not an object`);
  const l = raw as Record<string, unknown>;
  const int = (key: string, min: number, max: number): number => {
    const x = l[key];
    if (!isInt(x, min, max))
      throw new ConfigError(
        `model spec: layer ${i} (${String(l.type)}) ${key} must be an integer in [${min}, ${max}], got ${safeJson(x)}`,
      );
    return x;
  };
  const init = (): Init => {
    if (l.init !== 'he' && l.init !== 'xavier')
      throw new ConfigError(`model spec: layer ${i} init must be he or xavier, got ${safeJson(l.init)}`);
    return l.init;
  };
  const fraction = (key: string, hi: number): number => {
    const x = l[key];
    if (typeof x !== 'number' || !(x >= 0 && x < hi))
      throw new ConfigError(
        `model spec: layer ${i} (${String(l.type)}) ${key} must be in [0, ${hi}), got ${safeJson(x)}`,
      );
    return x;
  };
  switch (l.type) {
    case 'dense':
      return { type: 'dense', units: int('units', 1, SPEC_LIMITS.activation), init: init() };
    case 'conv2d': {
      const kernel = int('kernel', 1, SPEC_LIMITS.window);
      return {
        type: 'conv2d',
        out: int('out', 1, SPEC_LIMITS.dim),
        kernel,
        stride: int('stride', 1, SPEC_LIMITS.window),
        pad: int('pad', 0, kernel - 1),
        init: init(),
      };
    }
    case 'maxpool2d':
    case 'avgpool2d':
      return {
        type: l.type,
        kernel: int('kernel', 1, SPEC_LIMITS.window),
        stride: int('stride', 1, SPEC_LIMITS.window),
      };
    case 'flatten':
      return { type: 'flatten' };
    case 'leaky_relu':
      return { type: 'leaky_relu', slope: fraction('slope', 1) };
    case 'dropout':
      return { type: 'dropout', p: fraction('p', 1), seed: int('seed', 0, 0xffffffff) };
    default:
      if (typeof l.type === 'string' && ACTIVATIONS.includes(l.type)) return { type: l.type as Activation };
      throw new ConfigError(`model spec: layer ${i} has unknown type ${safeJson(l.type)}`);
  }
}

/** A short rendering of an untrusted value for an error message. */
function safeJson(x: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(x) ?? String(x);
  } catch {
    text = typeof x;
  }
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** Shape of the tensor flowing out of each layer, index-aligned with spec.layers (the spec is valid). */
export function layerShapes(spec: ModelSpec): Shape[] {
  return inferShapes(inputShapeOf(spec), spec.layers, (i) => `layer ${i}`);
}

/** Width (values per sample) of the tensor flowing out of each layer, index-aligned with spec.layers. */
export function layerWidths(spec: ModelSpec): number[] {
  return layerShapes(spec).map(shapeSize);
}

export function outputSize(spec: ModelSpec): number {
  const widths = layerWidths(spec);
  return widths[widths.length - 1];
}

export function paramLayout(spec: ModelSpec): ParamLayout {
  const tensors: ParamTensor[] = [];
  let offset = 0;
  let shape = inputShapeOf(spec);
  const shapes = layerShapes(spec);
  spec.layers.forEach((layer, i) => {
    if (hasParams(layer)) {
      const w = weightShape(layer, shape);
      const weightSize = w.reduce((a, b) => a * b, 1);
      tensors.push({ name: `${i}.weight`, shape: w, offset, size: weightSize });
      offset += weightSize;
      tensors.push({ name: `${i}.bias`, shape: [w[0]], offset, size: w[0] });
      offset += w[0];
    }
    shape = shapes[i];
  });
  return { tensors, totalSize: offset };
}

/** A named view into a flat buffer laid out by `layout`. No copy. */
export function tensorView(buffer: Float32Array, layout: ParamLayout, name: string): Float32Array {
  const t = layout.tensors.find((x) => x.name === name);
  if (t === undefined) throw new Error(`no tensor named ${name} in layout`);
  return buffer.subarray(t.offset, t.offset + t.size);
}

function assertNever(x: never): never {
  throw new Error(`unhandled layer ${JSON.stringify(x)}`);
}
