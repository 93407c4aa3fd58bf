// The bench section on joining: how many bytes one worker pulls from the coordinator
// to join the default MNIST run, measured on the wire by a counting TCP proxy in front
// of an in-process coordinator (so HTTP and WebSocket framing count). A Node worker
// joins with an empty dataset cache, then again with the cache filled; a browser
// tab's download is a GET asking for what browsers accept. Nothing trains: the
// coordinator waits for more workers than join, so only joining is counted.

import { BENCH_TOKEN, benchSetup } from './bench-coordinator.js';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { get } from 'node:http';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startCoordinator } from '../coordinator/assembly.js';
import { resolveConfig } from '../coordinator/config.js';
import { waitForExit } from '../coordinator/run-coordinator.js';
import { prepareRun } from '../coordinator/setup.js';
import { headerFields } from '../shared/data/hash-encoding.js';
import { transferByteLength } from '../shared/data/transfer.js';
import { CloseCode } from '../shared/protocol/codes.js';

/** A TCP proxy to `port` counting the bytes it passes towards its clients. */
async function countingProxy(port: number): Promise<{ port: number; down: () => number; close: () => void }> {
  let down = 0;
  const server: Server = createServer((client) => {
    const target = connect({ host: '127.0.0.1', port });
    target.on('data', (chunk: Buffer) => {
      down += chunk.byteLength;
    });
    client.pipe(target);
    target.pipe(client);
    client.on('error', () => target.destroy());
    target.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    down: () => down,
    close: () => server.close(),
  };
}

function getCounted(url: string, headers: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    get(url, { headers }, (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** `npm run bench`'s joining section: bytes from the coordinator per joining worker, default MNIST run. */
export async function benchJoinBytes(cli: string, say: (line: string) => void): Promise<void> {
  const run = prepareRun(resolveConfig({}));
  const token = BENCH_TOKEN;
  const coordinator = await startCoordinator(
    benchSetup(run, 1_000), // 1,000 workers are never reached: nothing trains
    pino({ level: 'silent' }),
  );
  const proxy = await countingProxy(Number(new URL(coordinator.url).port));
  const cache = mkdtempSync(join(tmpdir(), 'flocktrain-bench-join-'));
  /** Bytes towards one Node worker from its connection until the hub has it ready. */
  const nodeJoin = async (): Promise<number> => {
    const before = proxy.down();
    const readyBefore = readyCount();
    const child: ChildProcess = spawn(
      process.execPath,
      [cli, 'worker', '--url', `ws://127.0.0.1:${proxy.port}`, '--token', token, '--threads', '1'],
      { stdio: 'ignore', env: { ...process.env, XDG_CACHE_HOME: cache } },
    );
    // Ready, and then quiet for a while: what the coordinator sends in answer to `ready` counts too.
    await new Promise<void>((resolve, reject) => {
      let last = -1;
      let quietSince = 0;
      const watch = setInterval(() => {
        const now = proxy.down();
        if (now !== last) [last, quietSince] = [now, performance.now()];
        if (readyCount() > readyBefore && performance.now() - quietSince > 250) resolve();
        else if (child.exitCode !== null) reject(new Error(`the worker exited with ${child.exitCode} before joining`));
        else return;
        clearInterval(watch);
      }, 10);
    });
    const bytes = proxy.down() - before;
    child.kill('SIGTERM');
    await waitForExit([child], 3000);
    return bytes;
  };
  const readyCount = (): number => [...coordinator.hub.connections].filter((c) => c.state === 'ready').length;
  const tab = async (acceptEncoding: string): Promise<number> => {
    const before = proxy.down();
    await getCounted(`http://127.0.0.1:${proxy.port}/data/${run.datasetHash}`, {
      authorization: `Bearer ${token}`,
      'accept-encoding': acceptEncoding,
    });
    return proxy.down() - before;
  };
  try {
    const fresh = await nodeJoin();
    const cached = await nodeJoin();
    const brotli = await tab('gzip, deflate, br');
    const gzip = await tab('gzip');
    const plain = await tab('identity');
    const d = headerFields(run.dataset);
    const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
    say('| joining the default MNIST run: bytes from the coordinator (HTTP + WebSocket, on the wire) | bytes |');
    say('|---|---|');
    say(`| Node worker, empty dataset cache (welcome + dataset, br + weights sent on ready) | ${fmt(fresh)} |`);
    say(`| Node worker, dataset already cached (welcome + weights sent on ready) | ${fmt(cached)} |`);
    say(`| of which the weights tensor | ${fmt(coordinator.scheduler.currentWeights().weights.byteLength)} |`);
    say(`| dataset download, br (what a browser tab asks for) | ${fmt(brotli)} |`);
    say(`| dataset download, gzip | ${fmt(gzip)} |`);
    say(`| dataset download, uncompressed (${d.dtype} pixels) | ${fmt(plain)} |`);
    say(
      '| the dataset as float32, uncompressed (its size without byte storage) ' +
        `| ${fmt(transferByteLength({ ...d, dtype: 'f32' }))} |`,
    );
    say('');
  } finally {
    proxy.close();
    await coordinator.close(CloseCode.DONE, 'benchmark finished');
  }
}
