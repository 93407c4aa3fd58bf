// A relay's named tokens, end to end (real coordinator, relay and worker processes):
// --tokens FILE admits each name's workers besides --worker-token and names them in
// the relay's log and in its ban reports upstream; a wrong token is refused; a line
// removed from the file disconnects that name's workers while the run goes on to
// `flocktrain train`'s weights hash; and a bad file is one line before the relay joins.

import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Forgery, ForgingRelay } from '../support/forging-relay.js';
import { coordinatorDone, oneLineError, Sandbox, startRelay, useE2eCleanup } from './harness.js';

useE2eCleanup();

// 1,200 training samples / 40 = 30 steps, 5 shards of 8 per step.
const ARGS = [
  '--dataset',
  'blobs',
  '--samples',
  '1500',
  '--hidden',
  '32',
  '--batch-size',
  '40',
  '--shard-size',
  '8',
  '--log-every',
  '1',
  '--epochs',
  '1',
];

const ALICE = 'alice-token-0123456789';
const BOB = 'bob-token-0123456789ab';
const MALLORY = 'mallory-token-01234567';
const DASHBOARD = 'dashboard-token-0123456789';

const forgers: ForgingRelay[] = [];
afterEach(async () => {
  await Promise.all(forgers.splice(0).map((f) => f.close()));
});

describe('flocktrain relay --tokens FILE', () => {
  it("admits named workers by name, refuses a wrong token, disconnects a revoked name; train's hash", async () => {
    const sb = new Sandbox();
    const reference = sb.train(ARGS, 120_000);
    const file = sb.path('tokens.txt');
    writeFileSync(file, `alice ${ALICE}\nbob ${BOB}\nmallory ${MALLORY}\n`);
    const c = await sb.coordinator([...ARGS, '--min-workers', '1']);
    // Two of its own before it is ready upstream: nothing trains while alice is revoked.
    const relay = await startRelay(sb, c, 'relay', 2, ['--tokens', file, '--dashboard-token', DASHBOARD]);
    expect(String(relay.join.dashboard)).toMatch(new RegExp(`/dashboard#token=${DASHBOARD}$`));

    const alice = sb.worker({ url: relay.url, token: ALICE }, 'alice-laptop');
    const joined = await relay.proc.waitForMsg('worker joined', (l) => l.agent === 'alice-laptop [alice]');
    const stranger = sb.worker({ url: relay.url, token: 'not-a-token-0123456789' }, 'stranger');
    expect((await stranger.waitForExit(30_000)).code).toBe(1);
    expect(oneLineError(stranger.stderr)).toMatch(/refused the token/);

    writeFileSync(file, `bob ${BOB}\nmallory ${MALLORY}\n`);
    await relay.proc.waitForMsg('tokens reloaded', (l) => JSON.stringify(l.revoked) === '["alice"]');
    expect((await alice.waitForExit(30_000)).code).toBe(1);
    expect(oneLineError(alice.stderr)).toBe(
      `flocktrain: the coordinator at ${new URL(relay.url).host} refused the token (token revoked)`,
    );
    await relay.proc.waitForMsg('token revoked; disconnecting', (l) => l.tokenName === 'alice');
    const left = await relay.proc.waitForMsg('worker left', (l) => l.workerId === joined.workerId);
    expect(left.reason).toMatch(/token alice revoked/);

    // Bob computes honestly; mallory's results are forged on their way, so the relay bans
    // her and tells its coordinator under her token's name.
    const bob = sb.worker({ url: relay.url, token: BOB }, 'bob-desktop');
    const mitm = await ForgingRelay.start(relay.url, Forgery.ScaleAll);
    forgers.push(mitm);
    const mallory = sb.worker({ url: mitm.url, token: MALLORY }, 'forger');
    const banned = await relay.proc.waitForMsg('worker banned', (l) => l.agent === 'forger [mallory]', {
      timeoutMs: 120_000,
    });
    expect((await mallory.waitForExit(30_000)).code).toBe(1);
    const reported = await c.proc.waitForMsg('a relay banned one of its workers');
    expect(reported).toMatchObject({ relayAgent: 'relay', agent: 'forger [mallory]', workerId: banned.workerId });

    const done = await coordinatorDone(c, 180_000);
    expect(done.weightsHash).toBe(String((await reference).weightsHash));
    expect((await relay.proc.waitForExit(30_000)).code, relay.proc.stderr).toBe(0);
    expect(Number((await relay.proc.waitForMsg('relay done')).fleetSteps)).toBeGreaterThan(0);
    expect((await bob.waitForExit(30_000)).code, bob.stderr).toBe(0);
    expect(relay.proc.linesWithMsg('worker joined', (l) => l.agent === 'bob-desktop [bob]')).toHaveLength(1);
  }, 300_000);

  it('says in one line what is wrong with its tokens file, before it joins its coordinator', async () => {
    const sb = new Sandbox();
    const file = sb.path('tokens.txt');
    writeFileSync(file, `alice ${ALICE}\nbob tiny\n`);
    const relay = (extra: readonly string[]) =>
      sb.run(['relay', '--url', 'ws://127.0.0.1:1', '--token', 'x'.repeat(32), '--port', '0', ...extra]);
    const short = await relay(['--tokens', file]);
    expect(short.code).not.toBe(0);
    expect(oneLineError(short.stderr)).toBe(`flocktrain: ${file}:2: the token of bob must be at least 16 characters`);
    const missing = await relay(['--tokens', sb.path('nowhere.txt')]);
    expect(oneLineError(missing.stderr)).toMatch(/^flocktrain: --tokens .*nowhere\.txt: cannot read it \(ENOENT\)$/);
    const dashboard = await relay(['--dashboard-token', 'abc']);
    expect(oneLineError(dashboard.stderr)).toMatch(/--dashboard-token must be at least 16 characters/);
  }, 60_000);
});
