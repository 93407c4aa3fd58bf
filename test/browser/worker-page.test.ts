// The worker page on its own, in headless chromium: a wrong token gets a clear
// message; the dataset is downloaded once and a reload takes it from the browser's
// store, unless that copy is corrupt; Pause leaves the run and Resume rejoins. The coordinator waits for more
// workers than join, so no training starts and the tab stays in the run.

import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeInBrowser, Lab, launchChromium, pageStatus } from './support.js';

const RUN = [
  '--dataset',
  'blobs',
  '--samples',
  '600',
  '--hidden',
  '16',
  '--epochs',
  '2',
  '--batch-size',
  '40',
  '--shard-size',
  '8',
  '--min-workers',
  '5',
];

describeInBrowser('the worker page', () => {
  let browser: Browser;
  const lab = new Lab();
  let coordinator: Awaited<ReturnType<Lab['coordinator']>>;

  beforeAll(async () => {
    browser = await launchChromium();
    coordinator = await lab.coordinator(RUN);
  });
  afterAll(async () => {
    await lab.cleanup();
    await browser?.close();
    lab.remove();
  });

  async function open(url: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.goto(url);
    return page;
  }

  it('a wrong token gets a clear message, and the dashboard refuses it', async () => {
    const page = await open(coordinator.link.replace(/token=.*/, 'token=not-the-token'));
    await page.waitForSelector('#message.error');
    const status = await pageStatus(page);
    expect(status.message).toBe(
      "The coordinator refused this link's token (wrong or missing token). Ask for a fresh join link.",
    );
    expect(status.connection).toBe('not connected');
    expect(await page.isDisabled('#pause')).toBe(true);
    await coordinator.proc.waitFor('rejected: wrong or missing token');

    const noToken = await open(coordinator.link.replace(/#token=.*/, ''));
    await noToken.waitForSelector('#message.error');
    expect((await pageStatus(noToken)).message).toMatch(/^This link has no token/);

    const res = await page.goto(coordinator.link.replace(/\/#token=.*/, '/events?token=x'));
    expect(res?.status()).toBe(401);
  });

  it('downloads the dataset once: a reload takes it from the browser cache', async () => {
    const page = await open(coordinator.link);
    await page.waitForFunction(() => document.body.dataset.phase === 'training');
    expect((await pageStatus(page)).dataset).toMatch(/^blobs: downloaded .* hash checked, stored in this browser$/);
    const firstId = (await pageStatus(page)).workerId;
    const dataRequests: string[] = [];
    page.context().on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/data/')) dataRequests.push(r.url());
    });
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.phase === 'training');
    const status = await pageStatus(page);
    expect(status.dataset).toMatch(/^blobs: .* from this browser's cache \(IndexedDB\), hash checked$/);
    expect(status.workerId).not.toBe(firstId);
    expect(dataRequests).toEqual([]);
  });

  it('a corrupt stored copy is discarded with a warning and downloaded again', async () => {
    const page = await open(coordinator.link);
    await page.waitForFunction(() => document.body.dataset.phase === 'training');
    // Flip one byte of the stored body, as a failing disk or a meddling extension might.
    await page.evaluate(
      () =>
        new Promise<void>((resolve, reject) => {
          const req = indexedDB.open('flocktrain', 1);
          req.onerror = () => reject(req.error);
          req.onsuccess = () => {
            const store = req.result.transaction('datasets', 'readwrite').objectStore('datasets');
            const cursor = store.openCursor();
            cursor.onerror = () => reject(cursor.error);
            cursor.onsuccess = () => {
              const c = cursor.result;
              if (c === null) return reject(new Error('nothing stored'));
              const bytes = new Uint8Array((c.value as ArrayBuffer).slice(0));
              bytes[0] ^= 0xff;
              c.update(bytes.buffer).onsuccess = () => resolve();
            };
          };
        }),
    );
    const warnings: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'warning') warnings.push(m.text());
    });
    const dataRequests: string[] = [];
    page.context().on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/data/')) dataRequests.push(r.url());
    });
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.phase === 'training');
    expect((await pageStatus(page)).dataset).toMatch(/^blobs: downloaded .* hash checked, stored in this browser$/);
    expect(dataRequests).toHaveLength(1);
    expect(warnings.filter((w) => /stored copy of dataset blobs is corrupt/.test(w))).toHaveLength(1);
    // The fresh copy replaced it: the next reload reads it from the store.
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.phase === 'training');
    expect((await pageStatus(page)).dataset).toMatch(/from this browser's cache/);
    expect(dataRequests).toHaveLength(1);
  });

  it('Pause leaves the run and says so; Resume rejoins as a new worker', async () => {
    const page = await open(coordinator.link);
    await page.waitForFunction(() => document.body.dataset.phase === 'training');
    const before = await pageStatus(page);
    await page.click('#pause');
    await page.waitForFunction(() => document.body.dataset.phase === 'closed');
    expect((await pageStatus(page)).message).toMatch(/^Paused: this tab left the run/);
    await coordinator.proc.waitFor(
      'worker left',
      (l) => l.workerId === before.workerId && String(l.reason).includes('4007'),
    );
    expect(await page.textContent('#pause')).toBe('Resume');
    await page.click('#pause');
    await page.waitForFunction(() => document.body.dataset.phase === 'training');
    const after = await pageStatus(page);
    expect(after.workerId).not.toBe(before.workerId);
    // The second connection reuses the dataset this Web Worker already holds.
    expect(after.dataset).toMatch(/already in memory/);
  });
});
