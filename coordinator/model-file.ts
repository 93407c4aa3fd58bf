// Reading and writing model files (safetensors) on disk: --out and --init. The file
// holds one f32 tensor per parameter, named as a PyTorch nn.Sequential of the same
// layers would name them, and in __metadata__ the model spec, the training config and
// the input description (shared/data/preprocess.ts: columns, classes, standardization)
// that `predict` and `evaluate` rebuild the preprocessing from.
// Written durably (durable-file.ts); --out's directory is checked before training, and
// a final write that fails leaves a rescue checkpoint to write it from later.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { validateModelInput, type ModelInput } from '../shared/data/preprocess.js';
import { FlocktrainError, ModelFileError } from '../shared/errors.js';
import { kernelSetAvailable, type KernelSetName } from '../shared/kernels/kernel-set.js';
import { decodeSafetensors, encodeSafetensors, loadParams } from '../shared/model/safetensors.js';
import { paramLayout, validateSpec, type ModelSpec } from '../shared/model/spec.js';
import type { RunConfig } from './config.js';
import { checkWritableDirectory, DurableWriteError, writeFileDurably } from './durable-file.js';

const INPUT_KEY = 'flocktrain.input';

export function writeModelFile(
  path: string,
  spec: ModelSpec,
  params: Float32Array,
  config: RunConfig,
  weightsHash: string,
  input: ModelInput | null = null,
): void {
  const metadata = {
    format: 'pt',
    'flocktrain.spec': JSON.stringify(spec),
    'flocktrain.config': JSON.stringify(config),
    'flocktrain.weightsHash': weightsHash,
    ...(input === null ? {} : { [INPUT_KEY]: JSON.stringify(input) }),
  };
  const bytes = encodeSafetensors(paramLayout(spec), params, metadata);
  try {
    writeFileDurably(path, bytes);
  } catch (err) {
    if (err instanceof DurableWriteError) throw new ModelFileError(err.message);
    throw err;
  }
}

/** Refuses, before any training, an --out that could not be written: a missing or read-only directory. */
export function checkOutPath(path: string): void {
  try {
    checkWritableDirectory(path);
  } catch (err) {
    if (err instanceof DurableWriteError) throw new ModelFileError(`--out ${err.message}`);
    throw err;
  }
}

/**
 * Writes the final model file; when that fails, saves the run's state with `rescue`
 * (a checkpoint path, or null) and throws one line saying where it is and how to get
 * the model file from it.
 */
export function writeModelFileOrRescue(
  path: string,
  spec: ModelSpec,
  params: Float32Array,
  config: RunConfig,
  weightsHash: string,
  rescue: () => string | null,
  input: ModelInput | null = null,
): void {
  try {
    writeModelFile(path, spec, params, config, weightsHash, input);
  } catch (err) {
    if (!(err instanceof ModelFileError)) throw err;
    let saved: string;
    try {
      const ckpt = rescue();
      saved =
        ckpt === null
          ? 'no rescue checkpoint was written (a warning above names the newest good one)'
          : `the trained state is saved in ${resolve(ckpt)}; rerun with the same flags and --resume ` +
            `${resolve(dirname(ckpt))} to write it`;
    } catch (rescueErr) {
      saved = `no rescue checkpoint either: ${(rescueErr as Error).message}`;
    }
    throw new ModelFileError(`${err.message}; ${saved}`);
  }
}

function readBytes(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path)); // a plain copy: decodeSafetensors slices, and Buffer.slice does not copy
  } catch (err) {
    throw new ModelFileError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A model file as `predict` and `evaluate` use it: everything needed to turn raw rows into outputs. */
export interface LoadedModel {
  readonly spec: ModelSpec;
  readonly params: Float32Array;
  readonly input: ModelInput;
  /** The kernel set it was trained with, where this engine has it (then outputs equal the trainer's bits); else js. */
  readonly kernels: KernelSetName;
}

/** Reads a model file with its spec and input description, each validated; one-line ModelFileError otherwise. */
export function loadModelFile(path: string): LoadedModel {
  const bytes = readBytes(path);
  try {
    const file = decodeSafetensors(bytes);
    const specText = file.metadata['flocktrain.spec'];
    const inputText = file.metadata[INPUT_KEY];
    if (specText === undefined) throw new ModelFileError('not a flocktrain model file (no flocktrain.spec metadata)');
    if (inputText === undefined)
      throw new ModelFileError('no input description (flocktrain.input): write it again with this version');
    const spec = validateSpec(parseJson(specText));
    const params = readModelFile(path, spec, bytes);
    const trained = (parseJson(file.metadata['flocktrain.config'] ?? '{}') as { kernels?: unknown } | null)?.kernels;
    const kernels = trained === 'wasm' && kernelSetAvailable('wasm') ? 'wasm' : 'js';
    return { spec, params, input: validateModelInput(parseJson(inputText), spec.inputSize), kernels };
  } catch (err) {
    if (err instanceof FlocktrainError && !err.message.startsWith(path))
      throw new ModelFileError(`${path}: ${err.message.replace(/^safetensors: /, '')}`);
    throw err;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ModelFileError('metadata is not valid JSON');
  }
}

export function readModelFile(path: string, spec: ModelSpec, bytes: Uint8Array = readBytes(path)): Float32Array {
  try {
    const params = loadParams(paramLayout(spec), decodeSafetensors(bytes));
    for (let i = 0; i < params.length; i++) {
      if (!Number.isFinite(params[i]))
        throw new ModelFileError(`parameter ${i} is ${params[i]}; a model to train from must be finite`);
    }
    return params;
  } catch (err) {
    if (err instanceof ModelFileError) throw new ModelFileError(`${path}: ${err.message}`);
    throw err;
  }
}
