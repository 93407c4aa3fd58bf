// The "links" section of `npm run bench`: `flocktrain train` against `flocktrain
// coordinator` with 1 and 2 local Node workers (one compute thread per process) whose
// connections go through the link simulator, so the table says what distributing pays
// over a LAN-like and a WAN-like link, not only over loopback. Everything runs as the
// built CLI in child processes; this process only hosts the proxy and reads their
// JSON log lines. Each worker gets its own simulated line (see link-proxy.ts).
//
// A model is a `--layers` spec handed to flocktrain as is (null: the default MLP). A
// flocktrain that refuses the flag has its rows skipped with its one-line reason.
//
// The host's speed drifts over minutes, so one `train` run set against one distributed
// run made minutes later says little. Each model is run in rounds: a round runs `train`
// and every distributed configuration once, in an order rotated by one each round, and
// a ratio is taken only within its round. The table gives the median of those per-round
// ratios with their range, and the load average at each round's start.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
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

/** shape null: loopback straight to the coordinator, the reference without a proxy. */
export const LINKS = {
  loopback: null,
  lan: { latencyMs: 1, bandwidthBitsPerSec: 1e9 },
  wan: { latencyMs: 20, bandwidthBitsPerSec: 1e8 },
} as const satisfies Record<string, LinkShape | null>;

export type LinkName = keyof typeof LINKS;
export const LINK_NAMES = Object.keys(LINKS) as LinkName[];

export interface BenchLinksOptions {
  /** Rounds per model; each round runs train and every distributed configuration once. */
  readonly repeats: number;
  /** Which links the distributed runs use, in this order. */
  readonly links: readonly LinkName[];
}

export const BENCH_LINKS_DEFAULTS: BenchLinksOptions = { repeats: 3, links: LINK_NAMES };

/** Reads `--repeats N` and `--links a,b` from argv; a bad value throws one line for the user. */
export function parseBenchLinksArgs(argv: readonly string[]): BenchLinksOptions {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
    return v;
  };
  const repeatsText = value('--repeats');
  const repeats = repeatsText === undefined ? BENCH_LINKS_DEFAULTS.repeats : Number(repeatsText);
  if (!Number.isInteger(repeats) || repeats < 1)
    throw new Error(`--repeats must be a whole number of at least 1, not "${repeatsText}"`);
  const linksText = value('--links');
  const links = linksText === undefined ? BENCH_LINKS_DEFAULTS.links : linksText.split(',').map((t) => t.trim());
  for (const name of links)
    if (!(LINK_NAMES as string[]).includes(name))
      throw new Error(`--links: unknown link "${name}" (known: ${LINK_NAMES.join(', ')})`);
  return { repeats, links: links as LinkName[] };
}

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

interface Config {
  /** null: `flocktrain train`. */
  readonly workers: number | null;
  readonly link: LinkName;
}

function configLabel(c: Config): string {
  if (c.workers === null) return 'flocktrain train';
  const shape = LINKS[c.link];
  const where = shape === null ? 'loopback, no proxy' : describeShape(shape);
  return `coordinator + ${c.workers} worker${c.workers > 1 ? 's' : ''}, ${where}`;
}

/** `median (min–max)` of the values, or the one value alone. */
function spread(values: readonly number[], digits: number, unit = ''): string {
  const m = `${fmt(median(values), digits)}${unit}`;
  if (values.length < 2) return m;
  return `${m} (${fmt(Math.min(...values), digits)}–${fmt(Math.max(...values), digits)}${unit})`;
}

/**
 * Runs every model over the chosen links, `repeats` interleaved rounds each, and prints
 * one Markdown table through `say`.
 */
export async function benchLinks(
  cli: string,
  models: readonly LinkModel[],
  epochs: number,
  say: (line: string) => void,
  options: BenchLinksOptions = BENCH_LINKS_DEFAULTS,
): Promise<void> {
  const { repeats, links } = options;
  const of = repeats > 1 ? `; median (min–max) over ${repeats} rounds, ratios within each round` : '';
  say(
    '| links (batch 64, 1 compute thread per process; each worker on its own line, ' +
      `one-way latency / rate per direction; medians of epochs 2..${epochs}${of}) ` +
      '| samples/s | vs train (same round) | ms per step (epoch time / steps) ' +
      '| bytes per step (all workers, both ways) | proxy release late by (mean ms) |',
  );
  say('|---|---|---|---|---|---|');
  const configs: Config[] = [{ workers: null, link: 'loopback' }];
  for (const link of links) for (const workers of WORKER_COUNTS) configs.push({ workers, link });
  const notes: string[] = [];
  for (const model of models) {
    const runs: RunFigures[][] = configs.map(() => []);
    const loads: number[] = [];
    let refused: string | null = null;
    for (let round = 0; round < repeats && refused === null; round++) {
      loads.push(loadavg()[0]);
      // Rotated by one each round, so no configuration always runs first, or always right after train.
      for (let k = 0; k < configs.length && refused === null; k++) {
        const index = (k + round) % configs.length;
        const c = configs[index];
        if (c.workers === null) {
          const train = await trainRun(cli, model, epochs);
          if (typeof train === 'string') refused = train;
          else runs[index].push(train);
        } else runs[index].push(await distributedRun(cli, model, epochs, c.workers, LINKS[c.link]));
      }
    }
    if (refused !== null) {
      say(`| ${model.name}: skipped, flocktrain refused it (${refused.replace(/\|/g, '/')}) | | | | | |`);
      continue;
    }
    const train = runs[0];
    const stepMs = (samplesPerSec: number): number => (64 * 1000) / samplesPerSec;
    configs.forEach((c, index) => {
      const rs = runs[index];
      const rate = rs.map((r) => r.samplesPerSec);
      const ratios = rs.map((r, round) => r.samplesPerSec / train[round].samplesPerSec);
      const bytes = rs.map((r) => r.bytesPerStep).filter((b) => b !== null);
      const late = rs.map((r) => r.proxyLateMs).filter((l) => l !== null);
      say(
        `| ${model.name}, ${configLabel(c)} | ${spread(rate, 0)} | ` +
          `${c.workers === null ? '1.00×' : spread(ratios, 2, '×')} | ${fmt(median(rate.map(stepMs)), 2)} | ` +
          `${c.workers === null ? '' : bytes.length === 0 ? '?' : fmt(median(bytes))} | ` +
          `${late.length === 0 ? '' : fmt(median(late), 2)} |`,
      );
    });
    notes.push(`${model.name}: ${loads.map((l) => l.toFixed(1)).join(', ')}`);
  }
  say('');
  say(`1-minute load average at each round's start — ${notes.join('; ')}`);
}
