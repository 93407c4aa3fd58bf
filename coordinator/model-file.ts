// Reading and writing model files (safetensors) on disk: --out and --init. The file
// holds one f32 tensor per parameter, named as a PyTorch nn.Sequential of the same
// layers would name them, and the model spec and training config in __metadata__.
// Written durably (durable-file.ts); --out's directory is checked before training, and
// a final write that fails leaves a rescue checkpoint to write it from later.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ModelFileError } from '../shared/errors.js';
import { decodeSafetensors, encodeSafetensors, loadParams } from '../shared/model/safetensors.js';
import { paramLayout, type ModelSpec } from '../shared/model/spec.js';
import type { RunConfig } from './config.js';
import { checkWritableDirectory, DurableWriteError, writeFileDurably } from './durable-file.js';

export function writeModelFile(
  path: string,
  spec: ModelSpec,
  params: Float32Array,
  config: RunConfig,
  weightsHash: string,
): void {
  const metadata = {
    format: 'pt',
    'flocktrain.spec': JSON.stringify(spec),
    'flocktrain.config': JSON.stringify(config),
    'flocktrain.weightsHash': weightsHash,
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
): void {
  try {
    writeModelFile(path, spec, params, config, weightsHash);
  } catch (err) {
    if (!(err instanceof ModelFileError)) throw err;
    let saved: string;
    try {
      const ckpt = rescue();
      saved =
        ckpt === null
          ? 'no rescue checkpoint was written (a warning above names the newest good one)'
          : `the trained state is saved in ${resolve(ckpt)}; rerun with the same flags and --resume ${resolve(dirname(ckpt))} to write it`;
    } catch (rescueErr) {
      saved = `no rescue checkpoint either: ${(rescueErr as Error).message}`;
    }
    throw new ModelFileError(`${err.message}; ${saved}`);
  }
}

export function readModelFile(path: string, spec: ModelSpec): Float32Array {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path)); // a plain copy: decodeSafetensors slices, and Buffer.slice does not copy
  } catch (err) {
    throw new ModelFileError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
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
