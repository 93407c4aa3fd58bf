// worker/client.ts over an in-memory socket: a task that carries weights is computed
// with them (one message per step), a task at the version already held uses those,
// a standby message shows on the client's stats until the next task, and a check is
// answered with only the digest of its recomputation.

import { describe, expect, it } from 'vitest';
import { headerFields } from '../../shared/data/hash-encoding.js';
import { spirals } from '../../shared/data/synthetic.js';
import { initParams } from '../../shared/model/init.js';
import { mlpSpec } from '../../shared/model/spec.js';
import { PROTOCOL_VERSION } from '../../shared/protocol/codes.js';
import { decodeWorkerMessage, encode } from '../../shared/protocol/codec.js';
import type { CoordinatorMessage, ResultMessage, WorkerMessage } from '../../shared/protocol/messages.js';
import { WorkerClient } from '../../worker/client.js';
import { ShardComputer } from '../../worker/compute.js';
import { recomputedDigest } from '../../coordinator/step/auditor.js';

const SEED = 5;
const DATASET = spirals(32, SEED);
const SPEC = mlpSpec(2, [6], 2, 'tanh', 'cross_entropy');
const SHARD = 8;
const W0 = initParams(SPEC, SEED);
const LIMITS = { paramCount: W0.length, maxNodes: 4, wireDtype: 'f32' } as const;
const quiet = { info: () => {}, warn: () => {}, debug: () => {} };

function client() {
  const sent: WorkerMessage[] = [];
  /** stats.standby at each progress report. */
  const shown: (string | null)[] = [];
  let wake: (() => void) | null = null;
  const c = new WorkerClient(
    {
      send: (bytes) => {
        sent.push(decodeWorkerMessage(bytes.slice(), LIMITS));
        wake?.();
      },
      close: (code, reason) => {
        throw new Error(`closed ${code} ${reason}`);
      },
    },
    {
      token: 't',
      kind: 'node',
      agent: 'test',
      loadDataset: async () => DATASET,
      log: quiet,
      onProgress: (stats) => shown.push(stats.standby),
    },
  );
  /** Resolves once `n` messages have been sent. */
  const sentCount = (n: number): Promise<void> =>
    new Promise((resolve) => {
      wake = () => {
        if (sent.length >= n) resolve();
      };
      wake();
    });
  const receive = (m: CoordinatorMessage): void => c.receive(encode(m));
  return { c, sent, shown, sentCount, receive };
}

function welcome(): CoordinatorMessage {
  return {
    type: 'welcome',
    protocol: PROTOCOL_VERSION,
    workerId: 'w1',
    spec: SPEC,
    dataset: { ...headerFields(DATASET), hash: 'h', path: '/data/h' },
    shardSize: SHARD,
    kernels: 'js',
    wireDtype: 'f32',
  };
}

/** The welcome, then, once the client says ready, the weights (as the coordinator does). */
async function join(receive: (m: CoordinatorMessage) => void, sentCount: (n: number) => Promise<void>): Promise<void> {
  receive(welcome());
  await sentCount(2); // hello, ready
  receive({ type: 'weights', version: 0, dtype: 'f32', weights: W0 });
}

const SHARDS = [0, 1].map((id) => ({ id, indices: Uint32Array.from({ length: SHARD }, (_, i) => id * SHARD + i) }));

function expected(weights: Float32Array): Float32Array {
  return new ShardComputer(SPEC, DATASET, SHARD, 'js').computeNodes(weights, SHARDS, 2)[0].partial.grad;
}

describe('WorkerClient', () => {
  it('computes a task with the weights it carries, and the next task at that version with the same', async () => {
    const { c, sent, sentCount, receive } = client();
    c.start();
    await join(receive, sentCount);
    const w1 = W0.map((w) => w * 0.75);
    receive({ type: 'task', taskId: 1, version: 1, step: 0, numShards: 2, shards: SHARDS, dtype: 'f32', weights: w1 });
    receive({
      type: 'task',
      taskId: 2,
      version: 1,
      step: 0,
      numShards: 2,
      shards: SHARDS,
      dtype: 'f32',
      weights: null,
    });
    await sentCount(4);
    const [r1, r2] = sent.slice(2) as ResultMessage[];
    expect([r1.taskId, r1.version, r2.taskId, r2.version]).toEqual([1, 1, 2, 1]);
    expect([...r1.grads]).toEqual([...expected(w1)]);
    expect([...r2.grads]).toEqual([...expected(w1)]);
    expect([...r1.grads]).not.toEqual([...expected(W0)]);
  });

  it('shows a standby until the next task', async () => {
    const { c, shown, sentCount, receive } = client();
    c.start();
    await join(receive, sentCount);
    const reason = 'standing by: the other workers finish a step before this one could finish a shard';
    receive({ type: 'standby', reason });
    receive({
      type: 'task',
      taskId: 1,
      version: 0,
      step: 0,
      numShards: 2,
      shards: SHARDS,
      dtype: 'f32',
      weights: null,
    });
    await sentCount(3);
    expect(shown).toEqual([reason, null]);
    expect(c.stats.standby).toBeNull();
  });

  it("answers a check with the auditor's digest of the same recomputation, keeping its own weights", async () => {
    const { c, sent, sentCount, receive } = client();
    c.start();
    await join(receive, sentCount);
    const old = W0.map((w) => w * 0.5);
    const check = { type: 'check', numShards: 2, shards: SHARDS, dtype: 'f32' } as const;
    receive({ ...check, checkId: 7, version: 0, step: 3, weights: null });
    receive({ ...check, checkId: 8, version: 0, step: 3, weights: old });
    // The older weights of the check are not adopted: a task at the held version uses W0.
    receive({
      type: 'task',
      taskId: 1,
      version: 0,
      step: 0,
      numShards: 2,
      shards: SHARDS,
      dtype: 'f32',
      weights: null,
    });
    await sentCount(5);
    const here = new ShardComputer(SPEC, DATASET, SHARD, 'js');
    const want = (w: Float32Array) => recomputedDigest(here.computeNodes(w, SHARDS, 2, 3));
    expect(sent.slice(2, 4)).toEqual([
      { type: 'digest', checkId: 7, digest: want(W0) },
      { type: 'digest', checkId: 8, digest: want(old) },
    ]);
    expect(want(W0)).not.toBe(want(old));
    expect([...(sent[4] as ResultMessage).grads]).toEqual([...expected(W0)]);
  });
});
