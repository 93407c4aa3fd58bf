// worker/node/threaded-compute.ts and worker/split-task.ts: a pool of compute threads gives
// ShardComputer.computeNodes's nodes bit for bit (contiguous, non-contiguous and
// partial shards; 2 and 3 threads; both kernel sets and wire dtypes; tasks cut into
// as many runs as threads, into fewer, or computed on the calling thread; weights
// changing between calls), a bad shard fails the call but not the pool, and a thread
// that dies is reported once and fails every call instead of hanging.
//
// The threads run the built entry (dist/worker/node/compute-thread.js, or the one beside
// FLOCKTRAIN_E2E_CLI): a worker thread cannot load a .ts file.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { blobs } from '../../../shared/data/synthetic.js';
import type { KernelSetName } from '../../../shared/kernels/kernel-set.js';
import { initParams } from '../../../shared/model/init.js';
import { mlpSpec } from '../../../shared/model/spec.js';
import { deriveRng } from '../../../shared/rng.js';
import type { WireDtype } from '../../../shared/wire-dtype.js';
import { coverNodes, nodeKey } from '../../../shared/tree.js';
import { ShardComputer, type ComputerSetup, type NodeGradient, type ShardInput } from '../../../worker/compute.js';
import { splitShards } from '../../../worker/split-task.js';
import { MIN_RUN_WORK, ThreadedComputer } from '../../../worker/node/threaded-compute.js';
import { CLI } from '../../e2e/harness.js';

const ENTRY = new URL('../../worker/node/compute-thread.js', pathToFileURL(CLI));
const SHARD = 8;
const data = blobs(200, 3, { numClasses: 4, numFeatures: 6 });
const spec = mlpSpec(6, [24, 12], 4, 'tanh', 'cross_entropy');

/** 13 shards of 8 random samples, the last one of 3: the step of a 99-sample batch. */
const shards: ShardInput[] = (() => {
  const rng = deriveRng(11, 'threaded-compute-test');
  return Array.from({ length: 13 }, (_, id) => ({
    id,
    indices: Uint32Array.from({ length: id === 12 ? 3 : SHARD }, () => rng.nextInt(data.numSamples)),
  }));
})();
const NUM_SHARDS = shards.length;

const SHARD_SETS: Record<string, number[]> = {
  'all 13 (partial last shard)': [...Array(13).keys()],
  'non-contiguous, with the partial one': [0, 1, 2, 5, 6, 9, 12],
  'one aligned node of 8': [4, 5, 6, 7, 8, 9, 10, 11],
  'a single shard': [7],
  'two shards, given out of order': [10, 3],
};

