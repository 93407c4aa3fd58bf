// The `banReport` message a relay sends upstream (shared/protocol/codec.ts): it
// round-trips, and what the coordinator decodes is bounded and typed, or refused
// as a ProtocolError naming the field.

import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../shared/protocol/codes.js';
import { decodeWorkerMessage, encode, type WorkerMessageLimits } from '../../../shared/protocol/codec.js';
import type { BanReportMessage } from '../../../shared/protocol/messages.js';

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
