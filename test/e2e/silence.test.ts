// A coordinator that goes silent without closing (a frozen process, a cut cable, a
// sleeping laptop) is noticed by the worker's watchdog: after --silence-timeout
// seconds without a ping or a message it drops the connection and starts
// reconnecting, instead of waiting forever. The coordinator is frozen with SIGSTOP,
// which keeps its sockets open and silent.

import { describe, expect, it } from 'vitest';
import { Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

describe('worker silence watchdog', () => {
  it('drops a coordinator silent for --silence-timeout seconds and reconnects', async () => {
    const sb = new Sandbox();
    // Long enough that training is still going when the coordinator is frozen.
    const c = await sb.coordinator([
      '--dataset',
      'blobs',
      '--samples',
      '2000',
      '--hidden',
      '16',
      '--epochs',
      '1000',
      '--min-workers',
      '1',
    ]);
    const worker = sb.worker(c, 'watchdog', ['--silence-timeout', '6', '--threads', '1']);
    await c.proc.waitForMsg('step', () => true, { timeoutMs: 20_000 });
    const frozenAt = Date.now();
    c.proc.signal('SIGSTOP');
    try {
      const dropped = await worker.waitForMsg('no ping from the coordinator; dropping the connection', () => true, {
        timeoutMs: 20_000,
      });
      const waited = Date.now() - frozenAt;
      // Not before the timeout (the wait above bounds how long after).
      expect(waited).toBeGreaterThanOrEqual(6_000);
      expect(Number(dropped.silentMs)).toBeGreaterThan(6_000);
      await worker.waitForMsg('lost the coordinator; reconnecting', () => true, { timeoutMs: 5_000 });
    } finally {
      c.proc.signal('SIGCONT');
    }
    c.proc.signal('SIGTERM');
    worker.signal('SIGTERM');
  });

  it("refuses a timeout not above the coordinator's 5 s ping period", async () => {
    const r = await new Sandbox().run([
      'worker',
      '--url',
      'ws://127.0.0.1:1',
      '--token',
      'x',
      '--silence-timeout',
      '5',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--silence-timeout must be more than the coordinator's 5 s ping period/);
  });
});
