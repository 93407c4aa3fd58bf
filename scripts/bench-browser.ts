// `npm run bench:browser`: samples/s of one headless-chromium worker next to one Node
// worker on the default task (MNIST MLP 784-128-10, batch 64, 2 epochs), each alone
// with the coordinator. Two numbers per worker: compute (samples per second of the
// worker's own gradient time, as it reports it; the dashboard's figure) and end to end
// (training samples per second of epoch 2, network and coordinator included).
// A benchmark, not a test: nothing here fails on a slow machine.

import { cpus } from 'node:os';
import type { Browser } from 'playwright-core';
import { CliRun, coordinator, followFeed, launchChromium } from './browser-lab.js';

const EPOCHS = 2;

interface Result {
  readonly computeSamplesPerSec: number;
  readonly endToEndSamplesPerSec: number;
}

async function benchOne(kind: 'node' | 'browser', browser: Browser): Promise<Result> {
  const c = await coordinator(['--epochs', String(EPOCHS), '--log-every', '1000']);
  let compute = 0;
  const feed = followFeed(c.dashboard, (e) => {
    if (e.type !== 'workers') return;
    const row = e.workers.find((w) => w.kind === kind);
    if (row !== undefined && row.samplesPerSec > 0) compute = row.samplesPerSec;
  });
  let worker: CliRun | null = null;
  const context = await browser.newContext();
  if (kind === 'node')
    worker = new CliRun(['worker', '--url', c.url, '--token', c.token, '--log-level', 'warn', '--log-format', 'json']);
  else await (await context.newPage()).goto(c.link);
  await c.run.waitFor('done');
  await c.run.exited;
  await feed;
  await context.close();
  worker?.kill();
  const epochs = c.run.lines.filter((l) => l.msg === 'epoch');
  const last = epochs[epochs.length - 1];
  const run = c.run.lines.find((l) => l.msg === 'run');
  return { computeSamplesPerSec: compute, endToEndSamplesPerSec: Number(run?.train) / Number(last?.seconds) };
}

async function main(): Promise<void> {
  const browser = await launchChromium();
  try {
    const node = await benchOne('node', browser);
    const tab = await benchOne('browser', browser);
    const fmt = (v: number): string => Math.round(v).toLocaleString('en-US');
    process.stdout.write(
      `flocktrain browser benchmark — node ${process.version}, ${browser.version()} headless, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}\n`,
    );
    process.stdout.write(
      `MNIST MLP 784-128-10, batch 64, shard 16, one worker alone, epoch ${EPOCHS} of ${EPOCHS}\n\n`,
    );
    process.stdout.write('| worker | compute samples/s | end-to-end samples/s |\n|---|---|---|\n');
    process.stdout.write(`| Node process | ${fmt(node.computeSamplesPerSec)} | ${fmt(node.endToEndSamplesPerSec)} |\n`);
    process.stdout.write(
      `| headless chromium tab (Web Worker) | ${fmt(tab.computeSamplesPerSec)} | ${fmt(tab.endToEndSamplesPerSec)} |\n`,
    );
  } finally {
    await browser.close();
  }
}

await main();
