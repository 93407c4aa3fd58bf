// A real `flocktrain worker` against a hostile fake coordinator: a WebSocket server on
// port 0 that answers the hello with a crafted welcome. A dataset path on another
// origin, or an announced size over --max-dataset-mb (up to sizes whose product
// overflows), ends the worker with one line, before any request or allocation, and
// nothing (least of all the token) goes to another host. An honest welcome from the
// same fake is followed to `ready`, so the refusals are due to the crafted fields.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { unpack } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { headerFields } from '../../shared/data/hash-encoding.js';
import { datasetHash } from '../../shared/node/dataset-hash.js';
import { syntheticDatasets } from '../../shared/data/synthetic.js';
import { mlpSpec } from '../../shared/model/spec.js';
import { encode } from '../../shared/protocol/codec.js';
import { CloseCode, PROTOCOL_VERSION } from '../../shared/protocol/codes.js';
import type { DatasetDescriptor } from '../../shared/protocol/messages.js';
import { oneLineError, Sandbox, useE2eCleanup } from '../e2e/harness.js';

useE2eCleanup();

const TOKEN = 'volunteer-token-0123456789';
const data = syntheticDatasets.blobs(60, 1);
const hash = datasetHash(data);
const body = new Uint8Array(Buffer.concat([Buffer.from(data.features.buffer), Buffer.from(data.labels.buffer)]));
const spec = mlpSpec(data.numFeatures, [8], data.numClasses, 'relu', 'cross_entropy');

interface Seen {
  readonly path: string;
  readonly authorization: string | undefined;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** An HTTP server on port 0 recording every request; serves the dataset at /data/<hash>. */
async function httpServer(): Promise<{ server: Server; origin: string; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
    if (req.url === `/data/${hash}`) return void res.writeHead(200, { 'content-length': body.byteLength }).end(body);
    res.writeHead(404).end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, origin: `http://127.0.0.1:${port}`, port, seen };
}

/**
 * A fake coordinator: answers a hello with a welcome whose dataset descriptor is the
 * honest one with `dataset` merged over it; on `ready`, ends the run (close 4000).
 */
async function fakeCoordinator(dataset: (own: { port: number }) => Partial<DatasetDescriptor>) {
  const own = await httpServer();
  const wss = new WebSocketServer({ server: own.server });
  const received: string[] = [];
  wss.on('connection', (socket) => {
    socket.on('message', (raw: Buffer) => {
      const m = unpack(raw) as { type: string; token?: string };
      received.push(m.type);
      if (m.type === 'hello') {
        const descriptor: DatasetDescriptor = {
          ...headerFields(data),
          hash,
          path: `/data/${hash}`,
          ...dataset({ port: own.port }),
        };
        socket.send(
          encode({
            type: 'welcome',
            protocol: PROTOCOL_VERSION,
            workerId: 'w-1',
            spec,
            dataset: descriptor,
            shardSize: 8,
            kernels: 'js',
            wireDtype: 'f32',
          }),
        );
      }
      if (m.type === 'ready') socket.close(CloseCode.DONE, 'training finished');
    });
  });
  return { url: `ws://127.0.0.1:${own.port}`, token: TOKEN, seen: own.seen, received };
}

async function runWorker(c: { url: string; token: string }, extra: readonly string[] = []) {
  const sb = new Sandbox();
  const p = sb.worker(c, 'volunteer', ['--threads', '1', ...extra]);
  const exit = await p.waitForExit();
  return { code: exit.code, stderr: p.stderr };
}

describe('a Node worker against a hostile coordinator', () => {
  it('follows an honest welcome: fetches from the coordinator with the token, then reports ready', async () => {
    const c = await fakeCoordinator(() => ({}));
    const r = await runWorker(c);
    expect(r.code, r.stderr).toBe(0);
    expect(c.seen).toEqual([{ path: `/data/${hash}`, authorization: `Bearer ${TOKEN}` }]);
    expect(c.received).toEqual(['hello', 'ready']);
  });

  it('refuses a dataset path on another origin with one line, and sends nothing there', async () => {
    const elsewhere = await httpServer();
    const paths = (port: number) => [
      `${elsewhere.origin}/data/${hash}`,
      `//127.0.0.1:${elsewhere.port}/data/${hash}`,
      `http://localhost:${port}/data/${hash}`, // same port, another host name: another origin
      `https://127.0.0.1:${port}/data/${hash}`,
    ];
    for (let i = 0; i < 4; i++) {
      const c = await fakeCoordinator(({ port }) => ({ path: paths(port)[i] }));
      const r = await runWorker(c);
      expect(r.code).toBe(1);
      const line = oneLineError(r.stderr);
      expect(line).toMatch(
        /leaves the coordinator's origin http:\/\/127\.0\.0\.1:\d+ \(the token is sent nowhere else\)/,
      );
      expect(line).not.toContain(TOKEN);
      expect(c.seen).toEqual([]);
      expect(c.received).toEqual(['hello']);
    }
    expect(elsewhere.seen).toEqual([]);
  });

  it('refuses an announced dataset over --max-dataset-mb with one line, before any request', async () => {
    const cases: { fields: Partial<DatasetDescriptor>; flags: string[] }[] = [
      { fields: { numSamples: 1_000_000_000_000, numFeatures: 784 }, flags: [] }, // ~3 PB: a RangeError once
      { fields: { numSamples: 1_000_000, numFeatures: 750 }, flags: [] }, // 3 GB, over the 1024 MB default
      { fields: { numSamples: 2 ** 40, numFeatures: 2 ** 20 }, flags: [] }, // the product overflows 2^53
      { fields: {}, flags: ['--max-dataset-mb', '0.0001'] }, // the honest dataset, over a small cap
    ];
    for (const { fields, flags } of cases) {
      const c = await fakeCoordinator(() => fields);
      const r = await runWorker(c, flags);
      expect(r.code, JSON.stringify(fields)).toBe(1);
      const line = oneLineError(r.stderr);
      expect(line).toMatch(/announces a dataset of \d+ samples × \d+ features \(.* MB\), over --max-dataset-mb/);
      expect(line).not.toMatch(/RangeError/);
      expect(c.seen).toEqual([]);
      expect(c.received).toEqual(['hello']);
    }
  });
});
