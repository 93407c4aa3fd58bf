#!/usr/bin/env node
// The flocktrain command line: `coordinator`, `worker` and `train`. This file only
// declares flags (each with its default, in --help) and turns them into typed
// options; the commands live in their own files. Errors meant for users print as
// one line, never a stack trace.

import { availableParallelism } from 'node:os';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { FlocktrainError } from '../shared/errors.js';
import { kernelSetAvailable } from '../shared/kernels/kernel-set.js';
import { parseInputShape } from '../shared/model/layers-flag.js';
import { RUN_DEFAULTS, resolveConfig, type DataSource, type RunConfig } from './config.js';
import type { LogFormat } from './logger.js';

export interface CommonOptions {
  readonly logFormat: LogFormat;
  readonly logLevel: string;
}

export interface TrainOptions extends CommonOptions {
  readonly config: RunConfig;
  readonly init: string | null;
  readonly out: string | null;
  readonly logEvery: number;
  /** Write checkpoints here (at epoch ends, every checkpointEvery steps, and on interruption). */
  readonly checkpointDir: string | null;
  readonly checkpointEvery: number;
  readonly keepCheckpoints: number;
  /** Continue from the newest checkpoint in this directory. */
  readonly resume: string | null;
}

export interface CoordinatorOptions extends TrainOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string | null;
  readonly workers: number;
  readonly minWorkers: number;
  readonly taskTimeoutMinMs: number;
  readonly taskTimeoutMaxMs: number;
}

export interface WorkerOptions extends CommonOptions {
  readonly url: string;
  readonly token: string;
  readonly cacheDir: string | null;
  readonly name: string | null;
  /** Seconds to keep trying to reconnect after losing the coordinator. */
  readonly reconnectFor: number;
  /** Seconds without a ping or message from the coordinator before the connection is dropped. */
  readonly silenceTimeout: number;
  /** Compute threads (1: compute on the main thread, no worker_threads). */
  readonly threads: number;
  readonly faults: WorkerFaults;
}

/** Deliberate misbehaviour, for fault-injection tests and benchmarks only. */
export interface WorkerFaults {
  /** Take this many times as long per task (1: normal speed). */
  readonly slowdown: number;
  /** Hold every result back this many ms before sending it. */
  readonly delayMs: number;
}

const DATASETS = ['mnist', 'spirals', 'blobs', 'regression'] as const;

function commonFlags<T>(y: Argv<T>) {
  return y
    .option('log-format', {
      choices: ['auto', 'json', 'pretty'] as const,
      default: 'auto' as const,
      describe: 'log lines as JSON, pretty, or pretty only when stdout is a terminal',
    })
    .option('log-level', {
      choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const,
      default: 'info',
      describe: 'least severe log level printed',
    });
}

