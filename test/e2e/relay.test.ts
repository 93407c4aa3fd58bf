// Relays, end to end: real `flocktrain coordinator`, `relay` and `worker` processes on
// real sockets. A relay takes a block of each step upstream, spreads it over its own
// workers and pre-reduces their results along the same tree, so a run through relays
// ends on exactly `flocktrain train`'s weights hash: with two relays, a relay behind a
// relay, bf16 on the wire, MNIST's byte pixels, after a relay dies, after a relay's
// worker dies, and after a relay bans a forging worker of its own. And the
// coordinator's traffic grows with its relays, not with their workers. Its own server
// is a coordinator's: https and wss with --tls-cert, and the Origin checks with
// --allow-origin.

import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Forgery, ForgingRelay } from '../support/forging-relay.js';
import { selfSignedCertificate } from '../support/self-signed.js';
import {
  type CliProcess,
  closedPort,
  type Coordinator,
  coordinatorDone,
  oneLineError,
  Sandbox,
  startRelay,
  type Upstream,
  useE2eCleanup,
} from './harness.js';

useE2eCleanup();

// 1,200 training samples / 40 = 30 steps per epoch, 5 shards of 8 per step.
const config = (hidden = 32, batch = 40): string[] => [
  '--dataset',
  'blobs',
  '--samples',
  '1500',
  '--hidden',
  String(hidden),
  '--batch-size',
  String(batch),
  '--shard-size',
  '8',
  '--log-every',
  '1',
];
const CONFIG = config();

const references = new Map<string, Promise<string>>();
function trainHash(args: readonly string[]): Promise<string> {
  const key = args.join(' ');
  if (!references.has(key))
    references.set(
      key,
      new Sandbox().train(args, 120_000).then((d) => String(d.weightsHash)),
    );
  return references.get(key)!;
}

/**
 * A relay with `k` workers of its own, started and joined. `workerArgs`: e.g. a
 * --fault-delay-ms that keeps a run going long enough for a process to be killed in it.
 */
async function relayWithWorkers(sb: Sandbox, c: Upstream, name: string, k: number, workerArgs: readonly string[] = []) {
  const relay = await startRelay(sb, c, name, k);
  const workers: CliProcess[] = [];
  // A dataset cache each, so each downloads the dataset from its relay.
  for (let i = 1; i <= k; i++)
    workers.push(sb.worker(relay, `${name}-w${i}`, [...workerArgs, '--cache-dir', sb.path(`${name}-w${i}-cache`)]));
  return { relay, workers };
}

/** Results held back this long: a 60-step run then lasts seconds, and a kill lands mid-run. */
const SLOW = ['--fault-delay-ms', '100'];

/** 101 when a WebSocket with this Origin is upgraded at `url`, else the HTTP status it got. */
function upgradeStatus(url: string, origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { origin });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', reject);
  });
}

/** Mean of the step lines' bytesPerStep. */
function meanBytesPerStep(c: Coordinator): number {
  const steps = c.proc.linesWithMsg('step').map((l) => Number(l.bytesPerStep));
  expect(steps.length).toBeGreaterThan(0);
  return steps.reduce((a, b) => a + b, 0) / steps.length;
}

