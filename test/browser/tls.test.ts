// A chromium tab over https: the coordinator serves https and wss with a self-signed
// certificate (which the tab's context is told to accept, as a volunteer would after
// the browser's warning), the tab trains beside nobody else to `train`'s weights hash,
// and its address bar lost the token the moment the page read it.

import { expect, it } from 'vitest';
import { selfSignedCertificate } from '../support/self-signed.js';
import { describeInBrowser, useChromium } from './support.js';

const RUN = ['--dataset', 'blobs', '--samples', '400', '--hidden', '16', '--batch-size', '32', '--epochs', '1'];

describeInBrowser('a tab over https', () => {
  const { lab, newPage } = useChromium();

  it("trains to train's weights hash, and the token leaves the address bar", async () => {
    const { cert, key } = selfSignedCertificate(lab.dir);
    const reference = lab.train(RUN);
    const c = await lab.coordinator([...RUN, '--tls-cert', cert, '--tls-key', key]);
    expect(c.link).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/#token=[0-9a-f]{32}$/);
    const page = await newPage({ ignoreHTTPSErrors: true });
    await page.goto(c.link);
    await page.waitForFunction(
      () => document.body.dataset.phase === 'training' || document.body.dataset.phase === 'closed',
    );
    expect(page.url()).not.toContain(c.token);
    expect(page.url()).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    const done = await c.proc.waitFor('done', () => true, 60_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
  });
});