function runFlags<T>(y: Argv<T>) {
  const d = RUN_DEFAULTS;
  return commonFlags(y)
    .option('dataset', {
      choices: DATASETS,
      default: 'mnist' as const,
      describe: 'built-in dataset (ignored with --csv)',
    })
    .option('samples', { type: 'number', default: 1000, describe: 'samples to generate for a synthetic dataset' })
    .option('csv', { type: 'string', describe: 'train on a CSV file with a header row instead of a built-in dataset' })
    .option('label-column', {
      type: 'string',
      default: 'label',
      describe: 'CSV column holding the label (class name/integer, or a number with --loss mse)',
    })
    .option('standardize', {
      type: 'boolean',
      default: d.standardize,
      describe: 'standardize CSV features with training-set mean and std (--no-standardize to turn off)',
    })
    .option('val-fraction', {
      type: 'number',
      default: d.valFraction,
      describe: 'fraction held out for validation (MNIST always holds out 2,000)',
    })
    .option('hidden', {
      type: 'string',
      default: d.hidden.join(','),
      describe: 'hidden layer widths, comma-separated ("" for none)',
    })
    .option('activation', {
      choices: ['relu', 'sigmoid', 'tanh'] as const,
      default: d.activation,
      describe: 'activation after each hidden layer',
    })
    .option('layers', {
      type: 'string',
      describe:
        'the model as comma-separated layers, e.g. conv2d:16:5,relu,maxpool2d:2,flatten,dense:10 (replaces --hidden/--activation)',
    })
    .option('input-shape', {
      type: 'string',
      describe: 'CSV features as an image CxHxW for --layers (MNIST is 1x28x28)',
    })
    .option('loss', {
      choices: ['auto', 'cross_entropy', 'mse'] as const,
      default: 'auto' as const,
      describe: 'loss; auto: cross_entropy for class labels, mse for numeric targets',
    })
    .option('epochs', { type: 'number', default: d.epochs, describe: 'passes over the training set' })
    .option('batch-size', {
      type: 'number',
      default: d.batchSize,
      describe: 'samples per optimizer step (global batch)',
    })
    .option('shard-size', {
      type: 'number',
      default: d.shardSize,
      describe: 'samples per micro-shard, the unit of work (independent of the worker count)',
    })
    .option('lr', { type: 'number', default: d.lr, describe: 'learning rate' })
    .option('momentum', { type: 'number', default: d.momentum, describe: 'SGD momentum (0 = none)' })
    .option('nesterov', { type: 'boolean', default: d.nesterov, describe: 'use Nesterov momentum' })
    .option('weight-decay', { type: 'number', default: d.weightDecay, describe: 'L2 weight decay' })
    .option('seed', {
      type: 'number',
      default: d.seed,
      describe: 'seed of every random choice (init, split, data order)',
    })
    .option('kernels', {
      choices: ['auto', 'wasm', 'js'] as const,
      default: 'auto' as const,
      describe:
        'compute kernels of the whole run (wasm: WebAssembly SIMD; js: plain JS); auto: wasm when this engine has WebAssembly SIMD. The two give different bits',
    })
    .option('wire-dtype', {
      choices: ['f32', 'bf16'] as const,
      default: d.wireDtype,
      describe:
        'number format of weights and gradients on the wire; bf16 halves the bytes, rounding at fixed points: deterministic, but other bits than f32',
    })
    .option('init', { type: 'string', describe: 'start from the weights in this safetensors file' })
    .option('out', { type: 'string', describe: 'write the final weights to this safetensors file' })
    .option('log-every', { type: 'number', default: 10, describe: 'log a step line every N steps' })
    .option('checkpoint-dir', {
      type: 'string',
      describe: 'write checkpoints here: every epoch end, on Ctrl-C, and every --checkpoint-every steps',
    })
    .option('checkpoint-every', {
      type: 'number',
      default: 0,
      describe: 'also checkpoint every N steps (0: only at epoch ends and on interruption)',
    })
    .option('keep-checkpoints', { type: 'number', default: 3, describe: 'checkpoints kept in --checkpoint-dir' })
    .option('resume', {
      type: 'string',
      describe: 'continue exactly from the newest checkpoint in this directory (same flags; --epochs may grow)',
    });
}

type RunArgs = Awaited<ReturnType<typeof runFlags<object>>['argv']>;

function parseHidden(text: string): number[] {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === 'none') return [];
  return trimmed.split(',').map((part) => {
    const n = Number(part.trim());
    if (!Number.isInteger(n) || n <= 0)
      throw new FlocktrainError(
        'CONFIG',
        `--hidden expects comma-separated positive integers like 128,64, got "${text}"`,
      );
    return n;
  });
}

