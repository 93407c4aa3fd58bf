// `node dist/scripts/screenshots.js`: the README's pictures. Trains the default MNIST
// model with one Node worker and two headless-chromium tabs and, in the second epoch,
// photographs the dashboard (docs/dashboard.png) and a tab's worker page
// (docs/worker.png). Needs a build (npm run build) and /usr/bin/chromium.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CliRun, coordinator, launchChromium, ROOT } from './browser-lab.js';

async function main(): Promise<void> {
  const docs = join(ROOT, 'docs');
  mkdirSync(docs, { recursive: true });
  const browser = await launchChromium();
  const c = await coordinator(['--epochs', '3', '--min-workers', '3', '--log-every', '5']);
  let worker: CliRun | null = null;
  try {
    const dashboard = await (await browser.newContext({ viewport: { width: 1280, height: 980 } })).newPage();
    await dashboard.goto(c.dashboard);
    const tabs = [];
    for (let i = 0; i < 2; i++) {
      const page = await (await browser.newContext({ viewport: { width: 720, height: 560 } })).newPage();
      await page.goto(c.link);
      tabs.push(page);
    }
    worker = new CliRun([
      'worker',
      '--url',
      c.url,
      '--token',
      c.token,
      '--name',
      'laptop-1',
      '--log-level',
      'warn',
      '--log-format',
      'json',
    ]);
    await c.run.waitFor('epoch');
    await new Promise((r) => setTimeout(r, 3000));
    await dashboard.screenshot({ path: join(docs, 'dashboard.png'), fullPage: true });
    await tabs[0].screenshot({ path: join(docs, 'worker.png') });
    process.stdout.write(`wrote ${join(docs, 'dashboard.png')} and ${join(docs, 'worker.png')}\n`);
  } finally {
    c.run.kill();
    worker?.kill();
    await browser.close();
  }
}

await main();
