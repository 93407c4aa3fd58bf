// `flocktrain worker`: one Node process computing gradients for a coordinator over
// WebSocket. Exits 0 when the coordinator says training is over, 1 with a one-line
// reason when it cannot connect or is refused.

import { hostname } from 'node:os';
import { WebSocket } from 'ws';
import type { WorkerOptions } from '../coordinator/cli.js';
import { createLogger } from '../coordinator/logger.js';
import { ConfigError } from '../shared/errors.js';
import { CloseCode } from '../shared/protocol/codes.js';
import { WorkerClient } from './client.js';
import { defaultCacheDir, makeDatasetLoader } from './dataset-cache.js';

/** Largest message a worker accepts: welcome and weights carry the whole model. */
const MAX_PAYLOAD = 1 << 30;

export async function runWorker(options: WorkerOptions): Promise<number> {
  const log = createLogger(options.logFormat, options.logLevel, 'flocktrain-worker');
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new ConfigError(`--url must be a ws:// or wss:// URL, got ${options.url}`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new ConfigError(`--url must be a ws:// or wss:// URL, got ${options.url}`);
  const agent = options.name ?? `${hostname()}/${process.pid}`;
  const socket = new WebSocket(url, { maxPayload: MAX_PAYLOAD });
  const client = new WorkerClient(
    { send: (b) => socket.send(b), close: (code, reason) => socket.close(code, reason) },
    {
      token: options.token,
      kind: 'node',
      agent,
      loadDataset: makeDatasetLoader(url.toString(), options.token, options.cacheDir ?? defaultCacheDir(), log),
      log,
    },
  );
  const onSignal = (): void => {
    // Not connected yet: nothing to tell the coordinator.
    if (socket.readyState !== WebSocket.OPEN) process.exit(0);
    client.leave();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  socket.on('open', () => {
    log.info({ url: url.toString(), agent }, 'connected');
    client.start();
  });
  socket.on('message', (data, isBinary) => {
    if (!isBinary) return;
    const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    client.receive(bytes);
  });
  let connectError: string | null = null;
  socket.on('error', (err: NodeJS.ErrnoException) => {
    connectError = err.code ?? err.message;
  });
  const [code, reason] = await new Promise<[number, string]>((resolve) => socket.on('close', (c, r) => resolve([c, r.toString()])));
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (code === CloseCode.DONE || client.stats.stopReason !== null && client.stats.stopReason === 'left') {
    log.info({ tasksDone: client.stats.tasksDone, samplesDone: client.stats.samplesDone }, 'finished');
    return 0;
  }
  if (code === CloseCode.UNAUTHORIZED) {
    process.stderr.write(`flocktrain: the coordinator at ${url.host} refused the token (${reason})\n`);
    return 1;
  }
  if (connectError !== null && client.stats.workerId === null) {
    process.stderr.write(`flocktrain: cannot connect to ${url.toString()}: ${connectError}\n`);
    return 1;
  }
  if (code === CloseCode.SHUTDOWN) {
    log.info({ reason }, 'coordinator shut down');
    return 0;
  }
  process.stderr.write(`flocktrain: connection closed (${code}${reason !== '' ? ` ${reason}` : ''})\n`);
  return 1;
}