function trainOptions(a: RunArgs): TrainOptions {
  const data: DataSource =
    a.csv !== undefined
      ? { kind: 'csv', path: a.csv, labelColumn: a['label-column'] }
      : a.dataset === 'mnist'
        ? { kind: 'mnist' }
        : { kind: 'synthetic', name: a.dataset, samples: a.samples };
  const config = resolveConfig({
    data,
    hidden: parseHidden(a.hidden),
    activation: a.activation,
    layers: a.layers ?? null,
    inputShape: a['input-shape'] === undefined ? null : parseInputShape(a['input-shape']),
    loss: a.loss === 'auto' ? null : a.loss,
    epochs: a.epochs,
    batchSize: a['batch-size'],
    shardSize: a['shard-size'],
    lr: a.lr,
    momentum: a.momentum,
    nesterov: a.nesterov,
    weightDecay: a['weight-decay'],
    seed: a.seed,
    valFraction: a['val-fraction'],
    standardize: a.standardize,
    kernels: a.kernels === 'auto' ? (kernelSetAvailable('wasm') ? 'wasm' : 'js') : a.kernels,
    wireDtype: a['wire-dtype'],
  });
  if (!(Number.isInteger(a['log-every']) && a['log-every'] > 0))
    throw new FlocktrainError('CONFIG', `--log-every must be a positive integer, got ${a['log-every']}`);
  if (!(Number.isInteger(a['checkpoint-every']) && a['checkpoint-every'] >= 0))
    throw new FlocktrainError('CONFIG', `--checkpoint-every must be an integer ≥ 0, got ${a['checkpoint-every']}`);
  if (!(Number.isInteger(a['keep-checkpoints']) && a['keep-checkpoints'] >= 1))
    throw new FlocktrainError('CONFIG', `--keep-checkpoints must be an integer ≥ 1, got ${a['keep-checkpoints']}`);
  if (a.resume !== undefined && a.init !== undefined)
    throw new FlocktrainError(
      'CONFIG',
      '--resume and --init cannot be combined: a checkpoint already holds the weights',
    );
  return {
    config,
    init: a.init ?? null,
    out: a.out ?? null,
    logEvery: a['log-every'],
    checkpointDir: a['checkpoint-dir'] ?? a.resume ?? null,
    checkpointEvery: a['checkpoint-every'],
    keepCheckpoints: a['keep-checkpoints'],
    resume: a.resume ?? null,
    logFormat: a['log-format'],
    logLevel: a['log-level'],
  };
}

function fail(message: string, code: number): never {
  process.stderr.write(`flocktrain: ${message}\n`);
  process.exit(code);
}

async function guarded(run: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await run();
  } catch (err) {
    if (err instanceof FlocktrainError) fail(err.message, 1);
    throw err;
  }
}

/** yargs would turn a repeated numeric flag into a sum; refuse the ambiguity instead. */
function refuseRepeatedFlags(argv: string[]): void {
  const seen = new Set<string>();
  for (const arg of argv) {
    if (arg === '--') break;
    if (!arg.startsWith('--')) continue;
    const name = arg.slice(2).split('=')[0].replace(/^no-/, '');
    if (seen.has(name)) fail(`--${name} is given more than once`, 2);
    seen.add(name);
  }
}

