// The dashboard page with a fleet too large to list, in headless chromium: a real
// feed (DashboardFeed over 300 fake connections) behind the real server, read by the
// real page through its event stream. The page shows counts by status, the fastest
// and slowest workers instead of 300 rows, and its search box finds any worker.

import { pino } from 'pino';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ConnectionView, DashboardFeed } from '../../coordinator/dashboard.js';
import { EXTREMES } from '../../coordinator/dashboard-workers.js';
import { Events } from '../../coordinator/events.js';
import { dashboardPageRoutes, publicPageRoutes } from '../../coordinator/pages/assets.js';
import type { RunningServer } from '../../coordinator/server.js';
import { startTestServer } from '../support/test-server.js';
import { describeInBrowser, outputPath, useChromium } from './support.js';

const FLEET = 300;

/** Worker i (1-based): browsers on 10.0.0.x, Node (every third) on 10.0.1.x; every tenth loading, six standing by. */
function fleet(): ConnectionView[] {
  return Array.from({ length: FLEET }, (_, k) => {
    const i = k + 1;
    const node = i % 3 === 0;
    return {
      id: `w${i}`,
      state: i % 10 === 0 ? 'loading' : 'ready',
      kind: node ? 'node' : 'browser',
      agent: node ? 'node 20.18.0 on linux x64' : 'Chrome 131 on Linux x86_64',
      remote: `10.0.${node ? 1 : 0}.${i % 250}:${40000 + i}`,
      tasksDone: i % 10 === 0 ? 0 : 4,
      samplesDone: i % 10 === 0 ? 0 : 64,
      // Worker i computes at 10·i samples per second of compute.
      computeMs: i % 10 === 0 ? 0 : 6400 / i,
      lastSeen: Date.now(),
      standby: i % 50 === 0 || i % 50 === 25 ? 'standing by: a step has 240 shards for 300 workers' : null,
    };
  });
}

async function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (cells) => cells.map((c) => c.textContent ?? ''));
}

describeInBrowser('the dashboard of a large fleet', () => {
  const { newPage } = useChromium();
  let server: RunningServer;
  let feed: DashboardFeed;
  const events = new Events(pino({ level: 'silent' }));

  beforeAll(async () => {
    const connections = fleet();
    feed = new DashboardFeed(events, { connections: () => connections, globalStep: () => 0 });
    server = await startTestServer(
      {
        protectedRoutes: new Map(),
        dashboardRoutes: new Map(feed.routes()),
        publicRoutes: new Map([...publicPageRoutes(), ...dashboardPageRoutes()]),
      },
      { worker: 'sesame', dashboard: 'peek' },
    );
  });
  afterAll(async () => {
    feed.close();
    await server.close();
  });

  it('summarises 300 workers and finds any of them by id, agent or address', async () => {
    const page = await newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`http://127.0.0.1:${server.port}/dashboard#token=peek`);
    await page.waitForSelector('#status.live');
    // A join makes the feed sample the fleet at once.
    events.emit('workerJoined', { workerId: 'w1', workers: FLEET, kind: 'browser', agent: 'a', remote: 'r' });
    await page.waitForFunction(() => document.getElementById('worker-counts')?.textContent?.startsWith('300 workers'));
    const counts = await page.$$eval('#worker-counts span', (spans) =>
      Object.fromEntries(spans.map((s) => [(s as HTMLElement).dataset.count, Number(s.textContent)])),
    );
    expect(counts).toEqual({ computing: 264, idle: 0, standby: 6, loading: 30, left: 0, banned: 0 });
    expect(await page.isVisible('#all-workers')).toBe(false);
    expect(await page.isVisible('#extremes')).toBe(true);
    expect(await texts(page, '#fastest tr td:first-child')).toEqual(['w299', 'w298', 'w297', 'w296', 'w295']);
    expect(await texts(page, '#slowest tr td:first-child')).toEqual(['w1', 'w2', 'w3', 'w4', 'w5']);
    expect(await page.$$('#fastest tr')).toHaveLength(EXTREMES);

    // By id: w123 alone; the table is the one search result.
    await page.fill('#worker-search', 'w123');
    await page.waitForSelector('#search-results tr[data-id="w123"]');
    expect(await texts(page, '#search-results tr td:first-child')).toEqual(['w123']);
    expect(await page.textContent('#search-note')).toBe('1 worker matches:');
    // By address: the Node workers (every third) are on 10.0.1.x.
    await page.fill('#worker-search', '10.0.1.');
    await page.waitForFunction(() => document.getElementById('search-note')?.textContent?.startsWith('100 workers'));
    expect(await page.textContent('#search-note')).toBe('100 workers match; the first 50:');
    expect(await page.$$('#search-results tr')).toHaveLength(50);
    // By agent, whatever the case.
    await page.fill('#worker-search', 'NODE 20');
    await page.waitForFunction(() => document.getElementById('search-note')?.textContent?.startsWith('100 workers'));
    await page.fill('#worker-search', 'no such worker');
    await page.waitForFunction(() => document.getElementById('search-note')?.textContent?.startsWith('no worker'));
    expect(await page.isVisible('#search-table')).toBe(false);
    await page.fill('#worker-search', 'w12');
    await page.waitForSelector('#search-results tr[data-id="w12"]');
    await page.screenshot({ path: outputPath('dashboard-fleet.png'), fullPage: true });
  });
});
