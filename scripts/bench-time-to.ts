// Time to 98% validation accuracy, part of `npm run bench -- --anchors`: the CNN of the
// MNIST recipe, Conv2d(1,16,5)-ReLU-MaxPool(2)-Conv2d(16,32,5)-ReLU-MaxPool(2)-Flatten-
// Linear(512,10), SGD lr 0.01 momentum 0.9, batch 64, up to 15 epochs, one compute thread
// per process, trained by `flocktrain train`, by `flocktrain coordinator` with 2 local
// Node workers, and by PyTorch (the anchor torch_cnn.py) in the same run. Each system's
// per-epoch lines give the epochs and seconds to the target, median samples/s and the
// best accuracy. The data differ in one respect the table names: flocktrain scales the
// pixels to [0, 1], the anchor standardizes them.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CNN_LAYERS } from './link/bench-links.js';

const TARGET = 0.98;
const MAX_EPOCHS = 15;
const TOKEN = 'bench-time-to-0123456789';
const RECIPE = ['--lr', '0.01', '--momentum', '0.9', '--batch-size', '64'];

/** One epoch as its system reported it. */
interface Epoch {
  readonly accuracy: number;
  /** Wall seconds of this epoch alone. */
  readonly seconds: number;
  readonly samplesPerSec: number;
}

interface Child {
  /** Its stdout so far. */
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves when it exits, with its exit code (null: killed or not started). */
  readonly code: Promise<number | null>;
  /** Resolves on the first stdout chunk matching `pattern`, with the match; rejects if it exits first. */
  readonly waitFor: (pattern: RegExp) => Promise<RegExpExecArray>;
  readonly kill: () => void;
}

function start(command: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd?: string): Child {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let waiters: { pattern: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    waiters = waiters.filter((w) => {
      const m = w.pattern.exec(out);
      if (m === null) return true;
      w.resolve(m);
      return false;
    });
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const code = new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('close', resolve);
  });
  const firstError = (): string => err.trim().split('\n')[0] ?? '';
  return {
    stdout: () => out,
    stderr: () => err,
    code,
    waitFor: (pattern) => {
      const m = pattern.exec(out);
      if (m !== null) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        waiters.push({ pattern, resolve });
        void code.then((c) => reject(new Error(`exited (${c}) before its ${pattern} line: ${firstError()}`)));
      });
    },
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] || 'failed';
}

/** The `epoch` lines of a flocktrain JSON log. */
function flocktrainEpochs(log: string): Epoch[] {
  const epochs: Epoch[] = [];
  let train = 0;
  for (const text of log.split('\n')) {
    let line: unknown;
    try {
      line = JSON.parse(text);
    } catch {
      continue; // not a log line
    }
    if (typeof line !== 'object' || line === null) continue;
    const l = line as Record<string, unknown>;
    if (typeof l.train === 'number' && typeof l.datasetHash === 'string') train = l.train;
    if (l.msg === 'epoch' && typeof l.valAccuracy === 'number' && typeof l.seconds === 'number')
      epochs.push({ accuracy: l.valAccuracy, seconds: l.seconds, samplesPerSec: train / l.seconds });
  }
  return epochs;
}

/** The anchor's lines `epoch acc N samples/s Ts`, the seconds cumulative since its start. */
function torchEpochs(out: string): Epoch[] {
  const epochs: Epoch[] = [];
  let before = 0;
  for (const m of out.matchAll(/^(\d+) ([\d.]+) (\d+) samples\/s ([\d.]+)s$/gm)) {
    const total = Number(m[4]);
    epochs.push({ accuracy: Number(m[2]), seconds: total - before, samplesPerSec: Number(m[3]) });
    before = total;
  }
  return epochs;
}

function cliRunArgs(): string[] {
  return ['--layers', CNN_LAYERS, ...RECIPE, '--epochs', String(MAX_EPOCHS), '--log-every', '1000000'];
}

async function flocktrainTrain(cli: string): Promise<Epoch[] | string> {
  const run = start(
    process.execPath,
    [cli, 'train', '--threads', '1', ...cliRunArgs(), '--log-format', 'json'],
    process.env,
  );
  if ((await run.code) !== 0) return firstLine(run.stderr());
  return flocktrainEpochs(run.stdout());
}