export async function main(argv: string[]): Promise<void> {
  refuseRepeatedFlags(argv);
  await yargs(argv)
    .scriptName('flocktrain')
    .usage(
      '$0 <command> [options]\n\nDistributed data-parallel training over WebSocket workers, bit-identical to one process.',
    )
    .command(
      'train',
      'train in this process, no network: the reference distributed runs must equal',
      (y) =>
        runFlags(y).option('threads', {
          type: 'number',
          default: 1,
          describe:
            "compute threads for steps big enough to split (as a worker's --threads); same bits whatever the number",
        }),
      (a) =>
        guarded(async () => {
          const { runTrain } = await import('./run-train.js');
          if (!(Number.isInteger(a.threads) && a.threads >= 1))
            throw new FlocktrainError('CONFIG', `--threads must be an integer ≥ 1, got ${a.threads}`);
          return runTrain(trainOptions(a), a.threads);
        }),
    )
    .command(
      'coordinator',
      'serve workers over WebSocket and train with them',
      (y) =>
        runFlags(y)
          .option('host', {
            type: 'string',
            default: '127.0.0.1',
            describe: 'address to listen on (0.0.0.0 accepts other machines)',
          })
          .option('port', {
            type: 'number',
            default: 8787,
            describe: 'port for WebSocket and HTTP (0 picks a free one)',
          })
          .option('token', {
            type: 'string',
            describe: 'token workers must present (default: a random one, printed at startup)',
          })
          .option('workers', { type: 'number', default: 0, describe: 'local worker processes to spawn' })
          .option('min-workers', { type: 'number', default: 1, describe: 'workers to wait for before the first step' })
          .option('task-timeout-min', {
            type: 'number',
            default: 2000,
            describe: 'ms: shortest deadline of a task before its shards go to another worker',
          })
          .option('task-timeout-max', {
            type: 'number',
            default: 60000,
            describe: "ms: longest deadline (used before a worker's speed is known)",
          }),
      (a) =>
        guarded(async () => {
          const { runCoordinator } = await import('./run-coordinator.js');
          for (const [flag, v, min] of [
            ['port', a.port, 0],
            ['workers', a.workers, 0],
            ['min-workers', a['min-workers'], 1],
          ] as const) {
            if (!(Number.isInteger(v) && v >= min && v <= 65535))
              throw new FlocktrainError('CONFIG', `--${flag} must be an integer ≥ ${min}, got ${v}`);
          }
          const [tmin, tmax] = [a['task-timeout-min'], a['task-timeout-max']];
          if (!(Number.isFinite(tmin) && tmin > 0 && tmax >= tmin))
            throw new FlocktrainError(
              'CONFIG',
              `--task-timeout-min must be > 0 and ≤ --task-timeout-max, got ${tmin} and ${tmax}`,
            );
          return runCoordinator({
            ...trainOptions(a),
            host: a.host,
            port: a.port,
            token: a.token ?? null,
            workers: a.workers,
            minWorkers: a['min-workers'],
            taskTimeoutMinMs: tmin,
            taskTimeoutMaxMs: tmax,
          });
        }),
    )
    .command(
      'worker',
      'compute gradients for a coordinator',
      (y) =>
        commonFlags(y)
          .option('url', {
            type: 'string',
            demandOption: true,
            describe: 'coordinator WebSocket URL, e.g. ws://host:8787',
          })
          .option('token', { type: 'string', demandOption: true, describe: 'token printed by the coordinator' })
          .option('cache-dir', {
            type: 'string',
            describe: 'where fetched datasets are cached by hash (default ~/.cache/flocktrain)',
          })
          .option('name', { type: 'string', describe: 'name shown in the coordinator log (default: hostname and pid)' })
          .option('reconnect-for', {
            type: 'number',
            default: 300,
            describe: 'seconds to keep reconnecting (with backoff) after losing the coordinator',
          })
          .option('silence-timeout', {
            type: 'number',
            default: 20,
            describe:
              'seconds without a ping or message from the coordinator (it pings every 5) before dropping the connection and reconnecting',
          })
          .option('threads', {
            type: 'number',
            default: availableParallelism(),
            describe:
              "compute threads (default: this machine's cores; 1: no worker threads); same bits whatever the number",
          })
          .option('fault-slowdown', {
            type: 'number',
            default: 1,
            hidden: true,
            describe: 'testing: run this many times slower',
          })
          .option('fault-delay-ms', {
            type: 'number',
            default: 0,
            hidden: true,
            describe: 'testing: hold each result back this many ms',
          }),
      (a) =>
        guarded(async () => {
          const { runWorker } = await import('../worker/node-main.js');
          if (!(Number.isFinite(a['reconnect-for']) && a['reconnect-for'] >= 0))
            throw new FlocktrainError('CONFIG', `--reconnect-for must be ≥ 0 seconds, got ${a['reconnect-for']}`);
          if (!(Number.isInteger(a.threads) && a.threads >= 1))
            throw new FlocktrainError('CONFIG', `--threads must be an integer ≥ 1, got ${a.threads}`);
          if (!(Number.isFinite(a['silence-timeout']) && a['silence-timeout'] > 5))
            throw new FlocktrainError(
              'CONFIG',
              `--silence-timeout must be more than the coordinator's 5 s ping period, got ${a['silence-timeout']}`,
            );
          if (!(a['fault-slowdown'] >= 1 && a['fault-delay-ms'] >= 0))
            throw new FlocktrainError('CONFIG', 'fault flags: --fault-slowdown must be ≥ 1 and --fault-delay-ms ≥ 0');
          return runWorker({
            url: a.url,
            token: a.token,
            cacheDir: a['cache-dir'] ?? null,
            name: a.name ?? null,
            logFormat: a['log-format'],
            logLevel: a['log-level'],
            reconnectFor: a['reconnect-for'],
            silenceTimeout: a['silence-timeout'],
            threads: a.threads,
            faults: { slowdown: a['fault-slowdown'], delayMs: a['fault-delay-ms'] },
          });
        }),
    )
    .demandCommand(1, 'name a command: coordinator, worker or train')
    .strict()
    .help()
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      if (err instanceof FlocktrainError) fail(err.message, 1);
      if (err) throw err;
      fail(`${msg.replace(/\s*\n\s*/g, ' ')} (see --help)`, 2);
    })
    .parseAsync();
}

await main(hideBin(process.argv));
