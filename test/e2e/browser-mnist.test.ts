// MNIST in a real browser tab: the tab downloads the byte-pixel dataset (compressed by
// the coordinator), checks its hash, widens it to float32 in the tab, and trains with
// the coordinator to the very weightsHash of `flocktrain train`.

import { expect, it } from 'vitest';
import { describeInBrowser, pageStatus, useChromium } from '../browser/support.js';

const RUN = ['--dataset', 'mnist', '--epochs', '1', '--batch-size', '512', '--shard-size', '128'];

describeInBrowser('MNIST in a browser tab', () => {
  const { lab, newPage } = useChromium();

  it('a tab trains on the byte-pixel MNIST to the weightsHash of flocktrain train', async () => {
    const reference = lab.train(RUN);
    const c = await lab.coordinator([...RUN, '--min-workers', '1']);
    const tab = await newPage({ viewport: { width: 720, height: 560 } });
    await tab.goto(c.link);
    const done = await c.proc.waitFor('done', () => true, 90_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
    expect(await c.proc.exited).toBe(0);
    const status = await pageStatus(tab);
    expect(status.dataset).toMatch(/^mnist: downloaded .* hash checked/);
    expect(c.proc.linesWith('worker joined').map((l) => l.kind)).toEqual(['browser']);
  });
});
