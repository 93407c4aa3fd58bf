// Tabs on a plain-HTTP LAN address, which is no secure context: no Web Locks and no
// crypto.subtle there, as on a phone opening http://192.168.…. The coordinator listens
// on all interfaces, so this machine's host name is one of its own origins, and
// chromium resolves that name to 127.0.0.1: the page is served by a local coordinator
// yet is not "potentially trustworthy". The dataset store falls back to each tab fetching on
// its own (hashing in plain JS), and three tabs of one profile still train together to
// the weightsHash of `flocktrain train`.

import { hostname } from 'node:os';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_ARGS, describeInBrowser, Lab, pageStatus } from './support.js';

const RUN = [
  '--dataset',
  'blobs',
  '--samples',
  '600',
  '--hidden',
  '16',
  '--epochs',
  '1',
  '--batch-size',
  '48',
  '--shard-size',
  '8',
];
const TABS = 3;
const HOST = hostname().toLowerCase();

describeInBrowser('tabs in a context that is not secure', () => {
  let browser: Browser;
  const lab = new Lab();

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${HOST} 127.0.0.1`],
      headless: true,
    });
  });
  afterAll(async () => {
    await lab.cleanup();
    await browser?.close();
    lab.remove();
  });

  // A host named localhost would make a secure context, and nothing to test.
  it.skipIf(HOST === 'localhost' || HOST.endsWith('.localhost'))(
    'load the dataset without Web Locks and train to the weightsHash of flocktrain train',
    async () => {
      const reference = lab.train(RUN);
      const c = await lab.coordinator([
        ...RUN,
        '--min-workers',
        String(TABS),
        '--host',
        '0.0.0.0',
        '--log-level',
        'debug',
      ]);
      const context = await browser.newContext();
      const link = `http://${HOST}:${new URL(c.url).port}/?threads=1#token=${c.token}`;
      const pages = await Promise.all(Array.from({ length: TABS }, () => context.newPage()));
      await Promise.all(pages.map((p) => p.goto(link)));
      const scope = await pages[0].evaluate(() => ({
        secure: isSecureContext,
        locks: 'locks' in navigator,
        subtle: globalThis.crypto?.subtle !== undefined,
      }));
      expect(scope).toEqual({ secure: false, locks: false, subtle: false });
      const done = await c.proc.waitFor('done', () => true, 60_000);
      expect(done.weightsHash).toBe((await reference).weightsHash);
      for (const p of pages) {
        // The closing status carries the tab's final counts.
        await p.waitForSelector('body[data-phase="closed"]', { state: 'attached' });
        const status = await pageStatus(p);
        expect(status.dataset).toMatch(
          /^blobs: (downloaded .*|.* from this browser's cache \(IndexedDB\)), hash checked/,
        );
        expect(Number(status.tasks)).toBeGreaterThan(0);
      }
      const bodies = c.proc.linesWith('dataset served').filter((l) => l.status === 200);
      expect(bodies.length).toBeGreaterThanOrEqual(1);
      expect(bodies.length).toBeLessThanOrEqual(TABS);
      await context.close();
    },
  );
});
