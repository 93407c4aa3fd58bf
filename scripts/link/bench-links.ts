// The "links" section of `npm run bench`: `flocktrain train` against `flocktrain
// coordinator` with 1 and 2 local Node workers (one compute thread per process) whose
// connections go through the link simulator, so the table says what distributing pays
// over a LAN-like and a WAN-like link, not only over loopback. Everything runs as the
// built CLI in child processes; this process only hosts the proxy and reads their
// JSON log lines. Each worker gets its own simulated line (see link-proxy.ts).
//
// A model is a `--layers` spec handed to flocktrain as is (null: the default MLP). A
// flocktrain that refuses the flag has its rows skipped with its one-line reason.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeShape, type LinkShape } from './link-shape.js';
import { startLinkProxy, type LinkProxy } from './link-proxy.js';

export interface LinkModel {
  readonly name: string;
  /** Handed to flocktrain as --layers (null: no flag, the default MLP). */
  readonly layers: string | null;
  /** Further run flags (learning rate and the like). */
  readonly args: readonly string[];
}

export const CNN_LAYERS = 'conv2d:16:5,relu,maxpool2d:2,conv2d:32:5,relu,maxpool2d:2,flatten,dense:10';

/** null: loopback straight to the coordinator, the reference without a proxy. */
export const LINKS: readonly (LinkShape | null)[] = [
  null,
  { latencyMs: 1, bandwidthBitsPerSec: 1e9 },
  { latencyMs: 20, bandwidthBitsPerSec: 1e8 },
];

const WORKER_COUNTS = [1, 2] as const;
const TOKEN = 'bench-links-0123456789';

type LogLine = Readonly<Record<string, unknown>> & { readonly msg?: string };

/** One flocktrain process: its JSON log lines as they arrive, its stderr, its exit. */
class CliProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcess;
  readonly #cache: string;
  #waiters: { msg: string; resolve: (l: LogLine) => void }[] = [];

  constructor(cli: string, args: readonly string[]) {
    // A fresh cache: a worker fetches the dataset over its link, as a new machine would.
    this.#cache = mkdtempSync(join(tmpdir(), 'flocktrain-bench-links-'));
    this.#child = spawn(process.execPath, [cli, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, XDG_CACHE_HOME: this.#cache },
    });
    let partial = '';
    this.#child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const text of parts) this.#line(text);
    });
    this.#child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) =>
      this.#child.once('close', (code) => {
        rmSync(this.#cache, { recursive: true, force: true });
        resolve(code);
      }),
    );
  }

  #line(text: string): void {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return; // not a log line
    }
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      if (w.msg !== line.msg) return true;
      w.resolve(line);
      return false;
    });
  }

  waitFor(msg: string): Promise<LogLine> {
    const seen = this.lines.find((l) => l.msg === msg);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ msg, resolve });
      void this.exited.then((code) =>
        reject(new Error(`flocktrain exited (${code}) before a "${msg}" line: ${this.firstErrorLine()}`)),
      );
    });
  }

  firstErrorLine(): string {
    return this.stderr.trim().split('\n')[0] ?? '';
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL');
  }
}

