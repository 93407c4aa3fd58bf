// TLS end to end: a self-signed certificate made with the system's openssl, the
// coordinator serving https and wss with it on one port, and a Node worker that
// trusts it with --ca. The run must give `train`'s weights hash; a worker that does
// not trust the certificate must stop with one line; the join line's links are
// https and wss with the tokens in the fragment.

import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../support/self-signed.js';
import { coordinatorDone, oneLineError, Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

const RUN = ['--dataset', 'blobs', '--samples', '400', '--hidden', '16', '--batch-size', '32', '--epochs', '1'];

/** GET over https trusting `ca`; the status code. */
function status(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

describe('TLS', () => {
  it("serves https and wss on one port; a Node worker with --ca trains to train's hash", async () => {
    const sb = new Sandbox();
    const { cert, key } = selfSignedCertificate(sb.dir);
    const reference = sb.train(RUN);
    const c = await sb.coordinator([...RUN, '--tls-cert', cert, '--tls-key', key]);
    const port = new URL(c.url).port;
    expect(c.url).toBe(`wss://127.0.0.1:${port}`);
    expect(c.join.link).toBe(`https://127.0.0.1:${port}/#token=${c.token}`);
    expect(String(c.join.dashboard)).toMatch(
      new RegExp(`^https://127\\.0\\.0\\.1:${port}/dashboard#token=[0-9a-f]{32}$`),
    );
    expect(String(c.join.dashboard)).not.toContain(c.token);

    const ca = readFileSync(cert, 'utf8');
    expect(await status(`https://127.0.0.1:${port}/`, ca)).toBe(200);
    expect(await status(`https://127.0.0.1:${port}/events`, ca)).toBe(401);

    // Without --ca the certificate is not trusted: one line, nothing trained.
    const stranger = sb.worker(c, 'stranger', ['--threads', '1']);
    expect((await stranger.waitForExit()).code).toBe(1);
    expect(oneLineError(stranger.stderr)).toMatch(/^flocktrain: cannot connect to wss:\/\/127\.0\.0\.1:\d+\/: /);

    sb.worker(c, 'trusting', ['--threads', '1', '--ca', cert]);
    const done = await coordinatorDone(c);
    expect(done.weightsHash).toBe((await reference).weightsHash);
  });

  it('refuses a certificate without its key, and a file that is not PEM, with one line each', async () => {
    const sb = new Sandbox();
    const { cert } = selfSignedCertificate(sb.dir);
    const alone = await sb.run(['coordinator', ...RUN, '--port', '0', '--tls-cert', cert]);
    expect(oneLineError(alone.stderr)).toBe('flocktrain: --tls-cert and --tls-key go together: give both, or neither');
    const swapped = await sb.run(['coordinator', ...RUN, '--port', '0', '--tls-cert', cert, '--tls-key', cert]);
    expect(oneLineError(swapped.stderr)).toMatch(/^flocktrain: --tls-key .*: not a PEM private key$/);
  });
});