async function flocktrainCoordinator(cli: string, workers: number): Promise<Epoch[] | string> {
  const coordinator = start(
    process.execPath,
    [
      cli,
      'coordinator',
      '--port',
      '0',
      '--token',
      TOKEN,
      '--min-workers',
      String(workers),
      ...cliRunArgs(),
      '--log-format',
      'json',
    ],
    process.env,
  );
  const fleet: Child[] = [];
  try {
    const url = (await coordinator.waitFor(/"url":"(ws:[^"]+)"/))[1];
    for (let i = 0; i < workers; i++)
      fleet.push(
        start(
          process.execPath,
          [cli, 'worker', '--url', url, '--token', TOKEN, '--threads', '1', '--log-level', 'warn'],
          process.env,
        ),
      );
    if ((await coordinator.code) !== 0) return firstLine(coordinator.stderr());
    // Told to stop by the coordinator, the workers leave by themselves.
    await Promise.all(fleet.map((w) => w.code));
    return flocktrainEpochs(coordinator.stdout());
  } catch (e) {
    return (e as Error).message;
  } finally {
    coordinator.kill();
    for (const w of fleet) w.kill();
  }
}

async function torchAnchor(dir: string): Promise<Epoch[] | string> {
  const script = join(dir, 'torch_cnn.py');
  if (!existsSync(script)) return `${script} not found`;
  if (!existsSync('/usr/bin/python3')) return 'no /usr/bin/python3';
  // One thread, OpenBLAS left to pick its kernels, as the other PyTorch anchors run.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OMP_NUM_THREADS: '1',
    OPENBLAS_NUM_THREADS: '1',
    MKL_NUM_THREADS: '1',
  };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const run = start('/usr/bin/python3', [script, '0.01', String(MAX_EPOCHS)], env, dir);
  if ((await run.code) !== 0) return firstLine(run.stderr());
  return torchEpochs(run.stdout());
}

function fmt(v: number, digits = 0): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function row(system: string, result: Epoch[] | string): string {
  if (typeof result === 'string') return `| ${system} | failed: ${result.replace(/\|/g, '/')} | | | |`;
  if (result.length === 0) return `| ${system} | no epoch lines | | | |`;
  const reached = result.findIndex((e) => e.accuracy >= TARGET);
  const seconds = result.slice(0, reached + 1).reduce((sum, e) => sum + e.seconds, 0);
  const best = Math.max(...result.map((e) => e.accuracy));
  // Epoch 1 holds warm-up (and, distributed, the workers' joining): the median is of epochs 2.. where there are any.
  const rates = result.length > 1 ? result.slice(1) : result;
  const to = reached < 0 ? `not reached in ${result.length} | not reached` : `${reached + 1} | ${fmt(seconds, 1)}`;
  return `| ${system} | ${to} | ${fmt(median(rates.map((e) => e.samplesPerSec)))} | ${fmt(100 * best, 2)}% |`;
}

/**
 * Trains the CNN for 15 epochs with flocktrain train, flocktrain coordinator + 2 workers and
 * PyTorch (from the anchors in `dir`, null: unavailable), one after another, and prints one
 * table of when each first reached 98%.
 */
export async function benchTimeTo(cli: string, dir: string | null, say: (line: string) => void): Promise<void> {
  say(
    `| time to ${100 * TARGET}% validation accuracy: CNN conv 16k5-relu-maxpool 2-conv 32k5-relu-maxpool 2-dense 10, ` +
      `SGD lr 0.01 momentum 0.9, batch 64, up to ${MAX_EPOCHS} epochs, 1 compute thread per process; ` +
      'MNIST 8,000 train / 2,000 validation, flocktrain with pixels scaled to [0, 1], PyTorch with them standardized ' +
      '| epochs to 98% | seconds to 98% (sum of the epochs) | samples/s (median of epochs 2..) | best accuracy |',
  );
  say('|---|---|---|---|---|');
  say(row('flocktrain train', await flocktrainTrain(cli)));
  say(row('flocktrain coordinator + 2 local workers (--threads 1 each)', await flocktrainCoordinator(cli, 2)));
  say(row('PyTorch 1 thread (anchor torch_cnn.py)', dir === null ? 'anchors not found' : await torchAnchor(dir)));
}
