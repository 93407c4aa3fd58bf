// Checkpoints: everything needed to continue a run exactly where it stopped. One
// safetensors file per checkpoint holds the weights (named as in --out files), the
// optimizer state as extra tensors, and in __metadata__ the position in the data
// order (epoch, step), the epoch's running statistics, the config, the model spec,
// the dataset hash and a SHA-256 over all tensor bytes. Because the data order is a
// function of (seed, epoch), (epoch, step) is the whole data-order state.
//
// Writes are durable (durable-file.ts: every byte written, fsynced, read back and
// verified before the rename) and the last `keep` checkpoints are kept, an old one
// deleted only once its successor is verified in place. CheckpointWriter decides what
// a failed write means for the run. Loading verifies the checksum and refuses a file
// made for another model, dataset or config with a one-line CheckpointError, before
// any state is touched.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CheckpointError, FlocktrainError } from '../shared/errors.js';
import { decodeSafetensors, encodeSafetensors, loadParams } from '../shared/model/safetensors.js';
import { paramLayout, type ModelSpec, type ParamLayout } from '../shared/model/spec.js';
import { RUN_DEFAULTS, type RunConfig } from './config.js';
import { DurableWriteError, writeFileDurably } from './durable-file.js';

const FORMAT = 1;
const FILE_PATTERN = /^ckpt-(\d{9})\.safetensors$/;
/** A temp file of writeFileDurably's, with the pid of the process writing it. */
const TEMP_PATTERN = /^ckpt-\d{9}\.safetensors\.tmp-(\d+)$/;
const STATE_KEY = 'flocktrain.checkpoint';

/** Where the run stands; with the weights and optimizer state, all a resume needs. */
export interface TrainingState {
  /** Epoch in progress, from 0. */
  readonly epoch: number;
  /** Next step to run within that epoch, from 0. */
  readonly stepInEpoch: number;
  /** Optimizer steps taken so far in the whole run. */
  readonly globalStep: number;
  /** Weights version: equals globalStep unless a rollback republished older weights under a new one; only grows. */
  readonly version: number;
  /** The epoch's running sums so far, so its `epoch` log line is exact after a resume. */
  readonly epochLossSum: number;
  readonly epochCorrect: number;
  readonly epochSamples: number;
  readonly epochSeconds: number;
  /**
   * Best validation loss at an epoch end so far (null: none yet), and epochs since; for --early-stop and --out-best.
   */
  readonly bestValLoss?: number | null;
  readonly epochsSinceBest?: number;
}

export interface Checkpoint {
  readonly state: TrainingState;
  readonly params: Float32Array;
  readonly optimizer: Record<string, Float32Array>;
}

interface Identity {
  readonly spec: ModelSpec;
  readonly config: RunConfig;
  readonly datasetHash: string;
}

interface Metadata {
  format: number;
  state: TrainingState;
  spec: ModelSpec;
  config: RunConfig;
  datasetHash: string;
  optimizer: string[];
  checksum: string;
}

function checkpointFileName(globalStep: number): string {
  return `ckpt-${String(globalStep).padStart(9, '0')}.safetensors`;
}

/** The weights, then each optimizer tensor (`sizes[i]` floats: P for moments, a few for counters). */
function fullLayout(spec: ModelSpec, optimizerNames: readonly string[], sizes: readonly number[]): ParamLayout {
  const model = paramLayout(spec);
  let offset = model.totalSize;
  const extra = optimizerNames.map((name, i) => {
    const t = { name: `optimizer.${name}`, shape: [sizes[i]], offset, size: sizes[i] };
    offset += sizes[i];
    return t;
  });
  return { tensors: [...model.tensors, ...extra], totalSize: offset };
}

function checksum(buffer: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength))
    .digest('hex');
}

/**
 * Writes a checkpoint durably into `dir`, then removes all but the newest `keep`. Returns
 * its path; throws CheckpointWriteError, leaving the directory as it was.
 */
export function writeCheckpoint(dir: string, id: Identity, ckpt: Checkpoint, keep: number): string {
  const names = Object.keys(ckpt.optimizer).sort();
  const sizes = names.map((name) => ckpt.optimizer[name].length);
  const layout = fullLayout(id.spec, names, sizes);
  const buffer = new Float32Array(layout.totalSize);
  buffer.set(ckpt.params, 0);
  let offset = ckpt.params.length;
  for (const name of names) {
    buffer.set(ckpt.optimizer[name], offset);
    offset += ckpt.optimizer[name].length;
  }
  const meta: Metadata = {
    format: FORMAT,
    state: ckpt.state,
    spec: id.spec,
    config: id.config,
    datasetHash: id.datasetHash,
    optimizer: names,
    checksum: checksum(buffer),
  };
  const bytes = encodeSafetensors(layout, buffer, {
    format: 'pt',
    [STATE_KEY]: JSON.stringify(meta),
  });
  const path = join(dir, checkpointFileName(ckpt.state.globalStep));
  try {
    mkdirSync(dir, { recursive: true });
    writeFileDurably(path, bytes);
  } catch (err) {
    if (err instanceof DurableWriteError) throw new CheckpointWriteError(err);
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new CheckpointWriteError(new DurableWriteError(dir, code));
  }
  // Only now, with its successor verified in place, may an older checkpoint go.
  for (const old of listCheckpoints(dir).slice(0, -keep)) {
    try {
      unlinkSync(join(dir, old));
    } catch {
      /* already gone */
    }
  }
  return path;
}

