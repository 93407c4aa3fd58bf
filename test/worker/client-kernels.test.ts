// worker/client.ts and the kernel set named in the welcome: a worker that cannot run
// the run's set refuses with close code 4008 and a reason, before fetching anything,
// and never falls back to the other set (whose bits differ).

import { describe, expect, it, vi } from 'vitest';
import { WorkerClient, type ClientLog } from '../../worker/client.js';
import { encode } from '../../shared/protocol/codec.js';
import { CloseCode, PROTOCOL_VERSION } from '../../shared/protocol/codes.js';
import { mlpSpec } from '../../shared/model/spec.js';
import { syntheticDatasets } from '../../shared/data/synthetic.js';
import type { KernelSetName } from '../../shared/kernels/kernel-set.js';

const data = syntheticDatasets.blobs(50, 1);
const spec = mlpSpec(data.numFeatures, [8], data.numClasses, 'relu', 'cross_entropy');
const quiet: ClientLog = { info: () => {}, warn: () => {}, debug: () => {} };

function welcome(kernels: KernelSetName): Uint8Array {
  return encode({
    type: 'welcome',
    protocol: PROTOCOL_VERSION,
    workerId: 'w-1',
    spec,
    dataset: {
      name: data.name,
      kind: data.kind,
      numSamples: data.numSamples,
      numFeatures: data.numFeatures,
      labelWidth: data.labelWidth,
      numClasses: data.numClasses,
      classNames: [...data.classNames],
      dtype: 'f32',
      hash: 'ab'.repeat(32),
      path: '/data/x',
    },
    shardSize: 8,
    kernels,
    wireDtype: 'f32',
  });
}

function client(canRun: (k: KernelSetName) => boolean) {
  const sent: string[] = [];
  const closed: { code: number; reason: string }[] = [];
  let loads = 0;
  const c = new WorkerClient(
    { send: (b) => void sent.push(String(b.byteLength)), close: (code, reason) => closed.push({ code, reason }) },
    {
      token: 't',
      kind: 'node',
      agent: 'test',
      log: quiet,
      canRunKernels: canRun,
      loadDataset: async () => {
        loads++;
        return data;
      },
    },
  );
  return { c, sent, closed, loads: () => loads };
}

describe('WorkerClient and the run kernel set', () => {
  it('refuses a run whose kernel set it cannot run: close 4008 with a reason, no dataset fetched', async () => {
    const t = client((k) => k === 'js');
    t.c.start();
    t.c.receive(welcome('wasm'));
    await vi.waitFor(() => expect(t.closed).toHaveLength(1));
    expect(t.closed[0].code).toBe(CloseCode.UNSUPPORTED_KERNELS);
    expect(t.closed[0].reason).toMatch(/wasm kernel set.*SIMD/);
    expect(t.loads()).toBe(0);
    expect(t.c.stats.state).toBe('stopped');
    expect(t.sent).toHaveLength(1); // the hello only: no ready
  });

  it('takes a run whose set it can run, and says ready', async () => {
    for (const kernels of ['js', 'wasm'] as const) {
      const t = client(() => true);
      t.c.start();
      t.c.receive(welcome(kernels));
      await vi.waitFor(() => expect(t.c.stats.state).toBe('ready'));
      expect(t.closed).toHaveLength(0);
      expect(t.loads()).toBe(1);
      expect(t.c.stats.state).toBe('ready');
      expect(t.sent).toHaveLength(2);
    }
  });
});
