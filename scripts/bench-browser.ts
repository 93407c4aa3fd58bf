// `npm run bench:browser`: a lone browser tab against a lone Node worker, each alone
// with the coordinator and on one compute thread (?threads=1, --threads 1), on the
// default task (MNIST MLP 784-128-10, shard 16) at batch 16, 64 and 512. A row gives
// end-to-end samples/s (training samples over epoch time, network and coordinator
// included; the median over epochs 2 to EPOCHS of every round, the first epoch holding
// the start-up and the dataset download) and each worker's compute samples/s (its own
// kernel time, as it reports it: the dashboard's figure).
//
// The tab is a headless chromium opened on the join link as a person opens it, with
// no DevTools session (PlainTab); the Node worker runs in a session of its own, as the
// browser does, so that on a busy machine neither gets a larger share of the CPU.
// Rounds (--rounds N, default 2) alternate which contender goes first, so a machine
// getting busier or quieter does not favour one. `--devtools` adds a column for a tab
// under Playwright, whose DevTools Network domain copies every WebSocket frame to the
// client: what a tab costs while it is being watched, not what it costs.
// `--layers SPEC` runs the comparison on that model instead (as flocktrain's --layers,
// e.g. the CNN conv2d:16:5,relu,maxpool2d:2,conv2d:32:5,relu,maxpool2d:2,flatten,dense:10)
// at batch 64 alone, with SGD lr 0.01 momentum 0.9, the CNN recipe's.
// A benchmark, not a test: nothing here fails on a slow machine.

import { cpus, loadavg } from 'node:os';
import type { Browser } from 'playwright-core';
import { chromiumVersion, CliRun, coordinator, followFeed, launchChromium, PlainTab } from './browser-lab.js';

const EPOCHS = 4;
const BATCHES = [16, 64, 512] as const;
/**
 * The target this benchmark guards: a lone tab at least this fraction of a lone Node worker at batch 64,
 * on the default MLP and (ratioLayers) on a --layers model, the CNN's target.
 */
const TARGET = { batch: 64, ratio: 0.5, ratioLayers: 0.6 } as const;

type Contender = 'node' | 'tab' | 'tab-devtools';

interface Run {
  /** Training samples per second of epoch time, for epochs 2..EPOCHS. */
  readonly perEpoch: number[];
  /** The worker's own figure: samples per second of its kernel time. */
  readonly computeSamplesPerSec: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Opens the worker of one kind on a coordinator; resolves with its closer. */
async function join(
  who: Contender,
  c: { url: string; token: string; link: string },
  browser: () => Promise<Browser>,
): Promise<() => Promise<void>> {
  const link = `${c.link}&threads=1`;
  switch (who) {
    case 'node': {
      const run = new CliRun(
        ['worker', '--url', c.url, '--token', c.token, '--threads', '1', '--log-level', 'warn', '--log-format', 'json'],
        { ownSession: true },
      );
      return async () => {
        run.kill();
        await run.exited;
      };
    }
    case 'tab': {
      const tab = new PlainTab(link);
      return () => tab.close();
    }
    case 'tab-devtools': {
      const context = await (await browser()).newContext();
      await (await context.newPage()).goto(link);
      return () => context.close();
    }
    default: {
      const never: never = who;
      throw new Error(`unknown contender ${String(never)}`);
    }
  }
}

async function benchOne(
  who: Contender,
  batch: number,
  model: readonly string[],
  browser: () => Promise<Browser>,
): Promise<Run> {
  const c = await coordinator([
    '--epochs',
    String(EPOCHS),
    '--batch-size',
    String(batch),
    '--log-every',
    '100000',
    ...model,
  ]);
  let compute = 0;
  const kind = who === 'node' ? 'node' : 'browser';
  const feed = followFeed(c.dashboard, (e) => {
    if (e.type !== 'workers') return;
    const row = (e.workers.all ?? e.workers.fastest).find((w) => w.kind === kind);
    if (row !== undefined && row.samplesPerSec > 0) compute = row.samplesPerSec;
  });
  const leave = await join(who, c, browser);
  try {
    await c.run.waitFor('done');
    await c.run.exited;
    await feed;
  } finally {
    await leave();
    c.run.kill();
  }
  const train = Number(c.run.lines.find((l) => l.msg === 'run')?.train);
  const perEpoch = c.run.lines
    .filter((l) => l.msg === 'epoch' && Number(l.epoch) >= 2)
    .map((l) => train / Number(l.seconds));
  if (perEpoch.length === 0 || !perEpoch.every(Number.isFinite))
    throw new Error(`${who} at batch ${batch}: no timed epoch in the coordinator's log`);
  return { perEpoch, computeSamplesPerSec: compute };
}

/** What a contender did at one batch size, over all rounds. */
interface Result {
  readonly samplesPerSec: number;
  readonly computeSamplesPerSec: number;
}

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!(Number.isInteger(value) && value >= 1))
    throw new Error(`${name} takes a whole number ≥ 1, got ${process.argv[at + 1]}`);
  return value;
}

