// The library's train() serving workers: the built package (dist/, as users get it)
// spawns two local worker processes, tells where workers join, and ends with the very
// weights hash of the same run in this process.

import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const LIBRARY = fileURLToPath(new URL('../../dist/coordinator/library/index.js', import.meta.url));

it('train({ serve }) with two spawned workers equals train() in this process, bit for bit', async () => {
  const { train } = (await import(LIBRARY)) as typeof import('../../coordinator/library/index.js');
  const options = { dataset: 'blobs', samples: 400, epochs: 2, batchSize: 32, shardSize: 8 } as const;
  const served = train({ ...options, serve: { workers: 2, minWorkers: 2 } });
  const workersSeen = new Set<number>();
  for await (const e of served) if (e.type === 'step') workersSeen.add(e.workers);
  const { summary } = await served;
  expect(served.joined?.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
  expect(workersSeen).toEqual(new Set([2]));
  const local = await train(options);
  expect(summary.weightsHash).toBe(local.summary.weightsHash);
});
