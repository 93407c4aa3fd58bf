// Browser tabs behind a relay: a coordinator, one `flocktrain relay` process, and a
// mixed fleet of its own (two tabs of one profile opened on the link the relay prints,
// plus one Node worker). The tabs compute partial steps for the relay, the dataset
// crosses the coordinator's route once (to the relay) and the relay's route once per
// profile and Node worker, and the run ends on `flocktrain train`'s weights hash.
// Served over https on the LAN address, a relay's tabs are in a secure context: the
// profile's dataset store takes its Web Lock, and one tab downloads for both.

import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { selfSignedCertificate } from '../support/self-signed.js';
import { type Cli, describeInBrowser, type Lab, type LogLine, pageStatus, useChromium } from './support.js';

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
  '40',
  '--shard-size',
  '8',
];

/** A relay of the coordinator `c` waiting for `minWorkers` of its own, and the join line it prints. */
async function startRelay(
  lab: Lab,
  c: { url: string; token: string },
  minWorkers: number,
  extra: readonly string[] = [],
): Promise<{ proc: Cli; join: LogLine }> {
  const proc = lab.start([
    'relay',
    '--url',
    c.url,
    '--token',
    c.token,
    '--name',
    'relay',
    '--port',
    '0',
    '--min-workers',
    String(minWorkers),
    '--cache-dir',
    `${lab.dir}/relay-cache`,
    '--log-format',
    'json',
    // For its dataset route's "dataset served" lines.
    '--log-level',
    'debug',
    ...extra,
  ]);
  return { proc, join: await proc.waitFor('join', () => true, 60_000) };
}

/** The 200 answers of a dataset route, from its debug lines. */
function bodiesServed(proc: Cli): LogLine[] {
  return proc.linesWith('dataset served').filter((l) => l.status === 200);
}

describeInBrowser('browser tabs behind a relay', () => {
  const { lab, newPage } = useChromium();

  it("two tabs of one profile and a Node worker train through a relay to train's hash", async () => {
    const reference = lab.train(RUN);
    const c = await lab.coordinator([...RUN, '--log-level', 'debug']);
    const relay = await startRelay(lab, c, 3);
    const link = String(relay.join.link);
    const url = String(relay.join.url);
    const token = String(relay.join.token);
    expect(link).toBe(`${url.replace('ws://', 'http://')}/#token=${token}`);
    expect(url).not.toBe(c.url);

    // One profile: the tabs share its dataset store, so one of them downloads.
    const first = await newPage({ viewport: { width: 720, height: 560 } });
    const second = await first.context().newPage();
    const tabs: Page[] = [first, second];
    await Promise.all(tabs.map((t) => t.goto(link)));
    lab.start([
      'worker',
      '--url',
      url,
      '--token',
      token,
      '--name',
      'node-1',
      '--cache-dir',
      `${lab.dir}/node-1-cache`,
      '--log-format',
      'json',
    ]);

    const done = await c.proc.waitFor('done', () => true, 90_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
    expect(await c.proc.exited).toBe(0);
    expect(await relay.proc.exited).toBe(0);

    // Upstream the relay is the one worker; the fleet is its own.
    expect(c.proc.linesWith('worker joined').map((l) => l.agent)).toEqual(['relay']);
    const joined = relay.proc.linesWith('worker joined');
    expect(joined.map((l) => l.kind).sort()).toEqual(['browser', 'browser', 'node']);
    const tally = await relay.proc.waitFor('relay done');
    expect(Number(tally.fleetSteps)).toBeGreaterThan(0);
    // Each tab computed tasks of the relay's partial steps.
    const left = relay.proc.linesWith('worker left');
    for (const tab of joined.filter((l) => l.kind === 'browser')) {
      const gone = left.find((l) => l.workerId === tab.workerId);
      expect(Number(gone?.tasksDone), `${String(tab.workerId)} left: ${JSON.stringify(gone)}`).toBeGreaterThan(0);
    }
    for (const tab of tabs) {
      await tab.waitForSelector('body[data-phase="closed"]', { state: 'attached' });
      const status = await pageStatus(tab);
      expect(Number(status.tasks)).toBeGreaterThan(0);
      expect(status.message).toContain('Training finished');
    }

    // The coordinator served the dataset once, to the relay; the fleet fetched it from the relay.
    expect(bodiesServed(c.proc)).toHaveLength(1);
    expect(relay.proc.linesWith('dataset downloaded')).toHaveLength(1);
    const sources = await Promise.all(tabs.map(async (t) => (await pageStatus(t)).dataset));
    expect(
      sources.filter((s) => /downloaded/.test(s)),
      sources.join(' | '),
    ).toHaveLength(1);
    // One body for the profile, one for the Node worker.
    expect(bodiesServed(relay.proc)).toHaveLength(2);
  });

  it("a relay serving https on the LAN: a profile's tabs join in a secure context, train's hash", async () => {
    const { cert, key } = selfSignedCertificate(lab.dir);
    const reference = lab.train(RUN);
    const c = await lab.coordinator(RUN);
    // On all interfaces, the link names the LAN address (where a machine has one), which
    // only https makes a secure context; the tabs' context accepts the certificate as a
    // volunteer would after the browser's warning.
    const relay = await startRelay(lab, c, 2, ['--host', '0.0.0.0', '--tls-cert', cert, '--tls-key', key]);
    const link = String(relay.join.link);
    expect(link).toMatch(/^https:\/\/[0-9.]+:\d+\/#token=[0-9a-f]{32}$/);
    expect(String(relay.join.url)).toBe(`wss://${new URL(link).host}`);
    const first = await newPage({ ignoreHTTPSErrors: true });
    const tabs: Page[] = [first, await first.context().newPage()];
    await Promise.all(tabs.map((t) => t.goto(link)));
    const done = await c.proc.waitFor('done', () => true, 90_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
    expect(relay.proc.linesWith('worker joined').map((l) => l.kind)).toEqual(['browser', 'browser']);
    for (const tab of tabs) {
      await tab.waitForSelector('body[data-phase="closed"]', { state: 'attached' });
      expect(Number((await pageStatus(tab)).tasks)).toBeGreaterThan(0);
      expect(await tab.evaluate(() => window.isSecureContext && 'locks' in navigator)).toBe(true);
    }
    // The store's Web Lock held: one download for the profile.
    const sources = await Promise.all(tabs.map(async (t) => (await pageStatus(t)).dataset));
    expect(
      sources.filter((s) => /downloaded/.test(s)),
      sources.join(' | '),
    ).toHaveLength(1);
    expect(bodiesServed(relay.proc)).toHaveLength(1);
  });
});
