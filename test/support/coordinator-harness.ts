// An in-process coordinator for protocol tests: the production assembly
// (coordinator/assembly.ts) on 127.0.0.1:0, with a pino logger writing into memory so
// tests can wait for and assert on log lines. Also two kinds
// of worker: the real WorkerClient (well-behaved), and RawWorker, which speaks the
// protocol by hand so a test can make it misbehave at any point of the conversation.
// Every wait here is for an event, bounded by a deadline that fails naming what it awaited.

import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { WebSocket, type ClientOptions as WsClientOptions } from 'ws';
import {
  type CoordinatorSetup,
  type RunningCoordinator,
  startCoordinator as startServing,
} from '../../coordinator/assembly.js';
import { resolveConfig } from '../../coordinator/config.js';
import type { Hub } from '../../coordinator/hub.js';
import type { Scheduler } from '../../coordinator/scheduler.js';
import type { Dataset } from '../../shared/data/dataset.js';
import { datasetHash } from '../../shared/node/dataset-hash.js';
import type { ModelSpec } from '../../shared/model/spec.js';
import { CloseCode, PROTOCOL_VERSION } from '../../shared/protocol/codes.js';
import { decodeCoordinatorMessage, encode } from '../../shared/protocol/codec.js';
import { messageBytes } from '../../shared/node/message-bytes.js';
import type {
  CoordinatorMessage,
  ResultMessage,
  TaskMessage,
  WelcomeMessage,
  WorkerMessage,
} from '../../shared/protocol/messages.js';
import { WorkerClient } from '../../worker/client.js';
import type { ShardComputer } from '../../worker/compute.js';

/** How long any single awaited event may take before the test fails naming it. */
export const WAIT_MS = 5_000;

/** The promise's outcome, or a failure naming `what` after WAIT_MS. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** pino's numeric levels. */
export const Level = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** A Writable collecting pino's JSON lines; lines are visible as soon as they are logged. */
export class LogSink extends Writable {
  readonly lines: LogLine[] = [];
  #waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    for (const text of chunk.toString('utf8').split('\n')) {
      if (text === '') continue;
      const line = JSON.parse(text) as LogLine;
      this.lines.push(line);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.match(line)) return true;
        w.resolve(line);
        return false;
      });
    }
    done();
  }

  find(match: (l: LogLine) => boolean): LogLine | undefined {
    return this.lines.find(match);
  }

  /** The first line (already logged or yet to come) that matches. */
  waitFor(match: (l: LogLine) => boolean, what: string): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return within(new Promise<LogLine>((resolve) => this.#waiters.push({ match, resolve })), `log line ${what}`);
  }
}

export interface HarnessOptions {
  readonly spec: ModelSpec;
  readonly dataset: Dataset;
  readonly shardSize: number;
  /** Shards per step: fixes the limits (maxNodes) and maxPayload. */
  readonly numShards: number;
  readonly weights: Float32Array;
  readonly token: string;
  readonly helloTimeoutMs: number;
  readonly heartbeatMs: number;
  /** Bounds of a task's deadline, in ms. */
  readonly taskTimeoutMinMs: number;
  readonly taskTimeoutMaxMs: number;
  /** As CoordinatorSetup's; default: the production one. */
  readonly verifier?: CoordinatorSetup['verifier'];
  /** As CoordinatorSetup's; default: DEFAULTS.coordinator's. */
  readonly limits?: CoordinatorSetup['limits'];
  readonly allowedOrigins?: CoordinatorSetup['allowedOrigins'];
  readonly namedTokens?: CoordinatorSetup['namedTokens'];
}

export interface Coordinator {
  readonly url: string;
  readonly hub: Hub;
  readonly scheduler: Scheduler;
  readonly logs: LogSink;
  readonly log: Logger;
  readonly maxPayload: number;
  readonly datasetHash: string;
  /** As RunningCoordinator's. */
  replaceTokens(named: ReadonlyMap<string, string>): string[];
  close(): Promise<void>;
}

/** Starts a coordinator with version 0 of the weights published (welcome needs weights). */
export async function startCoordinator(o: HarnessOptions): Promise<Coordinator> {
  const logs = new LogSink();
  const log = pino({ level: 'debug', base: undefined }, logs);
  const hash = datasetHash(o.dataset);
  // Only the step shape, kernels and wire dtype of the config matter to serving.
  const config = resolveConfig({ batchSize: o.numShards * o.shardSize, shardSize: o.shardSize, kernels: 'js' });
  const served: RunningCoordinator = await startServing(
    {
      run: { config, dataset: o.dataset, datasetHash: hash, spec: o.spec },
      params: o.weights,
      version: 0,
      host: '127.0.0.1',
      port: 0,
      token: o.token,
      scheduler: { minWorkers: 1, taskTimeoutMinMs: o.taskTimeoutMinMs, taskTimeoutMaxMs: o.taskTimeoutMaxMs },
      helloTimeoutMs: o.helloTimeoutMs,
      heartbeatMs: o.heartbeatMs,
      closeGraceMs: WAIT_MS,
      ...(o.verifier === undefined ? {} : { verifier: o.verifier }),
      ...(o.limits === undefined ? {} : { limits: o.limits }),
      ...(o.allowedOrigins === undefined ? {} : { allowedOrigins: o.allowedOrigins }),
      ...(o.namedTokens === undefined ? {} : { namedTokens: o.namedTokens }),
    },
    log,
  );
  return {
    url: served.url,
    hub: served.hub,
    scheduler: served.scheduler,
    logs,
    log,
    maxPayload: served.maxPayload,
    datasetHash: hash,
    replaceTokens: (named) => served.replaceTokens(named),
    close: async () => {
      served.scheduler.cancel('test over');
      await served.close(CloseCode.DONE, 'test over');
    },
  };
}

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

