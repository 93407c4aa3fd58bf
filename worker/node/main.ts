// `flocktrain worker`: one Node process computing gradients for a coordinator over
// WebSocket. Exits 0 when the coordinator says training is over (or on Ctrl-C), 1
// with a one-line reason when it cannot connect, is refused, or gives up. Once it
// has been welcomed, losing the coordinator is not fatal: it reconnects with
// exponential backoff and jitter for --reconnect-for seconds, so a restarted
// (resumed) coordinator gets its workers back without anyone touching them.
// With --threads N > 1 the gradients are computed on N worker_threads
// (threaded-compute.ts), with the same bits as on one. worker/node/ is the Node worker's
// platform half: this entry, its compute threads and its dataset cache.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { createLogger, type LogOptions } from '../../shared/node/logger.js';
import { messageBytes } from '../../shared/node/message-bytes.js';
import { CloseCode } from '../../shared/protocol/codes.js';
import { WorkerClient, type ClientOptions } from '../client.js';
import type { ComputerSetup } from '../compute.js';
import { ThreadedComputer } from './threaded-compute.js';
import { defaultCacheDir, makeDatasetLoader } from './dataset-cache.js';
import { makeWeightsFetcher } from './weights-fetch.js';

export interface WorkerOptions extends LogOptions {
  readonly url: URL;
  readonly token: string;
  /** PEM file of a certificate to trust for wss:// and https:// besides the system's; null: none. */
  readonly ca: string | null;
  /** null: defaultCacheDir(). */
  readonly cacheDir: string | null;
  /** Largest dataset a coordinator may announce, in MB. */
  readonly maxDatasetMb: number;
  /** The dataset cache is kept under this many MB. */
  readonly cacheMaxMb: number;
  /** null: hostname and pid. */
  readonly name: string | null;
  /** Seconds to keep trying to reconnect after losing the coordinator. */
  readonly reconnectFor: number;
  /** Seconds without a ping or message from the coordinator before the connection is dropped. */
  readonly silenceTimeout: number;
  /** Compute threads (1: compute on the main thread, no worker_threads). */
  readonly threads: number;
  readonly faults: WorkerFaults;
  /** Builds the computer in place of --threads' (a relay computes with its own workers); default: none. */
  readonly createComputer?: ClientOptions['createComputer'];
  /** Where to log; default: a logger of its own from the log options. */
  readonly log?: Logger;
}

/** Deliberate misbehaviour, for fault-injection tests and benchmarks only. */
export interface WorkerFaults {
  /** Take this many times as long per task (1: normal speed). */
  readonly slowdown: number;
  /** Hold every result back this many ms before sending it. */
  readonly delayMs: number;
  /** Answer every check with a wrong digest (a lying checker). */
  readonly digest?: boolean;
}

/** Largest message a worker accepts: welcome and weights carry the whole model. */
const MAX_PAYLOAD = 1 << 30;
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 10_000;

interface SessionEnd {
  readonly code: number;
  readonly reason: string;
  readonly welcomed: boolean;
  readonly connectError: string | null;
  /** Why this worker closed the connection itself (e.g. it refused the dataset), or null. */
  readonly refused: string | null;
}

/** Close codes after which reconnecting is pointless. */
const FINAL: ReadonlySet<number> = new Set([
  CloseCode.DONE,
  CloseCode.UNAUTHORIZED,
  CloseCode.VERSION_MISMATCH,
  CloseCode.PROTOCOL_ERROR,
  CloseCode.BAD_RESULT,
  CloseCode.BANNED,
]);

