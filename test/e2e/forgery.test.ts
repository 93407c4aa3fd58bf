// Forged results, end to end: a real `flocktrain worker` whose results a
// man-in-the-middle relay (test/support/forging-relay.ts) rewrites, beside an honest
// worker, against a real coordinator. In every case the forger is banned (close code
// 4010, a `worker banned` line), the honest worker carries the run on, and the final
// weights hash equals `flocktrain train`'s: no forged bit survives in the weights.

import { afterEach, describe, expect, it } from 'vitest';
import { Forgery, ForgingRelay } from '../support/forging-relay.js';
import { coordinatorDone, Sandbox, useE2eCleanup, workerIdOf } from './harness.js';

useE2eCleanup();

// 2,400 training samples / 40 = 60 steps per epoch, 5 micro-shards per step: each of
// the two workers sends up to one result per step (the forger, behind the relay, often
// fewer: the speed model gives the faster worker more).
const CONFIG = [
  '--dataset',
  'blobs',
  '--samples',
  '3000',
  '--hidden',
  '64',
  '--batch-size',
  '40',
  '--shard-size',
  '8',
  '--log-every',
  '10',
];
/** Epochs per case: the late forger must first send 30 honest results, then enough forged ones to be audited. */
const EPOCHS: Record<Exclude<Forgery, Forgery.None>, number> = {
  [Forgery.ScaleAll]: 1,
  [Forgery.LateOneInFive]: 3,
  [Forgery.ReplayOld]: 1,
  [Forgery.ForgeStats]: 1,
  [Forgery.Huge]: 3,
};
/** Forgeries that begin after probation: the forger's unchecked results counted, so steps are undone. */
const PAST_PROBATION: ReadonlySet<Forgery> = new Set([Forgery.LateOneInFive, Forgery.Huge]);
/**
 * Every result past probation audited: here the point is what a caught forger costs
 * (ban, rollback, the same bits), not the odds of catching it, which the unit tests
 * and the formula in docs/security.md cover.
 */
const AUDIT = ['--audit-rate', '1'];

const references = new Map<number, Promise<string>>();
function trainHash(epochs: number): Promise<string> {
  if (!references.has(epochs))
    references.set(
      epochs,
      new Sandbox().train([...CONFIG, '--epochs', String(epochs)], 120_000).then((d) => String(d.weightsHash)),
    );
  return references.get(epochs)!;
}

const relays: ForgingRelay[] = [];
afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

describe('a worker whose results are forged on the wire', () => {
  for (const forgery of Object.values(Forgery).filter((f) => f !== Forgery.None)) {
    it(`${forgery}: the forger is banned, the honest worker carries on, the hash is train's`, async () => {
      const sb = new Sandbox();
      const epochs = ['--epochs', String(EPOCHS[forgery])];
      const c = await sb.coordinator([...CONFIG, ...epochs, ...AUDIT, '--min-workers', '2']);
      const relay = await ForgingRelay.start(c.url, forgery);
      // The honest worker behind a relay too, so both see the same latency and share the work about evenly.
      const passthrough = await ForgingRelay.start(c.url, Forgery.None);
      relays.push(relay, passthrough);
      const honest = sb.worker({ url: passthrough.url, token: c.token }, 'honest');
      const forger = sb.worker({ url: relay.url, token: c.token }, 'forger');
      const forgerId = await workerIdOf(c, 'forger');
      const honestId = await workerIdOf(c, 'honest');

      const banned = await c.proc.waitForMsg('worker banned', (l) => l.workerId === forgerId, { timeoutMs: 120_000 });
      expect(banned).toMatchObject({ reason: 'forged', agent: 'forger' });
      expect(String(banned.detail)).toMatch(/task \d+/);
      // Closed with BANNED, a final code: the worker gives up instead of reconnecting.
      expect((await forger.waitForExit(30_000)).code).toBe(1);

      const done = await coordinatorDone(c, 180_000);
      expect(done.weightsHash).toBe(await trainHash(EPOCHS[forgery]));
      expect(
        c.proc.linesWithMsg('rolled back: steps with unchecked results of a banned worker run again'),
      ).toHaveLength(PAST_PROBATION.has(forgery) ? 1 : 0);
      expect(done).toMatchObject({ banned: 1 });
      expect(Number(done.audited)).toBeGreaterThan(0);
      expect(relay.forged).toBeGreaterThan(0);
      expect(passthrough.forged).toBe(0);
      // Steps went on after the ban; the honest worker stayed to the end (exit 0 on 'training finished').
      const at = c.proc.lines.indexOf(banned);
      expect(c.proc.lines.slice(at).some((l) => l.msg === 'step')).toBe(true);
      expect(c.proc.linesWithMsg('worker banned')).toHaveLength(1);
      expect(c.proc.linesWithMsg('training diverged')).toHaveLength(0);
      expect(c.proc.linesWithMsg('diverged')).toHaveLength(0);
      expect(honestId).not.toBe(forgerId);
      expect((await honest.waitForExit(30_000)).code).toBe(0);
    }, 300_000);
  }
});