/** A worker that speaks the protocol by hand: every message is the test's choice. */
export class RawWorker {
  readonly socket: WebSocket;
  /** Every message received, in order, decoded. */
  readonly received: CoordinatorMessage[] = [];
  readonly closed: Promise<Closed>;
  #unread: CoordinatorMessage[] = [];
  #waiter: (() => void) | null = null;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) =>
      socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    socket.on('error', () => {}); // e.g. the server dropping us mid-send; `closed` reports the outcome
    socket.on('message', (data, isBinary) => {
      if (!isBinary) throw new Error('the coordinator sent a text frame');
      const m = decodeCoordinatorMessage(messageBytes(data));
      this.received.push(m);
      this.#unread.push(m);
      this.#waiter?.();
    });
  }

  static async connect(url: string, options: WsClientOptions = {}): Promise<RawWorker> {
    const socket = new WebSocket(url, { maxPayload: 1 << 30, ...options });
    const worker = new RawWorker(socket);
    await within(
      new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)),
      `connection to ${url}`,
    );
    return worker;
  }

  send(message: WorkerMessage): void {
    this.socket.send(encode(message));
  }

  /** Bytes or text exactly as given (a string goes out as a text frame). */
  sendRaw(data: Uint8Array | string): void {
    this.socket.send(data);
  }

  /** The next not yet consumed message of this type; earlier ones of other types stay unread. One wait at a time. */
  async next<K extends CoordinatorMessage['type']>(type: K): Promise<Extract<CoordinatorMessage, { type: K }>> {
    const take = (): CoordinatorMessage | undefined => {
      const i = this.#unread.findIndex((m) => m.type === type);
      return i < 0 ? undefined : this.#unread.splice(i, 1)[0];
    };
    const found = await within(
      new Promise<CoordinatorMessage>((resolve) => {
        const check = (): void => {
          const m = take();
          if (m === undefined) return;
          this.#waiter = null;
          resolve(m);
        };
        this.#waiter = check;
        check();
      }),
      `a ${type} message`,
    );
    return found as Extract<CoordinatorMessage, { type: K }>;
  }

  /** hello → welcome → ready → weights: the coordinator now counts this worker as ready. */
  async join(token: string, hash: string, agent = 'raw'): Promise<WelcomeMessage> {
    this.send({ type: 'hello', protocol: PROTOCOL_VERSION, token, kind: 'node', agent });
    const welcome = await this.next('welcome');
    this.send({ type: 'ready', datasetHash: hash });
    await this.next('weights');
    return welcome;
  }
}

/** The result an honest worker would send for `task`, as worker/client.ts builds it. */
export function honestResult(computer: ShardComputer, weights: Float32Array, task: TaskMessage): ResultMessage {
  const nodes = computer.computeNodes(weights, task.shards, task.numShards, task.step);
  const P = computer.paramCount;
  const grads = new Float32Array(nodes.length * P);
  nodes.forEach((n, k) => grads.set(n.partial.grad, k * P));
  return {
    type: 'result',
    taskId: task.taskId,
    version: task.version,
    nodes: nodes.map((n) => ({
      lo: n.node.lo,
      size: n.node.size,
      lossSum: n.partial.lossSum,
      count: n.partial.count,
      correct: n.partial.correct,
    })),
    dtype: 'f32',
    diverged: false,
    grads,
    computeMs: 0,
  };
}

export interface HonestWorker {
  readonly client: WorkerClient;
  readonly socket: WebSocket;
  readonly workerId: string;
  readonly closed: Promise<Closed>;
}

/** The real worker client over a real socket, resolved once the coordinator counts it ready. */
export async function startHonestWorker(url: string, token: string, dataset: Dataset): Promise<HonestWorker> {
  const socket = new WebSocket(url, { maxPayload: 1 << 30 });
  const quiet = { info: () => {}, warn: () => {}, debug: () => {} };
  const client = new WorkerClient(
    { send: (b) => socket.send(b), close: (code, reason) => socket.close(code, reason) },
    { token, kind: 'node', agent: 'honest', loadDataset: async () => dataset, log: quiet },
  );
  const closed = new Promise<Closed>((resolve) =>
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  // The scheduler sends the current weights to a worker the moment it turns ready, so
  // the first weights message means "joined".
  const joined = new Promise<void>((resolve) => {
    socket.on('message', (data, isBinary) => {
      if (!isBinary) return;
      const bytes = messageBytes(data);
      if (decodeCoordinatorMessage(bytes).type === 'weights') resolve();
      client.receive(bytes);
    });
  });
  socket.on('open', () => client.start());
  await within(
    Promise.race([
      joined,
      closed.then((c) => Promise.reject(new Error(`honest worker closed before joining: ${c.code} ${c.reason}`))),
    ]),
    'the honest worker to join',
  );
  return { client, socket, workerId: client.stats.workerId!, closed };
}