export async function runWorker(options: WorkerOptions): Promise<number> {
  const log = options.log ?? createLogger(options.logFormat, options.logLevel, 'flocktrain-worker');
  const { url } = options;
  const agent = options.name ?? `${hostname()}/${process.pid}`;
  const { slowdown, delayMs } = options.faults;
  let ca: string | undefined;
  if (options.ca !== null) {
    try {
      ca = readFileSync(options.ca, 'utf8');
    } catch (err) {
      return fail(`--ca ${options.ca}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const threads = options.threads > 1 && options.createComputer === undefined ? threadPool(options.threads, log) : null;
  const clientOptions: ClientOptions = {
    token: options.token,
    kind: 'node',
    agent,
    loadDataset: makeDatasetLoader(
      url.toString(),
      options.token,
      options.cacheDir ?? defaultCacheDir(),
      log,
      { maxDatasetMb: options.maxDatasetMb, cacheMaxMb: options.cacheMaxMb },
      ca,
    ),
    fetchWeights: makeWeightsFetcher(url.toString(), ca),
    log,
    ...(slowdown > 1 || delayMs > 0
      ? { holdResultMs: (computeMs: number) => (slowdown - 1) * computeMs + delayMs }
      : {}),
    ...(threads !== null ? { createComputer: threads.create } : {}),
    ...(options.faults.digest === true ? { faultDigest: lieAbout } : {}),
    ...(options.createComputer !== undefined ? { createComputer: options.createComputer } : {}),
  };
  let leaving = false;
  let current: { socket: WebSocket; client: WorkerClient } | null = null;
  const onSignal = (): void => {
    leaving = true;
    // Not connected: nothing to tell the coordinator.
    if (current === null || current.socket.readyState !== WebSocket.OPEN) process.exit(0);
    current.client.leave();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let everWelcomed = false;
    let lostAt: number | null = null;
    for (let attempt = 0; ; attempt++) {
      const end = await session(url, clientOptions, log, options.silenceTimeout * 1000, ca, (s) => (current = s));
      current = null;
      if (end.welcomed) {
        everWelcomed = true;
        lostAt = null;
        attempt = 0;
      }
      if (leaving) return 0;
      // This worker hung up on a coordinator that broke the protocol or its limits: never retried.
      if (end.refused !== null) return fail(`dropped the coordinator at ${url.host}: ${end.refused}`);
      if (end.code === CloseCode.DONE) {
        // maxRSS is in KiB: the peak memory of this worker, for capacity planning.
        log.info(
          { reason: end.reason, maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024) },
          'training finished; exiting',
        );
        return 0;
      }
      if (end.code === CloseCode.UNAUTHORIZED)
        return fail(`the coordinator at ${url.host} refused the token (${end.reason})`);
      if (end.code === CloseCode.UNSUPPORTED_KERNELS) return fail(`cannot take part: ${end.reason}`);
      if (FINAL.has(end.code)) return fail(`the coordinator closed the connection: ${end.code} ${end.reason}`);
      if (!everWelcomed) {
        return fail(
          end.connectError !== null
            ? `cannot connect to ${url.toString()}: ${end.connectError}`
            : `connection to ${url.toString()} closed (${end.code} ${end.reason})`,
        );
      }
      lostAt ??= Date.now();
      if (Date.now() - lostAt > options.reconnectFor * 1000)
        return fail(`gave up reconnecting to ${url.toString()} after ${options.reconnectFor} s`);
      // Full jitter: spreads a fleet's reconnects so a restarted coordinator is not stampeded.
      const delay = Math.round(
        Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2),
      );
      log.warn(
        { code: end.code, reason: end.reason || end.connectError, delayMs: delay, attempt: attempt + 1 },
        'lost the coordinator; reconnecting',
      );
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (leaving) return 0;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await threads?.close();
  }
}

/**
 * The computer factory for --threads N > 1: one pool of compute threads, kept across
 * reconnects while the model, dataset, shard size and kernel set stay the same (a
 * resumed coordinator), rebuilt when they change. A thread that dies ends the process
 * with one line and exit code 1; the coordinator hands this worker's shards to others.
 */
function threadPool(threads: number, log: ClientOptions['log']) {
  let pool: { key: string; computer: ThreadedComputer } | null = null;
  const onCrash = (detail: string): void => {
    process.stderr.write(`flocktrain: ${detail}; exiting (the coordinator reassigns this worker's shards)\n`);
    process.exit(1);
  };
  return {
    create: async (setup: ComputerSetup): Promise<ThreadedComputer> => {
      // Everything but the dataset itself, which its hash stands for.
      const { dataset: _, ...same } = setup;
      const key = JSON.stringify(same);
      if (pool?.key === key) {
        log.info({ threads }, 'compute threads reused');
        return pool.computer;
      }
      const old = pool;
      pool = null;
      await old?.computer.close();
      // Its threads start with the first task big enough to be worth cutting.
      const computer = new ThreadedComputer(setup, {
        threads,
        onCrash,
        onStarted: (n) => log.info({ threads: n }, 'compute threads started'),
      });
      pool = { key, computer };
      return computer;
    },
    close: async (): Promise<void> => {
      await pool?.computer.close();
    },
  };
}

/** --fault-digest: the true digest with its first hex digit changed, so it is well formed and always wrong. */
function lieAbout(digest: string): string {
  return (digest[0] === '0' ? '1' : '0') + digest.slice(1);
}

function fail(message: string): number {
  process.stderr.write(`flocktrain: ${message}\n`);
  return 1;
}

/** Sends one message; resolves once ws has handed the bytes to the OS (or failed), after which they may change. */
function sendBytes(socket: WebSocket, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    if (socket.readyState !== WebSocket.OPEN) return resolve();
    socket.send(bytes, { binary: true }, () => resolve());
  });
}

/** One connection, from open to close. */
/** `silenceMs`: this long without a ping or a message from the coordinator means it is gone. */
function session(
  url: URL,
  options: ClientOptions,
  log: ClientOptions['log'],
  silenceMs: number,
  ca: string | undefined,
  expose: (s: { socket: WebSocket; client: WorkerClient }) => void,
): Promise<SessionEnd> {
  // An all-zero mask makes ws skip masking, which would otherwise copy and XOR every
  // gradient (~0.4 ms per 400 kB here). Masking keys exist to stop a browser page's
  // script from writing chosen bytes to a proxy's cache; this process is not a browser
  // and sends only numbers it computed, and a zero key is still a valid frame.
  const socket = new WebSocket(url, {
    maxPayload: MAX_PAYLOAD,
    generateMask: (mask) => mask.fill(0),
    ...(ca === undefined ? {} : { ca }),
  });
  let refused: string | null = null;
  const client = new WorkerClient(
    {
      send: (bytes) => sendBytes(socket, bytes),
      close: (code, reason) => {
        // The client's full reason: the close frame's is cut to 120 bytes.
        if (code !== CloseCode.LEAVING && code !== CloseCode.UNSUPPORTED_KERNELS)
          refused = client.stats.stopReason ?? reason;
        socket.close(code, reason);
      },
    },
    options,
  );
  expose({ socket, client });
  let connectError: string | null = null;
  // A coordinator that vanished without closing (a cut cable, a sleeping laptop) is
  // noticed by its silence, so the worker can reconnect instead of waiting forever.
  let lastHeard = Date.now();
  let lastTick = Date.now();
  const watchdog = setInterval(() => {
    // A tick that comes late means this process was busy computing, not that the
    // coordinator went quiet: pings may be queued unread, so start counting afresh.
    if (Date.now() - lastTick > silenceMs / 2) lastHeard = Date.now();
    lastTick = Date.now();
    if (Date.now() - lastHeard > silenceMs) {
      log.warn({ silentMs: Date.now() - lastHeard }, 'no ping from the coordinator; dropping the connection');
      socket.terminate();
    }
  }, silenceMs / 4);
  socket.on('ping', () => {
    lastHeard = Date.now();
  });
  socket.on('open', () => {
    lastHeard = Date.now();
    log.info({ url: url.toString(), agent: options.agent }, 'connected');
    client.start();
  });
  socket.on('message', (data, isBinary) => {
    lastHeard = Date.now();
    if (!isBinary) return;
    const bytes = messageBytes(data);
    client.receive(bytes);
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    connectError = err.code ?? err.message;
  });
  return new Promise((resolve) => {
    socket.on('close', (code, reason) => {
      clearInterval(watchdog);
      resolve({ code, reason: reason.toString(), welcomed: client.stats.workerId !== null, connectError, refused });
    });
  });
}
