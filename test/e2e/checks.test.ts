// Audits on idle workers, end to end: a real coordinator with every result past
// probation audited (`--probation 0 --audit-rate 1`), real `flocktrain worker`
// processes, and one shard per step, so whoever is not computing the step is idle and
// may be sent another worker's task as a `check`, to answer with a `digest`. An honest
// checker's digest passes the audit; a forged result (rewritten on the wire by
// test/support/forging-relay.ts) is exposed by an honest checker's digest and its
// author banned; a checker that lies about its digest (`--fault-digest`) is exposed by
// the coordinator's recomputation and banned, and the worker it accused is not. Every
// run ends on `flocktrain train`'s weights hash.
//
// Workers hold their results back (`--fault-delay-ms`) so that a check, answered at
// once, is back long before the next step's result: then an audit always finds an idle
// worker with no check out. The scheduler gives the one shard of a step to the fastest
// worker; the delay changes who computes, never the bits.

import { afterEach, describe, expect, it } from 'vitest';
import { Forgery, ForgingRelay } from '../support/forging-relay.js';
import { type Coordinator, coordinatorDone, type LogLine, Sandbox, useE2eCleanup, workerIdOf } from './harness.js';

useE2eCleanup();

// 600 blobs, 480 for training: 60 steps of one 8-sample shard.
const CONFIG = [
  '--dataset',
  'blobs',
  '--samples',
  '600',
  '--hidden',
  '16',
  '--batch-size',
  '8',
  '--shard-size',
  '8',
  '--epochs',
  '1',
  '--log-every',
  '10',
];
const AUDIT_ALL = ['--probation', '0', '--audit-rate', '1', '--log-level', 'debug'];
const SLOW = ['--fault-delay-ms', '40'];

let reference: Promise<string> | null = null;
function trainHash(): Promise<string> {
  reference ??= new Sandbox().train(CONFIG, 60_000).then((d) => String(d.weightsHash));
  return reference;
}

const relays: ForgingRelay[] = [];
afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

/** The coordinator's 'check sent' lines: the checker is the line's workerId. */
function checksSent(c: Coordinator, to?: string): LogLine[] {
  return c.proc.linesWithMsg('check sent', (l) => to === undefined || l.workerId === to);
}

const DIFFERS = "check's digest differs from the result's: recomputing here";

describe('checks on idle workers over real sockets', () => {
  it("an honest checker's digest confirms honest results; the hash is train's", async () => {
    const sb = new Sandbox();
    const c = await sb.coordinator([...CONFIG, ...AUDIT_ALL, '--min-workers', '3']);
    const workers = ['a', 'b', 'c'].map((name) => sb.worker(c, name, name === 'a' ? [] : SLOW));
    const done = await coordinatorDone(c, 120_000);

    expect(done.weightsHash).toBe(await trainHash());
    expect(done).toMatchObject({ banned: 0 });
    const agreed = c.proc.linesWithMsg('check agreed: audit passed');
    expect(checksSent(c).length).toBeGreaterThan(0);
    expect(agreed.length).toBeGreaterThan(0);
    // A check goes to a worker other than the author of the result it audits.
    for (const l of agreed) expect(l.workerId).not.toBe(l.author);
    expect(c.proc.linesWithMsg(DIFFERS)).toHaveLength(0);
    expect(c.proc.linesWithMsg('worker banned')).toHaveLength(0);
    for (const w of workers) expect((await w.waitForExit(30_000)).code).toBe(0);
  }, 180_000);

  it("a forged result is exposed by a check: the forger is banned, the hash is train's", async () => {
    const sb = new Sandbox();
    const c = await sb.coordinator([...CONFIG, ...AUDIT_ALL, '--min-workers', '3']);
    const relay = await ForgingRelay.start(c.url, Forgery.ScaleAll);
    relays.push(relay);
    // All three hold results back alike, so a step outlasts a check by far: when the forger's
    // result is audited, an honest worker is idle with no check out. The forger joins first,
    // so it takes the first steps (equal speeds are shared in join order).
    const forger = sb.worker({ url: relay.url, token: c.token }, 'forger', SLOW);
    const forgerId = await workerIdOf(c, 'forger');
    const honest = ['h1', 'h2'].map((name) => sb.worker(c, name, SLOW));

    const banned = await c.proc.waitForMsg('worker banned', (l) => l.workerId === forgerId, { timeoutMs: 120_000 });
    expect(banned).toMatchObject({ reason: 'forged', agent: 'forger' });
    expect((await forger.waitForExit(30_000)).code).toBe(1);
    // Caught through a check: an honest checker's digest differed from the forged result's.
    const differs = c.proc.linesWithMsg(DIFFERS, (l) => l.author === forgerId);
    expect(differs.length).toBeGreaterThan(0);
    expect(c.proc.lines.indexOf(differs[0])).toBeLessThan(c.proc.lines.indexOf(banned));
    expect(differs[0].workerId).not.toBe(forgerId);

    const done = await coordinatorDone(c, 120_000);
    expect(done.weightsHash).toBe(await trainHash());
    expect(done).toMatchObject({ banned: 1 });
    expect(relay.forged).toBeGreaterThan(0);
    expect(c.proc.linesWithMsg('worker banned')).toHaveLength(1);
    for (const w of honest) expect((await w.waitForExit(30_000)).code).toBe(0);
  }, 180_000);

  it('a checker that lies about its digest is banned by the recomputation; the worker it accused stays', async () => {
    const sb = new Sandbox();
    const c = await sb.coordinator([...CONFIG, ...AUDIT_ALL, '--min-workers', '2']);
    // The honest worker is the faster: it takes the steps, and the liar checks them.
    const honest = sb.worker(c, 'honest');
    const honestId = await workerIdOf(c, 'honest');
    const liar = sb.worker(c, 'liar', [...SLOW, '--fault-digest']);
    const liarId = await workerIdOf(c, 'liar');

    const banned = await c.proc.waitForMsg('worker banned', (l) => l.workerId === liarId, { timeoutMs: 120_000 });
    expect(banned).toMatchObject({ reason: 'forged', agent: 'liar' });
    expect(String(banned.detail)).toMatch(/^check of task \d+ .*its digest differs from the recomputation/);
    expect((await liar.waitForExit(30_000)).code).toBe(1);
    const differs = c.proc.linesWithMsg(DIFFERS, (l) => l.workerId === liarId);
    expect(differs.length).toBeGreaterThan(0);
    expect(differs[0].author).toBe(honestId);
    expect(checksSent(c, liarId).length).toBeGreaterThan(0);

    const done = await coordinatorDone(c, 120_000);
    expect(done.weightsHash).toBe(await trainHash());
    expect(done).toMatchObject({ banned: 1 });
    expect(c.proc.linesWithMsg('worker banned')).toHaveLength(1);
    expect((await honest.waitForExit(30_000)).code).toBe(0);
  }, 180_000);
});
