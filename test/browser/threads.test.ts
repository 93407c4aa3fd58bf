// A tab on several compute threads, in headless chromium: the worker page is served
// cross-origin isolated (so its Web Workers get SharedArrayBuffer); a tab asked for
// ?threads=2, on a model wide enough that its tasks are cut, ends with the very
// weightsHash of `flocktrain train`; a page that is not isolated says it computes on
// one thread, and still trains.

import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { describeInBrowser, pageStatus, useChromium } from './support.js';

// As test/e2e/bit-identical.test.ts's --threads cases: 67,331 parameters, so a run needs
// ~97 samples (MIN_RUN_WORK) and each 320-sample step is cut in 2 for 2 threads.
const WIDE = [
  '--dataset',
  'blobs',
  '--samples',
  '2000',
  '--hidden',
  '256,256',
  '--epochs',
  '1',
  '--batch-size',
  '320',
  '--shard-size',
  '24',
  '--lr',
  '0.01',
];
const SMALL = [
  '--dataset',
  'blobs',
  '--samples',
  '600',
  '--hidden',
  '16',
  '--epochs',
  '1',
  '--batch-size',
  '40',
  '--shard-size',
  '8',
];

describeInBrowser('a tab on several compute threads', () => {
  const { lab, newPage } = useChromium();

  async function open(url: string, setup?: (page: Page) => Promise<void>): Promise<Page> {
    const page = await newPage();
    await setup?.(page);
    await page.goto(url);
    return page;
  }

  it('the worker page is cross-origin isolated; the dashboard still opens', async () => {
    const c = await lab.coordinator([...SMALL, '--min-workers', '2']);
    const page = await open(c.link);
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
    expect(await page.evaluate(() => typeof SharedArrayBuffer)).toBe('function');
    await page.waitForFunction(() => document.body.dataset.phase === 'training');
    // One thread per core unless asked: never the fallback note.
    expect((await pageStatus(page)).threads).not.toContain('not cross-origin isolated');
    const dashboard = await open(String(c.join.dashboard));
    await dashboard.waitForSelector('#status.live');
  });

  it('?threads=2 on a wide model: tasks are cut between 2 threads, same weightsHash as flocktrain train', async () => {
    const reference = lab.train(WIDE);
    const c = await lab.coordinator(WIDE);
    const page = await open(`${c.link}&threads=2`);
    const done = await c.proc.waitFor('done', () => true, 45_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
    expect(await c.proc.exited).toBe(0);
    await page.waitForFunction(() => document.getElementById('message')?.textContent?.includes('Training finished'));
    const status = await pageStatus(page);
    expect(status.threads).toBe('2 threads');
    expect(Number(status.tasks)).toBeGreaterThan(0);
  });

  it('a page that is not cross-origin isolated computes on one thread and says so', async () => {
    const reference = lab.train(SMALL);
    const c = await lab.coordinator(SMALL);
    // The same page without its COOP/COEP headers.
    const page = await open(`${c.link}&threads=2`, async (p) => {
      await p.route(
        (url) => url.pathname === '/',
        async (route) => {
          const res = await route.fetch();
          const headers = { ...res.headers() };
          delete headers['cross-origin-opener-policy'];
          delete headers['cross-origin-embedder-policy'];
          await route.fulfill({ response: res, headers });
        },
      );
    });
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(false);
    const done = await c.proc.waitFor('done', () => true, 30_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
    expect((await pageStatus(page)).threads).toBe('1 thread (page not cross-origin isolated)');
  });
});
