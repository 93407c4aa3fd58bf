// The browser worker's platform-neutral pieces, run under Node: the plain-JS SHA-256
// (used where crypto.subtle is missing) against node:crypto, the browser dataset hash
// against the coordinator's, the page⇄worker message validators, the close verdicts and
// how many compute threads a tab plans.

import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { datasetHash } from '../../../shared/node/dataset-hash.js';
import { blobs } from '../../../shared/data/synthetic.js';
import { CloseCode } from '../../../shared/protocol/codes.js';
import { closeVerdict } from '../../../worker/browser/close-message.js';
import { datasetBodyHash } from '../../../worker/browser/dataset-hash.js';
import { parsePageMessage, parseWorkerStatus } from '../../../worker/browser/messages.js';
import { sha256Hex } from '../../../worker/browser/sha256.js';
import { MAX_THREADS, planThreads } from '../../../worker/browser/web-threads.js';

describe('sha256Hex (plain JS)', () => {
  it('matches node:crypto on every length around the padding boundaries and on split input', () => {
    for (const n of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 70_001]) {
      const bytes = randomBytes(n);
      const want = createHash('sha256').update(bytes).digest('hex');
      expect(sha256Hex([bytes]), `length ${n}`).toBe(want);
      const cut = Math.floor(n / 3);
      expect(sha256Hex([bytes.subarray(0, cut), new Uint8Array(0), bytes.subarray(cut)]), `length ${n} split`).toBe(
        want,
      );
    }
  });

  it('gives the FIPS 180-4 test vector for "abc"', () => {
    expect(sha256Hex([new TextEncoder().encode('abc')])).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});

describe('datasetBodyHash (browser)', () => {
  it("equals the coordinator's datasetHash over the transfer bytes, with crypto.subtle and without", async () => {
    const ds = blobs(300, 7);
    const body = new Uint8Array(ds.features.byteLength + ds.labels.byteLength);
    body.set(new Uint8Array(ds.features.buffer, ds.features.byteOffset, ds.features.byteLength), 0);
    body.set(new Uint8Array(ds.labels.buffer, ds.labels.byteOffset, ds.labels.byteLength), ds.features.byteLength);
    const descriptor = { ...ds, dtype: 'f32' as const, hash: 'ignored', path: '/also-ignored' };
    expect(globalThis.crypto?.subtle).toBeDefined();
    expect(await datasetBodyHash(descriptor, body)).toBe(datasetHash(ds));
    const subtle = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
    Object.defineProperty(globalThis, 'crypto', { value: {}, configurable: true });
    try {
      expect(await datasetBodyHash(descriptor, body)).toBe(datasetHash(ds));
    } finally {
      Object.defineProperty(globalThis, 'crypto', subtle!);
    }
  });
});

describe('page ⇄ Web Worker messages', () => {
  const status = {
    type: 'status',
    phase: 'training',
    workerId: 'w3',
    tasksDone: 4,
    samplesDone: 96,
    samplesPerSec: 1234.5,
    lastLoss: 0.25,
    dataset: 'blobs: 1 kB',
    closeCode: null,
    closeReason: '',
    closedByUser: false,
    closedHere: false,
    everOpened: true,
    threads: 2,
    threadsNote: '',
    threadsStarted: true,
    standby: null,
  };

  it('accepts well-formed messages', () => {
    expect(parsePageMessage({ type: 'join', token: 't', agent: 'Chrome 1 on Linux', threads: null })).toEqual({
      type: 'join',
      token: 't',
      agent: 'Chrome 1 on Linux',
      threads: null,
    });
    expect(parsePageMessage({ type: 'join', token: 't', agent: 'a', threads: 3 })).toEqual({
      type: 'join',
      token: 't',
      agent: 'a',
      threads: 3,
    });
    expect(parsePageMessage({ type: 'leave' })).toEqual({ type: 'leave' });
    expect(parseWorkerStatus(status)).toEqual(status);
    const standby = {
      ...status,
      standby: 'standing by: the other workers finish a step before this one could finish a shard',
    };
    expect(parseWorkerStatus(standby)).toEqual(standby);
  });

  it('rejects anything else', () => {
    for (const bad of [
      null,
      3,
      'join',
      [],
      { type: 'join' },
      { type: 'join', token: 1, agent: '' },
      { type: 'join', token: 't', agent: 'a', threads: 0 },
      { type: 'nope' },
    ])
      expect(parsePageMessage(bad)).toBeNull();
    for (const patch of [
      { phase: 'flying' },
      { tasksDone: -1 },
      { samplesPerSec: NaN },
      { lastLoss: '0.1' },
      { closedByUser: 1 },
      { closedHere: 'no' },
      { workerId: 7 },
      { type: 'log' },
      { threads: 0 },
      { threadsStarted: 'yes' },
      { standby: 1 },
      { standby: undefined },
    ]) {
      expect(parseWorkerStatus({ ...status, ...patch }), JSON.stringify(patch)).toBeNull();
    }
  });
});

describe('planThreads', () => {
  it('one per core unless asked; one when the page is not isolated; at most MAX_THREADS', () => {
    expect(planThreads(null, 8, true)).toEqual({ threads: 8, note: '' });
    expect(planThreads(2, 8, true)).toEqual({ threads: 2, note: '' });
    expect(planThreads(1, 8, false)).toEqual({ threads: 1, note: '' });
    expect(planThreads(null, 8, false)).toEqual({ threads: 1, note: 'page not cross-origin isolated' });
    expect(planThreads(null, Number.NaN, true)).toEqual({ threads: 1, note: '' });
    expect(planThreads(1000, 8, true)).toEqual({ threads: MAX_THREADS, note: `at most ${MAX_THREADS}` });
  });
});

describe('closeVerdict', () => {
  const base = { closeReason: '', closedByUser: false, closedHere: false, everOpened: true };
  it('explains each way a connection ends, and offers Resume only where it can help', () => {
    expect(
      closeVerdict({ ...base, closeCode: CloseCode.UNAUTHORIZED, closeReason: 'wrong or missing token' }, 'h:1'),
    ).toEqual({
      text: "The coordinator refused this link's token (wrong or missing token). Ask for a fresh join link.",
      tone: 'error',
      canResume: false,
    });
    expect(closeVerdict({ ...base, closeCode: CloseCode.DONE }, 'h:1')).toMatchObject({
      tone: 'info',
      canResume: false,
    });
    expect(closeVerdict({ ...base, closeCode: CloseCode.LEAVING, closedByUser: true }, 'h:1')).toMatchObject({
      tone: 'info',
      canResume: true,
    });
    expect(closeVerdict({ ...base, closeCode: 1006, everOpened: false }, 'h:1').text).toBe(
      'Cannot reach the coordinator at h:1. Is it running?',
    );
    expect(closeVerdict({ ...base, closeCode: 1006 }, 'h:1')).toMatchObject({
      text: 'Connection lost (code 1006).',
      canResume: true,
    });
    expect(closeVerdict({ ...base, closeCode: CloseCode.SHUTDOWN }, 'h:1')).toMatchObject({
      tone: 'error',
      canResume: true,
    });
    expect(
      closeVerdict({ ...base, closeCode: CloseCode.UNSUPPORTED_KERNELS, closeReason: 'no SIMD' }, 'h:1'),
    ).toMatchObject({
      text: expect.stringContaining("cannot run this run's kernels (no SIMD)"),
      tone: 'error',
      canResume: false,
    });
    expect(
      closeVerdict({ ...base, closeCode: CloseCode.BANNED, closeReason: 'forged: task 3 node 0 differs' }, 'h:1'),
    ).toMatchObject({
      text: expect.stringContaining('banned this tab'),
      tone: 'error',
      canResume: false,
    });
    // A protocol-error close is the coordinator's or the tab's own (a dead compute thread): say which.
    expect(closeVerdict({ ...base, closeCode: CloseCode.PROTOCOL_ERROR, closeReason: 'bad frame' }, 'h:1').text).toBe(
      'The coordinator disconnected this tab (bad frame).',
    );
    expect(
      closeVerdict(
        {
          ...base,
          closeCode: CloseCode.PROTOCOL_ERROR,
          closeReason: 'compute thread 1 of 2 crashed',
          closedHere: true,
        },
        'h:1',
      ),
    ).toEqual({
      text: 'This tab stopped on an error (compute thread 1 of 2 crashed). Resume rejoins as a new worker.',
      tone: 'error',
      canResume: true,
    });
  });
});
