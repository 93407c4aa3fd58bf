// A convolutional model with dropout, trained by a mixed fleet: a coordinator, one Node
// worker process and one headless chromium tab end with the weightsHash of `flocktrain
// train`. The tab runs the conv, pooling and dropout kernels of the browser bundle, and
// its dropout masks follow (seed, step, sample index) as the Node worker's do.

import { join } from 'node:path';
import { expect, it } from 'vitest';
import { writeImageCsv } from '../support/image-csv.js';
import { describeInBrowser, pageStatus, useChromium } from './support.js';

describeInBrowser('a CNN with dropout on a mixed fleet', () => {
  const { lab, newPage } = useChromium();

  it('1 Node worker + 1 tab train to the weightsHash of flocktrain train', async () => {
    const csv = join(lab.dir, 'images.csv');
    writeImageCsv(csv, 300, [1, 8, 8]);
    const run = [
      '--csv',
      csv,
      '--input-shape',
      '1x8x8',
      '--layers',
      'conv2d:4:3:1:1,relu,maxpool2d:2,conv2d:6:3,leaky_relu,avgpool2d:2:1,flatten,dropout:0.25,dense:3',
      '--epochs',
      '2',
      '--batch-size',
      '40',
      '--shard-size',
      '8',
      '--lr',
      '0.05',
    ];
    const reference = lab.train(run);
    const c = await lab.coordinator([...run, '--min-workers', '2']);
    const tab = await newPage({ viewport: { width: 720, height: 560 } });
    await tab.goto(c.link);
    lab.worker(c.url, c.token, 'node-1');
    const done = await c.proc.waitFor('done', () => true, 60_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
    expect(await c.proc.exited).toBe(0);
    expect(
      c.proc
        .linesWith('worker joined')
        .map((l) => l.kind)
        .sort(),
    ).toEqual(['browser', 'node']);
    await tab.waitForFunction(() => document.getElementById('message')?.textContent?.includes('Training finished'));
    expect(Number((await pageStatus(tab)).tasks)).toBeGreaterThan(0);
  });
});
