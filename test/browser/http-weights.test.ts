// A browser tab as a worker of a coordinator started with --weights-over-http: the tab
// fetches every weights version it computes with from /weights/<version>-<sha256> on its
// page's origin, checks the hash, and the run ends with `flocktrain train`'s weights.

import { expect, it } from 'vitest';
import { describeInBrowser, useChromium } from './support.js';

const RUN = ['--dataset', 'blobs', '--samples', '600', '--hidden', '16', '--epochs', '2', '--batch-size', '40'];

describeInBrowser('weights over HTTP in a browser tab', () => {
  const { lab, newPage } = useChromium();

  it('a tab fetches the weights by path and trains to the weightsHash of flocktrain train', async () => {
    const reference = lab.train(RUN);
    const c = await lab.coordinator([...RUN, '--weights-over-http', '--min-workers', '1']);
    const tab = await newPage();
    await tab.goto(c.link);
    const done = await c.proc.waitFor('done', () => true, 90_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
    expect(await c.proc.exited).toBe(0);
    expect(c.proc.linesWith('worker joined').map((l) => l.kind)).toEqual(['browser']);
    // One tab, no cache in front: each step's version went to it once, over HTTP (24 steps).
    const [served] = c.proc.linesWith('weights served over HTTP');
    expect(served).toMatchObject({ bodies: 24, maxBodiesPerVersion: 1, notFound: 0 });
  });
});
