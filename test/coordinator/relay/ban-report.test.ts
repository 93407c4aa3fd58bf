// The `banReport` message a relay sends upstream (shared/protocol/codec.ts): it
// round-trips, and what the coordinator decodes is bounded and typed, or refused
// as a ProtocolError naming the field; a real coordinator (hub) logs a ready worker's
// report as its typed event and closes a peer that reports before it is ready.

import { pack } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { spirals } from '../../../shared/data/synthetic.js';
import { initParams } from '../../../shared/model/init.js';
import { mlpSpec } from '../../../shared/model/spec.js';
import { CloseCode, PROTOCOL_VERSION, ProtocolError } from '../../../shared/protocol/codes.js';
import { decodeWorkerMessage, encode, type WorkerMessageLimits } from '../../../shared/protocol/codec.js';
import type { BanReportMessage } from '../../../shared/protocol/messages.js';
import { type Coordinator, Level, RawWorker, startCoordinator, within } from '../../support/coordinator-harness.js';

const LIMITS: WorkerMessageLimits = { paramCount: 4, maxNodes: 2, wireDtype: 'f32' };
const REPORT: BanReportMessage = {
  type: 'banReport',
  workerId: 'w3',
  agent: 'laptop/4242',
  remote: '10.0.0.7:51234',
  detail: 'task 12 node 0: gradient[0] is 5, recomputed -0.5',
};

function decodeFields(fields: Record<string, unknown>): unknown {
  return decodeWorkerMessage(pack({ ...REPORT, ...fields }), LIMITS);
}

describe('banReport', () => {
  it('round-trips', () => {
    expect(decodeWorkerMessage(encode(REPORT), LIMITS)).toEqual(REPORT);
  });

  it.each([
    ['workerId', 42, /workerId: expected a string/],
    ['agent', undefined, /agent: expected a string/],
    ['remote', 'x'.repeat(129), /remote: expected a string of at most 128/],
    ['detail', 'x'.repeat(1025), /detail: expected a string of at most 1024/],
  ])('refuses %s = %s', (field, value, message) => {
    const decode = () => decodeFields({ [field]: value });
    expect(decode).toThrow(ProtocolError);
    expect(decode).toThrow(message);
  });
});

describe('banReport at a coordinator', () => {
  const SPEC = mlpSpec(2, [4], 2, 'tanh', 'cross_entropy');
  let running: Coordinator | null = null;
  afterEach(async () => {
    await running?.close();
    running = null;
  });
  const coordinator = async (): Promise<Coordinator> => {
    running = await startCoordinator({
      spec: SPEC,
      dataset: spirals(32, 1),
      shardSize: 4,
      numShards: 4,
      weights: initParams(SPEC, 1),
      token: 'relay-token',
      helloTimeoutMs: 5_000,
      heartbeatMs: 60_000,
      taskTimeoutMinMs: 2_000,
      taskTimeoutMaxMs: 60_000,
    });
    return running;
  };

  it("is logged with the relay's id and agent, and the relay stays connected", async () => {
    const c = await coordinator();
    const relay = await RawWorker.connect(c.url);
    const relayId = (await relay.join('relay-token', c.datasetHash, 'relay-a')).workerId;
    relay.send(REPORT);
    const line = await c.logs.waitFor((l) => l.msg === 'a relay banned one of its workers', 'the report');
    expect(line).toMatchObject({
      level: Level.warn,
      relayId,
      relayAgent: 'relay-a',
      workerId: 'w3',
      agent: 'laptop/4242',
      remote: '10.0.0.7:51234',
      detail: REPORT.detail,
    });
    expect(c.scheduler.workerCount).toBe(1);
  });

  it('logs at most 100 reports of one connection, and says so once', async () => {
    const c = await coordinator();
    const relay = await RawWorker.connect(c.url);
    await relay.join('relay-token', c.datasetHash, 'chatty');
    for (let i = 0; i < 103; i++) relay.send({ ...REPORT, workerId: `w${i}` });
    await c.logs.waitFor((l) => l.msg === 'further ban reports of this relay are not logged', 'the cap');
    // The last one logged and the cap's line; nothing after.
    relay.send(REPORT);
    relay.send({ type: 'ready', datasetHash: c.datasetHash });
    await within(relay.closed, 'a second ready to close it');
    expect(c.logs.lines.filter((l) => l.msg === 'a relay banned one of its workers')).toHaveLength(100);
    expect(c.logs.lines.filter((l) => l.msg === 'further ban reports of this relay are not logged')).toHaveLength(1);
  });

  it('closes a peer that reports before it is ready (4002, unexpected)', async () => {
    const c = await coordinator();
    const peer = await RawWorker.connect(c.url);
    peer.send({ type: 'hello', protocol: PROTOCOL_VERSION, token: 'relay-token', kind: 'node', agent: 'early' });
    await peer.next('welcome');
    peer.send(REPORT);
    const closed = await within(peer.closed, 'the peer to be closed');
    expect(closed.code).toBe(CloseCode.PROTOCOL_ERROR);
    expect(c.logs.lines.some((l) => l.msg === 'a relay banned one of its workers')).toBe(false);
  });
});