/** A checkpoint that was not written; the directory holds what it held before. */
export class CheckpointWriteError extends CheckpointError {
  /** Out of space or descriptors (or the bytes read back differed): a later write may succeed. */
  readonly exhausted: boolean;

  constructor(cause: DurableWriteError) {
    super(cause.message.replace(/^cannot write /, 'cannot write checkpoint '));
    this.exhausted = cause.exhausted;
  }
}

/**
 * Writes a run's checkpoints and decides what a failed one means. Out of space or
 * descriptors, one checkpoint is skipped with a `warn` while the directory still holds
 * a good one (the run goes on, and a later checkpoint may succeed once space is
 * freed); with none to fall back on, or on any other failure, the error ends the run.
 */
export class CheckpointWriter {
  readonly #id: Identity;
  readonly #log: Logger;
  /** The newest checkpoint this writer put in place, per directory. */
  readonly #written = new Map<string, string>();
  /** Directories already cleared of stale temp files. */
  readonly #swept = new Set<string>();

  constructor(id: Identity, log: Logger) {
    this.#id = id;
    this.#log = log;
  }

  /** The path written, or null when this checkpoint was skipped (and a good one remains). */
  save(dir: string, ckpt: Checkpoint, keep: number): string | null {
    const { epoch, globalStep } = ckpt.state;
    if (!this.#swept.has(dir)) {
      this.#swept.add(dir);
      removeStaleTemps(dir, this.#log);
    }
    let path: string;
    try {
      path = writeCheckpoint(dir, this.#id, ckpt, keep);
    } catch (err) {
      if (!(err instanceof CheckpointWriteError) || !err.exhausted) throw err;
      const kept = this.#written.get(dir) ?? this.#loadable(dir);
      if (kept === null)
        throw new CheckpointError(`${err.message}, and ${dir} holds no good checkpoint to fall back on`);
      this.#log.warn(
        { err: err.message, epoch: epoch + 1, step: globalStep, kept, resume: `--resume ${dir}` },
        'checkpoint skipped',
      );
      return null;
    }
    this.#written.set(dir, path);
    this.#log.info({ path, epoch: epoch + 1, step: globalStep, resume: `--resume ${dir}` }, 'checkpoint');
    return path;
  }

  /** The newest checkpoint in `dir` that loads for this run (one it was resumed from), or null. */
  #loadable(dir: string): string | null {
    try {
      return loadLatestCheckpoint(dir, this.#id).path;
    } catch {
      return null;
    }
  }
}

/**
 * Removes temp files left by processes no longer running (killed mid-write): on a
 * full disk they hold the very space the next checkpoint needs.
 */
function removeStaleTemps(dir: string, log: Logger): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(TEMP_PATTERN.exec(name)?.[1] ?? Number.NaN);
    if (Number.isNaN(pid) || isRunning(pid)) continue;
    try {
      unlinkSync(join(dir, name));
      log.info({ path: join(dir, name) }, 'removed a temp file of an interrupted checkpoint write');
    } catch {
      /* gone already, or not ours to remove */
    }
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** Checkpoint file names in `dir`, oldest first. */
export function listCheckpoints(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => FILE_PATTERN.test(n)).sort();
}

/** Loads the newest checkpoint in `dir`, checked against this run's identity. */
export function loadLatestCheckpoint(dir: string, id: Identity): { path: string; checkpoint: Checkpoint } {
  const names = listCheckpoints(dir);
  if (names.length === 0) throw new CheckpointError(`no checkpoint (ckpt-*.safetensors) in ${dir}`);
  const path = join(dir, names[names.length - 1]);
  return { path, checkpoint: loadCheckpoint(path, id) };
}