async function main(): Promise<void> {
  const devtools = process.argv.includes('--devtools');
  const rounds = option('--rounds', 2);
  const layersAt = process.argv.indexOf('--layers');
  const layers = layersAt < 0 ? null : process.argv[layersAt + 1];
  if (layers === undefined || layers?.startsWith('--')) throw new Error('--layers takes a layer spec');
  const model = layers === null ? [] : ['--layers', layers, '--lr', '0.01', '--momentum', '0.9'];
  const batches: readonly number[] = layers === null ? BATCHES : [TARGET.batch];
  // Launched only if a contender needs Playwright.
  const playwright: { browser: Promise<Browser> | null } = { browser: null };
  const launch = (): Promise<Browser> => {
    playwright.browser ??= launchChromium();
    return playwright.browser;
  };
  const contenders: Contender[] = devtools ? ['node', 'tab', 'tab-devtools'] : ['node', 'tab'];
  const rows: { batch: number; results: Map<Contender, Result> }[] = [];
  // Other work on the machine slows everything and adds noise: say how busy it was.
  const loadBefore = loadavg()[0];
  try {
    for (const batch of batches) {
      const runs = new Map<Contender, Run[]>(contenders.map((who) => [who, []]));
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? contenders : [...contenders].reverse();
        for (const who of order) runs.get(who)!.push(await benchOne(who, batch, model, launch));
      }
      const results = new Map<Contender, Result>();
      for (const [who, done] of runs) {
        results.set(who, {
          samplesPerSec: median(done.flatMap((r) => r.perEpoch)),
          computeSamplesPerSec: median(done.map((r) => r.computeSamplesPerSec)),
        });
      }
      rows.push({ batch, results });
    }
  } finally {
    await (await playwright.browser)?.close();
  }
  report(rows, { devtools, rounds, loadBefore, layers });
}

function report(
  rows: readonly { batch: number; results: Map<Contender, Result> }[],
  run: { devtools: boolean; rounds: number; loadBefore: number; layers: string | null },
): void {
  const fmt = (v: number): string => Math.round(v).toLocaleString('en-US');
  const out = process.stdout;
  out.write(
    `flocktrain browser benchmark — node ${process.version}, ${chromiumVersion()} headless, ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}\n`,
  );
  out.write(`load average (1 min): ${run.loadBefore.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end\n`);
  out.write(
    `MNIST ${run.layers === null ? 'MLP 784-128-10' : `--layers ${run.layers}, SGD lr 0.01 momentum 0.9`}, ` +
      'shard 16, one worker alone on one compute thread; samples/s: ' +
      `median of epochs 2–${EPOCHS} of ${run.rounds} round${run.rounds === 1 ? '' : 's'}\n\n`,
  );
  out.write(
    '| batch | Node worker samples/s | tab samples/s | tab / Node | Node compute samples/s | tab compute samples/s ' +
      `|${run.devtools ? ' tab under Playwright samples/s |' : ''}\n`,
  );
  out.write(`|---|---|---|---|---|---|${run.devtools ? '---|' : ''}\n`);
  for (const { batch, results } of rows) {
    const node = results.get('node')!;
    const tab = results.get('tab')!;
    const watched = results.get('tab-devtools');
    out.write(
      `| ${batch} | ${fmt(node.samplesPerSec)} | ${fmt(tab.samplesPerSec)} | ` +
        `${(tab.samplesPerSec / node.samplesPerSec).toFixed(2)}x | ${fmt(node.computeSamplesPerSec)} | ` +
        `${fmt(tab.computeSamplesPerSec)} |${watched !== undefined ? ` ${fmt(watched.samplesPerSec)} |` : ''}\n`,
    );
  }
  const target = rows.find((r) => r.batch === TARGET.batch)!.results;
  const ratio = target.get('tab')!.samplesPerSec / target.get('node')!.samplesPerSec;
  const goal = run.layers === null ? TARGET.ratio : TARGET.ratioLayers;
  out.write(
    `\ntarget: a lone tab ≥ ${goal}x a lone Node worker at batch ${TARGET.batch}: ${ratio.toFixed(2)}x, ` +
      `${ratio >= goal ? 'met' : 'MISSED'}\n`,
  );
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench:browser: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