describe('flocktrain relay', () => {
  it("two relays with three workers each end on train's hash", async () => {
    const args = [...CONFIG, '--epochs', '1'];
    const sb = new Sandbox();
    const c = await sb.coordinator([...args, '--min-workers', '2']);
    const a = await relayWithWorkers(sb, c, 'relay-a', 3);
    const b = await relayWithWorkers(sb, c, 'relay-b', 3);
    const done = await coordinatorDone(c, 120_000);
    expect(done.weightsHash).toBe(await trainHash(args));
    // Upstream, each relay is one worker.
    expect(c.proc.linesWithMsg('worker joined').map((l) => l.agent)).toEqual(
      expect.arrayContaining(['relay-a', 'relay-b']),
    );
    expect(c.proc.linesWithMsg('worker joined')).toHaveLength(2);
    for (const { relay, workers } of [a, b]) {
      expect((await relay.proc.waitForExit(30_000)).code, relay.proc.stderr).toBe(0);
      const tally = await relay.proc.waitForMsg('relay done');
      expect(Number(tally.fleetSteps)).toBeGreaterThan(0);
      expect(tally.reruns).toBe(0);
      // Its workers came to it, fetched the dataset from it (they know no other address), computed, and were
      // told the run is over.
      for (const w of workers) {
        expect((await w.waitForExit(30_000)).code, w.stderr).toBe(0);
        expect(w.linesWithMsg('dataset downloaded')).toHaveLength(1);
      }
      expect(relay.proc.linesWithMsg('worker joined')).toHaveLength(3);
      const left = relay.proc.linesWithMsg('worker left');
      expect(left.some((l) => Number(l.tasksDone) > 0)).toBe(true);
    }
  }, 240_000);

  it("a relay behind a relay: two levels of pre-reduction, train's hash", async () => {
    const args = [...CONFIG, '--epochs', '1'];
    const sb = new Sandbox();
    const c = await sb.coordinator(args);
    const outer = await startRelay(sb, c, 'outer', 1);
    const inner = await relayWithWorkers(sb, outer, 'inner', 2);
    const done = await coordinatorDone(c, 120_000);
    expect(done.weightsHash).toBe(await trainHash(args));
    for (const relay of [outer, inner.relay])
      expect(Number((await relay.proc.waitForMsg('relay done')).fleetSteps)).toBeGreaterThan(0);
  }, 240_000);

  it("with bf16 on the wire, a relay rounds its nodes where the coordinator would: train's hash", async () => {
    const args = [...CONFIG, '--epochs', '1', '--wire-dtype', 'bf16'];
    const sb = new Sandbox();
    const c = await sb.coordinator(args);
    const { relay } = await relayWithWorkers(sb, c, 'relay', 2);
    const done = await coordinatorDone(c, 120_000);
    expect(done.weightsHash).toBe(await trainHash(args));
    expect(Number((await relay.proc.waitForMsg('relay done')).fleetSteps)).toBeGreaterThan(0);
  }, 240_000);

  it("serves MNIST's byte pixels under the coordinator's hash, and ends on train's hash", async () => {
    const args = ['--hidden', '16', '--batch-size', '512', '--shard-size', '64', '--epochs', '1'];
    const sb = new Sandbox();
    const c = await sb.coordinator(args);
    const { relay, workers } = await relayWithWorkers(sb, c, 'relay', 1);
    const done = await coordinatorDone(c, 120_000);
    expect(done.weightsHash).toBe(await trainHash(args));
    // Bytes on the wire, both hops: the relay narrowed what it loaded back to the coordinator's form.
    expect(workers[0].linesWithMsg('dataset downloaded')).toMatchObject([{ dtype: 'u8' }]);
    expect(relay.proc.linesWithMsg('dataset downloaded')).toMatchObject([{ dtype: 'u8' }]);
    expect((await workers[0].waitForExit(30_000)).code).toBe(0);
  }, 240_000);

  it("a relay killed mid-run has its block reassigned, and the run ends on train's hash", async () => {
    const args = [...CONFIG, '--epochs', '2'];
    const sb = new Sandbox();
    // Debug lines: each task assigned is logged.
    const c = await sb.coordinator([...args, '--min-workers', '2', '--log-level', 'debug']);
    const doomed = await relayWithWorkers(sb, c, 'doomed', 1, SLOW);
    const kept = await relayWithWorkers(sb, c, 'kept', 1, SLOW);
    const doomedId = String((await c.proc.waitForMsg('worker joined', (l) => l.agent === 'doomed')).workerId);
    const third = c.proc.lines.indexOf(
      await c.proc.waitForMsg('step', (l) => Number(l.step) >= 3, { timeoutMs: 60_000 }),
    );
    await c.proc.waitForMsg('task assigned', (l) => l.workerId === doomedId, { from: third });
    doomed.relay.proc.signal('SIGKILL');
    await c.proc.waitForMsg('worker left', (l) => l.workerId === doomedId);
    // Its worker holds results back, so the relay died holding its block, which went to the other relay.
    await c.proc.waitForMsg('reassigning shards', (l) => l.workerId === doomedId);
    const done = await coordinatorDone(c, 180_000);
    expect(done.weightsHash).toBe(await trainHash(args));
    expect((await kept.relay.proc.waitForExit(30_000)).code).toBe(0);
    // Steps ran after the relay died, on the other one alone.
    const at = c.proc.lines.findIndex((l) => l.msg === 'worker left' && l.workerId === doomedId);
    expect(c.proc.lines.slice(at).some((l) => l.msg === 'step')).toBe(true);
  }, 240_000);

  it("a worker inside a relay killed: the relay carries on with the others, and train's hash", async () => {
    const args = [...CONFIG, '--epochs', '2'];
    const sb = new Sandbox();
    const c = await sb.coordinator([...args, '--min-workers', '1']);
    const relay = await startRelay(sb, c, 'relay', 2, ['--log-level', 'debug']);
    const workers = [sb.worker(relay, 'relay-w1', SLOW), sb.worker(relay, 'relay-w2', SLOW)];
    const doomedId = (await relay.proc.waitForMsg('worker joined', (l) => l.agent === 'relay-w1')).workerId;
    await c.proc.waitForMsg('step', (l) => Number(l.step) >= 3, { timeoutMs: 60_000 });
    // Killed holding shards of a partial step (its results are held back): the relay gives them to the other.
    const from = relay.proc.lines.length;
    const assigned = await relay.proc.waitForMsg('task assigned', (l) => l.workerId === doomedId, { from });
    workers[0].signal('SIGKILL');
    await relay.proc.waitForMsg('worker left', (l) => l.workerId === doomedId);
    await relay.proc.waitForMsg('reassigning shards', (l) => l.workerId === doomedId, {
      from: relay.proc.lines.indexOf(assigned),
    });
    const done = await coordinatorDone(c, 180_000);
    expect(done.weightsHash).toBe(await trainHash(args));
    // The relay stayed the coordinator's only worker throughout, and its other worker finished the run.
    expect(c.proc.linesWithMsg('worker left').filter((l) => l.reason !== 'closed (4000 training finished)')).toEqual(
      [],
    );
    expect((await workers[1].waitForExit(30_000)).code).toBe(0);
    // Steps went on after the kill.
    const at = c.proc.lines.findIndex((l) => l.msg === 'step' && Number(l.step) >= 3);
    expect(c.proc.lines.slice(at + 1).some((l) => l.msg === 'step')).toBe(true);
    expect((await relay.proc.waitForExit(30_000)).code).toBe(0);
  }, 240_000);

  it("a relay's forging worker is banned by the relay, reported upstream, and the hash is train's", async () => {
    const args = [...CONFIG, '--epochs', '1'];
    const sb = new Sandbox();
    const c = await sb.coordinator([...args, '--min-workers', '1']);
    const relay = await startRelay(sb, c, 'relay', 2);
    const mitm = await ForgingRelay.start(relay.url, Forgery.ScaleAll);
    relays.push(mitm);
    const honest = sb.worker(relay, 'honest');
    const forger = sb.worker({ url: mitm.url, token: relay.token }, 'forger');
    const banned = await relay.proc.waitForMsg('worker banned', (l) => l.agent === 'forger', { timeoutMs: 120_000 });
    expect(banned.reason).toBe('forged');
    // Closed with BANNED, a final code: the forger gives up.
    expect((await forger.waitForExit(30_000)).code).toBe(1);
    const reported = await c.proc.waitForMsg('a relay banned one of its workers');
    expect(reported).toMatchObject({ relayAgent: 'relay', agent: 'forger', workerId: banned.workerId });
    const done = await coordinatorDone(c, 180_000);
    expect(done.weightsHash).toBe(await trainHash(args));
    // Upstream the relay itself is not suspected: nothing banned there.
    expect(done.banned).toBe(0);
    expect(mitm.forged).toBeGreaterThan(0);
    expect((await honest.waitForExit(30_000)).code).toBe(0);
  }, 240_000);

  it("serves its workers https and wss with --tls-cert: a Node worker with --ca joins it, train's hash", async () => {
    const args = [...CONFIG, '--epochs', '1'];
    const sb = new Sandbox();
    const { cert, key } = selfSignedCertificate(sb.dir);
    const c = await sb.coordinator(args);
    const relay = await startRelay(sb, c, 'relay', 1, ['--tls-cert', cert, '--tls-key', key]);
    const port = new URL(relay.url).port;
    expect(relay.url).toBe(`wss://127.0.0.1:${port}`);
    const join = await relay.proc.waitForMsg('join');
    expect(join.link).toBe(`https://127.0.0.1:${port}/#token=${relay.token}`);
    expect(join.command).toBe(`npx flocktrain worker --url ${relay.url} --token ${relay.token}`);
    // Not trusting the relay's certificate: one line, nothing computed.
    const stranger = sb.worker(relay, 'stranger');
    expect((await stranger.waitForExit(30_000)).code).toBe(1);
    expect(oneLineError(stranger.stderr)).toMatch(/^flocktrain: cannot connect to wss:\/\/127\.0\.0\.1:\d+\/: /);
    const trusting = sb.worker(relay, 'trusting', ['--ca', cert, '--cache-dir', sb.path('trusting-cache')]);
    const done = await coordinatorDone(c, 120_000);
    expect(done.weightsHash).toBe(await trainHash(args));
    expect(Number((await relay.proc.waitForMsg('relay done')).fleetSteps)).toBeGreaterThan(0);
    // It fetched the dataset from the relay, over https.
    expect(trusting.linesWithMsg('dataset downloaded')).toHaveLength(1);
    expect((await trusting.waitForExit(30_000)).code).toBe(0);
  }, 240_000);

  it("takes worker sockets from its own origin and --allow-origin's; a foreign page gets 403", async () => {
    const sb = new Sandbox();
    const c = await sb.coordinator([...CONFIG, '--epochs', '1']);
    const relay = await startRelay(sb, c, 'relay', 1, ['--allow-origin', 'https://proxy.example']);
    const own = relay.url.replace('ws://', 'http://');
    expect(await upgradeStatus(relay.url, own)).toBe(101);
    expect(await upgradeStatus(relay.url, 'https://proxy.example')).toBe(101);
    // The coordinator's page is another origin to the relay.
    expect(await upgradeStatus(relay.url, c.url.replace('ws://', 'http://'))).toBe(403);
    expect(await upgradeStatus(relay.url, 'http://evil.example')).toBe(403);
  }, 60_000);

  it('says in one line what is wrong with its certificate files', async () => {
    const sb = new Sandbox();
    const { cert, key } = selfSignedCertificate(sb.dir);
    const relay = (extra: readonly string[]) =>
      sb.run(['relay', '--url', 'ws://127.0.0.1:1', '--token', 'x'.repeat(32), '--port', '0', ...extra]);
    const missing = await relay(['--tls-cert', sb.path('nowhere.pem'), '--tls-key', key]);
    expect(missing.code).not.toBe(0);
    expect(oneLineError(missing.stderr)).toMatch(/^flocktrain: --tls-cert .*nowhere\.pem: cannot read it \(ENOENT\)$/);
    const alone = await relay(['--tls-cert', cert]);
    expect(oneLineError(alone.stderr)).toBe('flocktrain: --tls-cert and --tls-key go together: give both, or neither');
    const swapped = await relay(['--tls-cert', cert, '--tls-key', cert]);
    expect(oneLineError(swapped.stderr)).toMatch(/^flocktrain: --tls-key .*: not a PEM private key$/);
  }, 60_000);

  it('says in one line what is wrong with its flags, or with its coordinator', async () => {
    const sb = new Sandbox();
    const token = 'x'.repeat(32);
    const badUrl = await sb.run(['relay', '--url', 'http://127.0.0.1:1', '--token', token]);
    expect(badUrl.code).not.toBe(0);
    expect(oneLineError(badUrl.stderr)).toMatch(/--url.*ws:\/\/ or wss:\/\/ URL/);
    const shortToken = await sb.run(['relay', '--url', 'ws://127.0.0.1:1', '--token', token, '--worker-token', 'abc']);
    expect(oneLineError(shortToken.stderr)).toMatch(/--worker-token must be at least 16 characters/);
    const port = await closedPort();
    const unreachable = await sb.run(['relay', '--url', `ws://127.0.0.1:${port}`, '--token', token]);
    expect(unreachable.code).toBe(1);
    expect(oneLineError(unreachable.stderr)).toMatch(/cannot connect to ws:\/\/127\.0\.0\.1:\d+\/: ECONNREFUSED/);
    const c = await sb.coordinator([...CONFIG, '--epochs', '1']);
    const refused = await sb.run(['relay', '--url', c.url, '--token', token, '--port', '0']);
    expect(refused.code).toBe(1);
    expect(oneLineError(refused.stderr)).toMatch(/refused the token/);
    const taken = await sb.run(['relay', '--url', c.url, '--token', c.token, '--port', new URL(c.url).port]);
    expect(taken.code).toBe(1);
    expect(oneLineError(taken.stderr)).toMatch(/^flocktrain: port \d+ on 127\.0\.0\.1 is in use/);
  }, 120_000);

  it("the coordinator's bytes per step grow with its relays, not with their workers", async () => {
    // Wider layers, so weights and gradients outweigh the messages' other fields; no audits.
    // 64-sample steps: 8 shards, which two relays of equal speed split into one tree node each.
    const args = [...config(256, 64), '--epochs', '1', '--probation', '0', '--audit-rate', '0'];
    const measure = async (relayWorkers: readonly number[]): Promise<number> => {
      const sb = new Sandbox();
      const c = await sb.coordinator([...args, '--min-workers', String(relayWorkers.length)]);
      for (const [i, k] of relayWorkers.entries()) await relayWithWorkers(sb, c, `relay-${i}`, k);
      await coordinatorDone(c, 180_000);
      return meanBytesPerStep(c);
    };
    const one = await measure([1]);
    const oneOfFour = await measure([4]);
    const two = await measure([1, 1]);
    const seen = `bytes per step: ${one} with 1 relay of 1 worker, ${oneOfFour} of 4, ${two} with 2 relays`;
    // One weights message down and one gradient up per step, however many workers the relay has.
    expect(oneOfFour / one, seen).toBeGreaterThan(0.8);
    expect(oneOfFour / one, seen).toBeLessThan(1.25);
    // Two relays: a weights message each, and a gradient each (a third when the step's 8 shards are cut unevenly).
    expect(two / one, seen).toBeGreaterThan(1.5);
    expect(two / one, seen).toBeLessThan(3);
  }, 360_000);
});

const relays: ForgingRelay[] = [];
afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.close()));
});