export function loadCheckpoint(path: string, id: Identity): Checkpoint {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new CheckpointError(
      `cannot read checkpoint ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  try {
    const file = decodeSafetensors(bytes);
    const meta = parseMetadata(file.metadata[STATE_KEY]);
    checkIdentity(meta, id);
    // Each optimizer tensor's size is the file's own (loadParams checks it is present); the
    // optimizer's loadState judges it, and the checksum covers it.
    const sizes = meta.optimizer.map((name) => file.tensors.get(`optimizer.${name}`)?.data.length ?? 0);
    const layout = fullLayout(meta.spec, meta.optimizer, sizes);
    const buffer = loadParams(layout, file);
    if (checksum(buffer) !== meta.checksum)
      throw new CheckpointError('tensor bytes do not match the stored checksum (the file is corrupt)');
    const P = paramLayout(meta.spec).totalSize;
    const optimizer: Record<string, Float32Array> = {};
    let offset = P;
    meta.optimizer.forEach((name, i) => {
      optimizer[name] = buffer.slice(offset, offset + sizes[i]);
      offset += sizes[i];
    });
    return { state: meta.state, params: buffer.slice(0, P), optimizer };
  } catch (err) {
    if (err instanceof FlocktrainError)
      throw new CheckpointError(`${path}: ${err.message.replace(/^safetensors: /, '')}`);
    throw err;
  }
}

function parseMetadata(text: string | undefined): Metadata {
  if (text === undefined) throw new CheckpointError('not a flocktrain checkpoint (no checkpoint metadata)');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new CheckpointError('checkpoint metadata is not valid JSON');
  }
  const m = v as Partial<Metadata> & { state?: Partial<TrainingState> };
  if (typeof m !== 'object' || m === null || m.format !== FORMAT)
    throw new CheckpointError(
      `unsupported checkpoint format ${String((m as { format?: unknown } | null)?.format)} (expected ${FORMAT})`,
    );
  const s = m.state;
  const ints = ['epoch', 'stepInEpoch', 'globalStep', 'version', 'epochCorrect', 'epochSamples'] as const;
  if (typeof s !== 'object' || s === null || ints.some((k) => !Number.isInteger(s[k]) || (s[k] as number) < 0))
    throw new CheckpointError('checkpoint state is incomplete or invalid');
  if (!Number.isFinite(s.epochLossSum) || !Number.isFinite(s.epochSeconds))
    throw new CheckpointError('checkpoint state has non-finite statistics');
  if (s.bestValLoss !== undefined && s.bestValLoss !== null && !Number.isFinite(s.bestValLoss))
    throw new CheckpointError('checkpoint state: bestValLoss must be null or a finite number');
  if (s.epochsSinceBest !== undefined && !(Number.isInteger(s.epochsSinceBest) && s.epochsSinceBest >= 0))
    throw new CheckpointError('checkpoint state: epochsSinceBest must be an integer ≥ 0');
  if (!Array.isArray(m.optimizer) || m.optimizer.some((n) => typeof n !== 'string' || !/^[a-z]+$/.test(n)))
    throw new CheckpointError('checkpoint optimizer state list is invalid');
  if (
    typeof m.checksum !== 'string' ||
    typeof m.datasetHash !== 'string' ||
    typeof m.spec !== 'object' ||
    typeof m.config !== 'object'
  )
    throw new CheckpointError('checkpoint metadata is incomplete');
  return m as Metadata;
}

/** Refuses a checkpoint of another run; only the number of epochs may grow (not under cosine or linear decay). */
function checkIdentity(meta: Metadata, id: Identity): void {
  if (meta.datasetHash !== id.datasetHash)
    throw new CheckpointError(
      `made for dataset ${meta.datasetHash.slice(0, 12)}…, this run's is ${id.datasetHash.slice(0, 12)}…`,
    );
  if (JSON.stringify(meta.spec) !== JSON.stringify(id.spec))
    throw new CheckpointError(`made for model ${JSON.stringify(meta.spec)}, this run's is ${JSON.stringify(id.spec)}`);
  const stored = meta.config as unknown as Record<string, unknown>;
  const current = id.config as unknown as Record<string, unknown>;
  const defaults = RUN_DEFAULTS as unknown as Record<string, unknown>;
  for (const key of Object.keys(current)) {
    // A schedule that decays to the run's end would take other rates from here on.
    if (key === 'epochs' && (current.lrSchedule === 'cosine' || current.lrSchedule === 'linear')) {
      if (stored.epochs !== current.epochs)
        throw new CheckpointError(
          `made with epochs=${JSON.stringify(stored.epochs)}; a ${String(current.lrSchedule)} schedule decays to the ` +
            `run's end, so --epochs cannot change on resume`,
        );
      continue;
    }
    if (key === 'epochs') continue;
    // A checkpoint written before a setting existed ran with its default.
    const was = key in stored ? stored[key] : defaults[key];
    if (JSON.stringify(was) !== JSON.stringify(current[key])) {
      throw new CheckpointError(
        `made with ${key}=${JSON.stringify(was)}, this run has ${key}=${JSON.stringify(current[key])}`,
      );
    }
  }
}
