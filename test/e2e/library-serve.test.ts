// The library's train() serving workers: the built package (dist/, as users get it)
// spawns two local worker processes, tells where workers join, and ends with the very
// weights hash of the same run in this process; startWorker() in another process joins
// a run served from code and exits 0 when it is done.

import { spawn } from 'node:child_process';
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

it('startWorker() in another process trains a served run to its end and exits 0', async () => {
  const { train } = (await import(LIBRARY)) as typeof import('../../coordinator/library/index.js');
  const options = { dataset: 'spirals', samples: 300, epochs: 2, batchSize: 30, shardSize: 10 } as const;
  let child: ReturnType<typeof spawn> | null = null;
  let exited: Promise<number | null> = Promise.resolve(null);
  const served = train({
    ...options,
    serve: {
      minWorkers: 1,
      onJoin: ({ url, token }) => {
        const options = `{ url: ${JSON.stringify(url)}, token: ${JSON.stringify(token)}, threads: 1 }`;
        const code =
          `const { startWorker } = await import(${JSON.stringify(LIBRARY)}); ` +
          `process.exitCode = await startWorker(${options});`;
        const worker = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: 'ignore' });
        child = worker;
        exited = new Promise((resolve) => worker.once('exit', resolve));
      },
    },
  });
  const { summary } = await served;
  expect(await exited).toBe(0);
  expect(child).not.toBeNull();
  expect(summary.weightsHash).toBe((await train(options)).summary.weightsHash);
});
