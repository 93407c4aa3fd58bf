// A mixed fleet in a real browser: a coordinator (real CLI process), one Node worker
// process and two headless chromium tabs train together and end with the very
// weightsHash of `flocktrain train`; the same holds when a tab is closed mid-epoch.
// The dashboard, open during the first run, must have drawn its charts and listed
// the workers (screenshot in test-output/).

import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { describeInBrowser, outputPath, pageStatus, useChromium } from './support.js';

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
];
/** Long enough (300 steps) that a tab can be closed while it runs. */
const LONG_RUN = [
  '--dataset',
  'blobs',
  '--samples',
  '6000',
  '--hidden',
  '16',
  '--epochs',
  '2',
  '--batch-size',
  '40',
  '--shard-size',
  '8',
];

describeInBrowser('browser tabs as workers', () => {
  const { lab, newPage } = useChromium();

  /** A tab in its own context (like another laptop), opened on the join link. */
  async function openTab(link: string): Promise<Page> {
    const page = await newPage({ viewport: { width: 720, height: 560 } });
    await page.goto(link);
    return page;
  }

  it('1 Node worker + 2 tabs train to the weightsHash of flocktrain train; the dashboard shows it live', async () => {
    const reference = lab.train(RUN);
    const c = await lab.coordinator([...RUN, '--min-workers', '3', '--log-every', '2']);
    expect(c.link).toBe(`${c.url.replace('ws://', 'http://')}/#token=${c.token}`);
    const dashboard = await newPage({ viewport: { width: 1280, height: 900 } });
    await dashboard.goto(`${c.link.replace('/#', '/dashboard#')}`);
    await dashboard.waitForSelector('#status.live');
    const tabs = await Promise.all([openTab(c.link), openTab(c.link)]);
    lab.worker(c.url, c.token, 'node-1');
    const done = await c.proc.waitFor('done', () => true, 45_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
    expect(await c.proc.exited).toBe(0);

    const joined = c.proc.linesWith('worker joined');
    expect(joined.map((l) => l.kind).sort()).toEqual(['browser', 'browser', 'node']);
    for (const tab of tabs) {
      await tab.waitForFunction(() => document.getElementById('message')?.textContent?.includes('Training finished'));
      const status = await pageStatus(tab);
      expect(status.workerId).toMatch(/^w\d+$/);
      expect(Number(status.tasks)).toBeGreaterThan(0);
      expect(status.dataset).toMatch(/downloaded .* hash checked/);
    }
    await tabs[0].screenshot({ path: outputPath('worker-page.png') });

    await dashboard.waitForSelector('body[data-state="done"]');
    const view = await dashboard.evaluate(() => ({
      status: document.getElementById('status')?.textContent ?? '',
      lossPoints: Number((document.getElementById('loss-chart') as HTMLElement).dataset.points),
      accPoints: Number((document.getElementById('acc-chart') as HTMLElement).dataset.points),
      kinds: [...document.querySelectorAll<HTMLTableRowElement>('#workers tr')].map((r) => r.dataset.kind ?? ''),
      config: [...document.querySelectorAll('#config tr')].map((r) => r.textContent ?? ''),
      progress: document.getElementById('progress-text')?.textContent ?? '',
    }));
    expect(view.status).toContain(String(done.weightsHash).slice(0, 12));
    expect(view.lossPoints).toBe(c.proc.linesWith('step').length);
    expect(view.lossPoints).toBeGreaterThan(5);
    expect(view.accPoints).toBe(2);
    expect(view.kinds.sort()).toEqual(['browser', 'browser', 'node']);
    expect(view.config.some((row) => row.startsWith('batch size') && row.includes('40 samples'))).toBe(true);
    expect(view.progress).toContain('epoch 2 of 2');
    await dashboard.screenshot({ path: outputPath('dashboard.png'), fullPage: true });
  });

  it('a tab closed mid-epoch loses nothing: training completes with the same weightsHash', async () => {
    const reference = lab.train(LONG_RUN);
    const c = await lab.coordinator([...LONG_RUN, '--min-workers', '3', '--log-every', '1']);
    const tabs = await Promise.all([openTab(c.link), openTab(c.link)]);
    lab.worker(c.url, c.token, 'node-1');
    await c.proc.waitFor('step', (l) => Number(l.step) >= 20);
    const leaving = (await pageStatus(tabs[1])).workerId;
    await tabs[1].close();
    const left = await c.proc.waitFor('worker left', (l) => l.workerId === leaving);
    const done = await c.proc.waitFor('done', () => true, 45_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
    // Really mid-run: steps went on after the tab was gone.
    const leftAt = c.proc.lines.indexOf(left);
    expect(c.proc.lines.slice(leftAt).filter((l) => l.msg === 'step').length).toBeGreaterThan(10);
    expect(await c.proc.exited).toBe(0);
  });
});
