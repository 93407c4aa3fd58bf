// A room of tabs: one headless chromium, one profile (one browser context), ROOM_TABS
// pages of the worker page joining one run at once. The profile downloads the dataset
// once (the coordinator's route answers one body; the other tabs wait on the store's
// Web Lock and read its copy, which the test makes sure of by holding the download
// until every tab is loading), every tab joins and computes, and the run ends with the
// weightsHash of `flocktrain train`. The dashboard, open in another profile, counts
// the room.
//
// 30 tabs by default (ROOM_TABS=N for another count). 30 fit this 2-core, 24 GB
// machine in 30–45 s under a load average of 15–18 from other jobs, at about 80 MB of
// memory a tab; 60 fit too, in 67 s, which is more of CI's time than one test should
// take. Time, not memory, is the limit: see "Room of tabs" in docs/performance.md for
// the figures, which this test prints (and writes to test-output/room-of-tabs.json).

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeInBrowser, Lab, launchChromium, outputPath, pageStatus } from '../browser/support.js';

const TABS = ((v) => (Number.isInteger(v) && v >= 2 ? v : 30))(Number(process.env.ROOM_TABS ?? ''));
const SHARD = 8;
/**
 * MNIST (its 8 MB of byte pixels take long enough to arrive that the tabs really ask
 * for them at once) on a small MLP: one epoch of 8,000 samples, one shard per tab per step.
 */
const RUN = [
  '--dataset',
  'mnist',
  '--hidden',
  '16',
  '--epochs',
  '1',
  '--batch-size',
  String(TABS * SHARD),
  '--shard-size',
  String(SHARD),
];

/** Proportional set size (kB) of this process's chromium descendants: shared pages counted once overall. */
function chromiumPssKb(): number {
  const parent = new Map<number, number>();
  const name = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      name.set(Number(entry), stat.slice(stat.indexOf('(') + 1, close));
      parent.set(Number(entry), Number(stat.slice(close + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const descends = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === process.pid) return true;
    return false;
  };
  let kb = 0;
  for (const [pid, comm] of name) {
    if (!comm.startsWith('chrom') || !descends(pid)) continue;
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      kb += m === null ? 0 : Number(m[1]);
    } catch {
      // gone meanwhile
    }
  }
  return kb;
}

describeInBrowser('a room of tabs', () => {
  let browser: Browser;
  const lab = new Lab();

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await lab.cleanup();
    await browser?.close();
    lab.remove();
  });

  it(`${TABS} tabs of one profile download the dataset once; the run equals flocktrain train`, async () => {
    const reference = lab.train(RUN);
    // The tabs share one address: a WebSocket each, and a few HTTP connections for the browser.
    const c = await lab.coordinator([
      ...RUN,
      '--min-workers',
      String(TABS),
      '--max-connections-per-ip',
      String(Math.max(64, TABS + 16)),
      // For the route's "dataset served" lines.
      '--log-level',
      'debug',
    ]);
    const dashboard = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await dashboard.goto(c.link.replace('/#', '/dashboard#'));
    await dashboard.waitForSelector('#status.live');
    const context = await browser.newContext({ viewport: { width: 640, height: 480 } });
    const idleKb = chromiumPssKb();
    const pages: Page[] = [];
    for (let i = 0; i < TABS; i++) pages.push(await context.newPage());
    // The dataset's first request is held until every tab is loading it, so the tabs
    // really ask at once: without the store's lock each one would send its own.
    const everyTabLoading = Promise.all(
      pages.map((p) =>
        p.waitForSelector('body[data-phase="loading"], body[data-phase="training"]', {
          state: 'attached',
          timeout: 90_000,
        }),
      ),
    );
    const dataRequests: string[] = [];
    await context.route('**/data/*', async (route) => {
      dataRequests.push(route.request().url());
      await everyTabLoading;
      await route.continue();
    });
    const started = performance.now();
    // One compute thread a tab: the room, not one tab, is what uses the cores.
    const link = c.link.replace('/#', '/?threads=1#');
    await Promise.all(pages.map((p) => p.goto(link)));
    await c.proc.waitFor('worker joined', (l) => l.workers === TABS, 90_000);
    const joinMs = performance.now() - started;
    const roomKb = chromiumPssKb();
    await dashboard.waitForFunction(
      (n) => document.getElementById('worker-counts')?.textContent?.startsWith(`${n} workers`),
      TABS,
    );
    const done = await c.proc.waitFor('done', () => true, 90_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
    expect(await c.proc.exited).toBe(0);

    expect(c.proc.linesWith('worker joined').map((l) => l.kind)).toEqual(Array(TABS).fill('browser'));
    const served = c.proc.linesWith('dataset served');
    const bodies = served.filter((l) => l.status === 200);
    expect(bodies).toHaveLength(1);
    expect(dataRequests).toHaveLength(1);
    // The closing status carries each tab's final counts.
    await Promise.all(pages.map((p) => p.waitForSelector('body[data-phase="closed"]', { state: 'attached' })));
    const statuses = await Promise.all(pages.map((p) => pageStatus(p)));
    const ids = statuses.map((s) => s.workerId);
    expect(new Set(ids).size).toBe(TABS);
    for (const s of statuses) {
      expect(s.workerId).toMatch(/^w\d+$/);
      expect(Number(s.tasks), `${s.workerId}: ${s.tasks} tasks`).toBeGreaterThan(0);
    }
    const sources = statuses.map((s) => (/downloaded/.test(s.dataset) ? 'download' : 'store'));
    expect(sources.filter((s) => s === 'download')).toHaveLength(1);

    const figures = {
      tabs: TABS,
      date: new Date().toISOString(),
      loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
      joinMs: Math.round(joinMs),
      datasetBodies: bodies.length,
      datasetNotModified: served.length - bodies.length,
      datasetBytesServed: bodies.reduce((sum, l) => sum + Number(l.bytes), 0),
      chromiumPssMb: { idle: Math.round(idleKb / 1024), room: Math.round(roomKb / 1024) },
      pssPerTabMb: Number(((roomKb - idleKb) / 1024 / TABS).toFixed(1)),
    };
    writeFileSync(outputPath('room-of-tabs.json'), `${JSON.stringify(figures, null, 2)}\n`);
    console.info('room of tabs', figures);
    await context.close();
  }, 150_000);
});