interface RunFigures {
  readonly samplesPerSec: number;
  /** Messages' bytes per step, all workers, both ways (the coordinator's count); null for train. */
  readonly bytesPerStep: number | null;
  /** Mean delay of the proxy's releases past their due times, ms; null without a proxy. */
  readonly proxyLateMs: number | null;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Samples/s and bytes per step, medians over epochs 2.. (epoch 1 holds joining and warm-up). */
function figures(run: CliProcess): { samplesPerSec: number; bytesPerStep: number | null } {
  const train = Number(run.lines.find((l) => l.msg === 'run')?.train);
  const epochs = run.lines.filter((l) => l.msg === 'epoch').map((l) => Number(l.seconds));
  // With --log-every past the epoch's end, the step line that closes an epoch covers that whole epoch.
  const bytes = run.lines.filter((l) => l.msg === 'step' && typeof l.bytesPerStep === 'number');
  return {
    samplesPerSec: train / median(epochs.slice(1)),
    bytesPerStep: bytes.length > 1 ? median(bytes.slice(1).map((l) => Number(l.bytesPerStep))) : null,
  };
}

function runArgs(model: LinkModel, epochs: number): string[] {
  return [
    ...(model.layers === null ? [] : ['--layers', model.layers]),
    '--epochs',
    String(epochs),
    '--batch-size',
    '64',
    '--shard-size',
    '16',
    ...model.args,
    '--log-every',
    '1000000',
    '--log-format',
    'json',
  ];
}

async function trainRun(cli: string, model: LinkModel, epochs: number): Promise<RunFigures | string> {
  const run = new CliProcess(cli, ['train', '--threads', '1', ...runArgs(model, epochs)]);
  const code = await run.exited;
  if (code !== 0) return run.firstErrorLine() || `exit code ${code}`;
  return { ...figures(run), bytesPerStep: null, proxyLateMs: null };
}

async function distributedRun(
  cli: string,
  model: LinkModel,
  epochs: number,
  workers: number,
  link: LinkShape | null,
): Promise<RunFigures> {
  const coordinator = new CliProcess(cli, [
    'coordinator',
    '--port',
    '0',
    '--token',
    TOKEN,
    '--min-workers',
    String(workers),
    ...runArgs(model, epochs),
  ]);
  const fleet: CliProcess[] = [];
  let proxy: LinkProxy | null = null;
  try {
    const join = await coordinator.waitFor('join');
    const direct = new URL(String(join.url));
    if (link !== null)
      proxy = await startLinkProxy({
        listenPort: 0,
        target: { host: direct.hostname, port: Number(direct.port) },
        ...link,
      });
    const url = proxy === null ? direct.href : `ws://127.0.0.1:${proxy.port}`;
    for (let i = 0; i < workers; i++)
      fleet.push(
        new CliProcess(cli, [
          'worker',
          '--url',
          url,
          '--token',
          TOKEN,
          '--threads',
          '1',
          '--log-level',
          'warn',
          '--log-format',
          'json',
        ]),
      );
    await coordinator.waitFor('done');
    const code = await coordinator.exited;
    if (code !== 0) throw new Error(`coordinator exited ${code}: ${coordinator.firstErrorLine()}`);
    // Told to stop by the coordinator, the workers leave by themselves.
    await Promise.all(fleet.map((w) => w.exited));
    return { ...figures(coordinator), proxyLateMs: proxy?.stats().meanLateMs ?? null };
  } finally {
    coordinator.kill();
    for (const w of fleet) w.kill();
    await proxy?.close();
  }
}

function fmt(v: number, digits = 0): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Runs every model over every link and prints one Markdown table through `say`. */
export async function benchLinks(
  cli: string,
  models: readonly LinkModel[],
  epochs: number,
  say: (line: string) => void,
): Promise<void> {
  say(
    '| links (batch 64, 1 compute thread per process; each worker on its own line, ' +
      `one-way latency / rate per direction; medians of epochs 2..${epochs}) ` +
      '| samples/s | vs train | ms per step (epoch time / steps) | bytes per step (all workers, both ways) ' +
      '| proxy release late by (mean ms) |',
  );
  say('|---|---|---|---|---|---|');
  for (const model of models) {
    const train = await trainRun(cli, model, epochs);
    if (typeof train === 'string') {
      say(`| ${model.name}: skipped, flocktrain refused it (${train.replace(/\|/g, '/')}) | | | | | |`);
      continue;
    }
    const stepMs = (s: number): string => fmt((64 * 1000) / s, 2);
    say(
      `| ${model.name}, flocktrain train | ${fmt(train.samplesPerSec)} | 1.00× | ${stepMs(train.samplesPerSec)} | | |`,
    );
    for (const link of LINKS) {
      for (const workers of WORKER_COUNTS) {
        const r = await distributedRun(cli, model, epochs, workers, link);
        const where = link === null ? 'loopback, no proxy' : describeShape(link);
        say(
          `| ${model.name}, coordinator + ${workers} worker${workers > 1 ? 's' : ''}, ` +
            `${where} | ${fmt(r.samplesPerSec)} | ${fmt(r.samplesPerSec / train.samplesPerSec, 2)}× | ` +
            `${stepMs(r.samplesPerSec)} | ${r.bytesPerStep === null ? '?' : fmt(r.bytesPerStep)} | ` +
            `${r.proxyLateMs === null ? '' : fmt(r.proxyLateMs, 2)} |`,
        );
      }
    }
  }
}
