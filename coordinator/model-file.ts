// Reading and writing model files (safetensors) on disk: --out and --init. The file
// holds one f32 tensor per parameter, named as a PyTorch nn.Sequential of the same
// layers would name them, and the model spec and training config in __metadata__.

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { ModelFileError } from '../shared/errors.js';
import { decodeSafetensors, encodeSafetensors, loadParams } from '../shared/model/safetensors.js';
import { paramLayout, type ModelSpec } from '../shared/model/spec.js';
import type { RunConfig } from './config.js';

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
  // Write beside and rename, so an interrupted write never leaves half a file at `path`.
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (err) {
    throw new ModelFileError(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
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