const pools: ThreadedComputer[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function setup(kernels: KernelSetName, wireDtype: WireDtype): ComputerSetup {
  return { spec, dataset: data, datasetHash: 'test', shardSize: SHARD, kernels, wireDtype };
}

interface PoolOptions {
  readonly crashes?: string[];
  readonly entry?: URL;
  readonly wireDtype?: WireDtype;
  /** Default 0 here: the test model is tiny, and every task should still be cut. */
  readonly minRunWork?: number;
  /** Thread counts reported by onStarted. */
  readonly started?: number[];
}

function pool(kernels: KernelSetName, threads: number, o: PoolOptions = {}): ThreadedComputer {
  const crashes = o.crashes ?? [];
  const started = o.started ?? [];
  const p = new ThreadedComputer(setup(kernels, o.wireDtype ?? 'f32'), {
    threads,
    entry: o.entry ?? ENTRY,
    minRunWork: o.minRunWork ?? 0,
    onCrash: (detail) => crashes.push(detail),
    onStarted: (n) => started.push(n),
  });
  pools.push(p);
  return p;
}

/** A copy that outlives the computer's next call, with the gradient as raw bits. */
function snapshot(nodes: readonly NodeGradient[]) {
  return nodes.map(({ node, partial }) => ({
    node: nodeKey(node),
    lossSum: partial.lossSum,
    count: partial.count,
    correct: partial.correct,
    bits: Array.from(new Uint32Array(partial.grad.slice().buffer)),
  }));
}

describe('ThreadedComputer = ShardComputer, bit for bit', () => {
  const P = new ShardComputer(spec, data, SHARD).paramCount;
  it.each([
    ['wasm', 2, 'f32', 'as many runs as threads', 0],
    ['wasm', 3, 'f32', 'as many runs as threads', 0],
    ['js', 3, 'f32', 'as many runs as threads', 0],
    ['wasm', 3, 'bf16', 'as many runs as threads', 0],
    // The whole set is 99 samples: runs of at least 40 make 2 of them for 3 threads.
    ['wasm', 3, 'f32', 'runs of ≥ 40 samples', 40 * P],
    // This tiny model never has work enough for two runs: all on the calling thread.
    ['wasm', 3, 'f32', 'the default least work per run', MIN_RUN_WORK],
  ] as const)(
    '%s kernels, %i threads, %s wire, %s: every shard set, weights changing between calls',
    async (kernels, threads, wireDtype, _, minRunWork) => {
      const reference = new ShardComputer(spec, data, SHARD, kernels, wireDtype);
      const started: number[] = [];
      const threaded = pool(kernels, threads, { wireDtype, minRunWork, started });
      expect(threaded.paramCount).toBe(reference.paramCount);
      for (const seed of [1, 2]) {
        const params = initParams(spec, seed);
        for (const [name, ids] of Object.entries(SHARD_SETS)) {
          const held = ids.map((id) => shards[id]);
          const want = snapshot(reference.computeNodes(params, held, NUM_SHARDS));
          const got = snapshot(await threaded.computeNodes(params, held, NUM_SHARDS));
          expect(
            got.map((n) => n.node),
            name,
          ).toEqual(coverNodes(ids, NUM_SHARDS).map(nodeKey));
          expect(got, `${name}, weights seed ${seed}`).toEqual(want);
        }
      }
      // The threads start with the first task worth cutting, once; never for this tiny model by default.
      expect(started).toEqual(minRunWork === MIN_RUN_WORK ? [] : [threads]);
    },
  );

  it('a shard with an index past the data fails that call only; the pool computes on', async () => {
    const threaded = pool('wasm', 2);
    const params = initParams(spec, 1);
    const bad = [shards[0], { id: 1, indices: Uint32Array.from([0, data.numSamples]) }];
    await expect(threaded.computeNodes(params, bad, NUM_SHARDS)).rejects.toThrow(/out of range/);
    const want = snapshot(new ShardComputer(spec, data, SHARD, 'wasm').computeNodes(params, shards, NUM_SHARDS));
    expect(snapshot(await threaded.computeNodes(params, shards, NUM_SHARDS))).toEqual(want);
  });
});

describe('a compute thread that dies', () => {
  // Stand-in threads: ready at once, then die on their first request.
  const dir = mkdtempSync(join(tmpdir(), 'flocktrain-threads-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  function entry(name: string, onRequest: string): URL {
    const file = join(dir, name);
    writeFileSync(
      file,
      `import { parentPort } from 'node:worker_threads';\n` +
        `parentPort.on('message', () => { ${onRequest} });\n` +
        `parentPort.postMessage({ type: 'ready' });\n`,
    );
    return pathToFileURL(file);
  }

  it.each([
    ['throws', "throw new Error('boom');", /compute thread \d of 2 crashed: boom/],
    ['exits', 'process.exit(3);', /compute thread \d of 2 exited with code 3/],
  ])('%s: onCrash hears it once, the call and every later one reject', async (how, onRequest, reason) => {
    const crashes: string[] = [];
    const threaded = pool('wasm', 2, { crashes, entry: entry(`${how}.mjs`, onRequest) });
    const params = initParams(spec, 1);
    await expect(threaded.computeNodes(params, shards, NUM_SHARDS)).rejects.toThrow(reason);
    expect(crashes).toHaveLength(1);
    expect(crashes[0]).toMatch(reason);
    await expect(threaded.computeNodes(params, shards, NUM_SHARDS)).rejects.toThrow(reason);
    expect(crashes).toHaveLength(1);
  });
});

describe('splitShards', () => {
  const even = (n: number, size = SHARD): ShardInput[] =>
    Array.from({ length: n }, (_, id) => ({ id, indices: new Uint32Array(size) }));
  const ids = (runs: ShardInput[][]) => runs.map((run) => run.map((s) => s.id));

  it('cuts 16 equal shards where the tree is aligned: halves for 2, 6 + 4 + 6 for 3', () => {
    expect(ids(splitShards(even(16), 2))).toEqual([
      [0, 1, 2, 3, 4, 5, 6, 7],
      [8, 9, 10, 11, 12, 13, 14, 15],
    ]);
    expect(ids(splitShards(even(16), 3)).map((r) => r.length)).toEqual([6, 4, 6]);
  });

  it('balances samples, not shards, and keeps runs sorted and contiguous in id', () => {
    const shardsWithSmallTail = [
      ...even(6),
      { id: 6, indices: new Uint32Array(1) },
      { id: 7, indices: new Uint32Array(1) },
    ];
    const runs = splitShards([...shardsWithSmallTail].reverse(), 2);
    expect(ids(runs)).toEqual([
      [0, 1, 2],
      [3, 4, 5, 6, 7],
    ]);
  });

  it('no more runs than shards, none for no shards, duplicates dropped', () => {
    expect(ids(splitShards(even(2), 4))).toEqual([[0], [1]]);
    expect(splitShards([], 3)).toEqual([]);
    const s = even(3);
    expect(ids(splitShards([s[2], s[0], s[2], s[1]], 1))).toEqual([[0, 1, 2]]);
    expect(() => splitShards(s, 0)).toThrow(/parts/);
  });
});
