// The worker's side of the protocol, platform-neutral: it drives one connection
// given a socket to send on and a way to load the dataset, and is fed the bytes that
// arrive. The Node entry and the browser entry wrap it around their own WebSocket.
//
// States: connecting → loading (welcome received, fetching data) → ready → stopped.
// The weights come only after this worker said ready, in an ordinary `weights` message,
// or, when the coordinator serves them over HTTP, as a path a task names: they are then
// fetched (fetchWeights, from the coordinator's own origin), their SHA-256 checked
// against the task's before anything is computed with them, and decoded. A fetch that
// fails costs that task only (the coordinator's deadline hands it to another worker);
// bytes that do not match are fetched once more past caches, and a second mismatch
// ends the connection. Messages are handled strictly in arrival order, waiting for the
// dataset or a fetch if need be.

import type { Dataset } from '../shared/data/dataset.js';
import { CloseCode, PROTOCOL_VERSION, ProtocolError } from '../shared/protocol/codes.js';
import { decodeCoordinatorMessage, decodeWeightsBody, encode } from '../shared/protocol/codec.js';
import { MessagePool } from '../shared/protocol/message-pool.js';
import { resultDigestParts, sha256Hex } from '../shared/result-digest.js';
import type {
  CoordinatorMessage,
  DatasetDescriptor,
  CheckMessage,
  TaskMessage,
  WeightsRef,
  WelcomeMessage,
  WorkerKind,
} from '../shared/protocol/messages.js';
import { kernelSetAvailable, type KernelSetName } from '../shared/kernels/kernel-set.js';
import { wireBytesPer, type WireDtype } from '../shared/wire-dtype.js';
import { sha256Hex as sha256HexJs } from './browser/sha256.js';
import { allNodesFinite, ShardComputer, type ComputerSetup, type GradientComputer } from './compute.js';

/**
 * GETs `path` (a weightsRef's, `/weights/...`) from the coordinator's origin, and
 * resolves with exactly `bytes` bytes, or rejects with one line saying why. `fresh`:
 * ask caches on the way not to answer from what they hold (a retry after a mismatch).
 */
export type FetchWeights = (path: string, bytes: number, fresh: boolean) => Promise<Uint8Array>;

export interface WorkerSocket {
  /**
   * Sends one message. A returned promise resolves once the bytes may be reused (a
   * socket that copies at once, like a browser's, returns nothing).
   */
  send(bytes: Uint8Array): void | Promise<void>;
  close(code: number, reason: string): void;
}

/** The slice of a pino-style logger the client uses. */
export interface ClientLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export type ClientState = 'connecting' | 'loading' | 'ready' | 'stopped';

export interface ClientOptions {
  readonly token: string;
  readonly kind: WorkerKind;
  readonly agent: string;
  /** Fetches (or reads from a cache) the dataset and checks it against the descriptor's hash. */
  readonly loadDataset: (descriptor: DatasetDescriptor) => Promise<Dataset>;
  readonly log: ClientLog;
  /** Called after each task, for status displays. */
  readonly onProgress?: (stats: ClientStats) => void;
  /** Testing only: ms to hold a result back, given the ms its compute took (see --fault-*). */
  readonly holdResultMs?: (computeMs: number) => number;
  /** Testing only: the digest a check is answered with, given the true one (see --fault-digest). */
  readonly faultDigest?: (digest: string) => string;
  /** Whether this engine can run a kernel set (default: kernelSetAvailable); tests stub it. */
  readonly canRunKernels?: (name: KernelSetName) => boolean;
  /** Builds the computer once the dataset is loaded (default: a ShardComputer on this thread). */
  readonly createComputer?: (setup: ComputerSetup) => GradientComputer | Promise<GradientComputer>;
  /** Fetches weights a task names by path; without it, a coordinator that serves weights over HTTP is refused. */
  readonly fetchWeights?: FetchWeights;
}

export interface ClientStats {
  workerId: string | null;
  state: ClientState;
  tasksDone: number;
  samplesDone: number;
  /** Mean loss of the last task's samples. */
  lastLoss: number | null;
  /** Samples per second of compute, over all tasks so far. */
  samplesPerSec: number;
  /** Why the coordinator gives this worker no shards (it stays ready), or null while it does. */
  standby: string | null;
  stopReason: string | null;
}

export class WorkerClient {
  readonly stats: ClientStats = {
    workerId: null,
    state: 'connecting',
    tasksDone: 0,
    samplesDone: 0,
    lastLoss: null,
    samplesPerSec: 0,
    standby: null,
    stopReason: null,
  };
  readonly #socket: WorkerSocket;
  readonly #options: ClientOptions;
  #computer: GradientComputer | null = null;
  #weights: Float32Array | null = null;
  #version = -1;
  #computeMs = 0;
  /** The run's wire dtype, from the welcome. */
  #wireDtype: WireDtype = 'f32';
  /**
   * Buffers bf16 weights are widened into, and whether one is held: from its decode
   * (on arrival) until its message is dropped or its weights are superseded, by which
   * time the tasks that computed with them are done (messages are handled in order).
   */
  readonly #widened = new Map<Float32Array, boolean>();
  readonly #widen = (length: number): Float32Array => {
    for (const [buffer, held] of this.#widened) {
      if (!held && buffer.length === length) {
        this.#widened.set(buffer, true);
        return buffer;
      }
    }
    const buffer = new Float32Array(length);
    this.#widened.set(buffer, true);
    return buffer;
  };
  /** Reused buffers for result messages (a gradient each). */
  readonly #results = new MessagePool();
  /** The last standby reason logged. */
  #standbyLogged: string | null = null;
  /** Messages are processed one after another on this chain. */
  #queue: Promise<void> = Promise.resolve();

  constructor(socket: WorkerSocket, options: ClientOptions) {
    this.#socket = socket;
    this.#options = options;
  }

  /** Call once the socket is open. */
  start(): void {
    const { token, kind, agent } = this.#options;
    this.#socket.send(encode({ type: 'hello', protocol: PROTOCOL_VERSION, token, kind, agent }));
  }

  /** Feed every binary message here. */
  receive(bytes: Uint8Array): void {
    let message: CoordinatorMessage;
    try {
      message = decodeCoordinatorMessage(bytes, this.#widen);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#fail(CloseCode.PROTOCOL_ERROR, `${err.reason}: ${err.message}`);
      return;
    }
    this.#queue = this.#queue
      .then(() => this.#handle(message))
      .catch((err: unknown) => {
        this.#fail(CloseCode.PROTOCOL_ERROR, err instanceof Error ? err.message : String(err));
      });
  }

  /** Leave voluntarily. */
  leave(): void {
    this.stats.state = 'stopped';
    this.stats.stopReason = 'left';
    this.#socket.close(CloseCode.LEAVING, 'worker leaving');
  }

  async #handle(message: CoordinatorMessage): Promise<void> {
    if (this.stats.state === 'stopped') return;
    switch (message.type) {
      case 'welcome':
        return this.#welcome(message);
      case 'weights':
        return this.#adopt(message.version, message.dtype, message.weights);
      case 'task':
        if (message.weights !== null) this.#adopt(message.version, message.dtype, message.weights);
        else if (message.weightsRef !== undefined && message.version > this.#version) {
          const weights = await this.#fetchWeights(message.weightsRef, message.version, 'task');
          // Logged; no result, so the task's deadline hands its shards to another worker.
          if (weights === null) return;
          this.#adopt(message.version, message.dtype, weights);
        }
        this.stats.standby = null;
        return this.#task(message);
      case 'check':
        return this.#check(message);
      case 'standby':
        this.stats.standby = message.reason;
        // A worker that gets a shard now and then stands by again and again: one line per reason.
        if (message.reason !== this.#standbyLogged) this.#options.log.info({ reason: message.reason }, 'standing by');
        this.#standbyLogged = message.reason;
        this.#options.onProgress?.(this.stats);
        return;
      case 'stop':
        this.stats.state = 'stopped';
        this.stats.stopReason = message.reason;
        this.#options.log.info({ reason: message.reason }, 'stopped by coordinator');
        this.#options.onProgress?.(this.stats);
        return;
      default: {
        const never: never = message;
        throw new Error(`unhandled message ${JSON.stringify(never)}`);
      }
    }
  }

  /** Makes `weights` the ones tasks at `version` compute with, unless newer ones arrived already. */
  #adopt(version: number, dtype: WireDtype, weights: Float32Array): void {
    // Weights come only once this worker is ready (its computer knows the model's size).
    const paramCount = this.#computer?.paramCount;
    if (paramCount === undefined) throw new Error('weights before this worker was ready');
    if (weights.length !== paramCount) throw new Error(`weights of ${weights.length} values, model has ${paramCount}`);
    if (dtype !== this.#wireDtype) throw new Error(`weights in ${dtype}, the run's wire dtype is ${this.#wireDtype}`);
    if (version >= this.#version) {
      // The message buffer is ours alone; keep the view, no copy.
      if (weights !== this.#weights) this.#release(this.#weights);
      this.#weights = weights;
      this.#version = version;
    } else {
      this.#release(weights);
    }
  }

  /**
   * The weights at `ref`, fetched and checked against its SHA-256 before they are decoded; null when the fetch
   * failed (logged). A body that does not match is fetched once more past caches; a second mismatch throws, which
   * closes the connection: computing on bad weights would only have every result refused.
   */
  async #fetchWeights(ref: WeightsRef, version: number, purpose: 'task' | 'check'): Promise<Float32Array | null> {
    const fetchWeights = this.#options.fetchWeights;
    if (fetchWeights === undefined)
      throw new Error('the coordinator serves the weights over HTTP, and this worker cannot fetch them');
    const paramCount = this.#computer?.paramCount;
    if (paramCount === undefined) throw new Error('weights before this worker was ready');
    const bytes = paramCount * wireBytesPer(this.#wireDtype);
    for (const fresh of [false, true]) {
      let body: Uint8Array;
      try {
        body = await fetchWeights(ref.path, bytes, fresh);
      } catch (err) {
        this.#options.log.warn(
          { version, path: ref.path, err: err instanceof Error ? err.message : String(err) },
          `cannot fetch the weights; this ${purpose} is left to its deadline, when the coordinator hands it on`,
        );
        return null;
      }
      const got = await bodyHash(body);
      if (got === ref.sha256) {
        this.#options.log.debug({ version, bytes: body.byteLength, for: purpose }, 'weights fetched');
        return decodeWeightsBody(body, this.#wireDtype, paramCount, this.#widen);
      }
      this.#options.log.warn(
        { version, path: ref.path, expected: ref.sha256, got, fresh },
        fresh
          ? 'weights rejected: their SHA-256 does not match'
          : 'weights rejected: their SHA-256 does not match; fetching again past caches',
      );
    }
    throw new Error(`the weights at ${ref.path} do not match their SHA-256, even fetched past caches`);
  }

  #release(weights: Float32Array | null): void {
    if (weights !== null && this.#widened.has(weights)) this.#widened.set(weights, false);
  }

  async #welcome(m: WelcomeMessage): Promise<void> {
    if (this.stats.state !== 'connecting') throw new Error('second welcome');
    // Another kernel set would give other bits and break the run's contract: refuse instead.
    if (!(this.#options.canRunKernels ?? kernelSetAvailable)(m.kernels)) {
      const detail = `the run uses the ${m.kernels} kernel set, which needs WebAssembly SIMD-128; this engine lacks it`;
      this.#options.log.warn({ kernels: m.kernels }, detail);
      this.stats.state = 'stopped';
      this.stats.stopReason = detail;
      this.#socket.close(CloseCode.UNSUPPORTED_KERNELS, detail.slice(0, 120));
      this.#options.onProgress?.(this.stats);
      return;
    }
    this.stats.workerId = m.workerId;
    this.stats.state = 'loading';
    this.#wireDtype = m.wireDtype;
    this.#options.log.info(
      { workerId: m.workerId, dataset: m.dataset.name, datasetHash: m.dataset.hash, kernels: m.kernels },
      'welcomed; loading dataset',
    );
    const dataset = await this.#options.loadDataset(m.dataset);
    const setup: ComputerSetup = {
      spec: m.spec,
      dataset,
      datasetHash: m.dataset.hash,
      shardSize: m.shardSize,
      kernels: m.kernels,
      wireDtype: m.wireDtype,
      report: (message) => {
        if (this.stats.state === 'ready') this.#socket.send(encode(message));
      },
    };
    this.#computer = await (this.#options.createComputer?.(setup) ??
      new ShardComputer(m.spec, dataset, m.shardSize, m.kernels, m.wireDtype));
    this.stats.state = 'ready';
    this.#socket.send(encode({ type: 'ready', datasetHash: m.dataset.hash }));
    this.#options.log.info({ workerId: m.workerId }, 'ready');
  }

  async #task(t: TaskMessage): Promise<void> {
    const computer = this.#computer;
    if (computer === null || this.#weights === null) throw new Error('task before the dataset and weights arrived');
    if (t.version < this.#version) {
      this.#options.log.debug({ taskId: t.taskId, version: t.version }, 'task for old weights skipped');
      return;
    }
    if (t.version > this.#version)
      throw new Error(`task for weights version ${t.version}, but only ${this.#version} arrived`);
    const started = performance.now();
    const nodes = await computer.computeNodes(this.#weights, t.shards, t.numShards, t.step, t.version);
    const computeMs = performance.now() - started;
    const P = computer.paramCount;
    let grads = nodes[0].partial.grad; // the common case: one node, sent as is
    if (nodes.length > 1) {
      grads = new Float32Array(nodes.length * P);
      nodes.forEach((n, k) => grads.set(n.partial.grad, k * P));
    }
    const hold = this.#options.holdResultMs?.(computeMs) ?? 0;
    if (hold > 0) await new Promise((resolve) => setTimeout(resolve, hold));
    // NaN or ±Inf: say so instead of sending numbers the coordinator must refuse.
    const diverged = !allNodesFinite(nodes);
    if (diverged)
      this.#options.log.warn(
        { taskId: t.taskId, version: t.version },
        'the gradient is not finite (training diverged?); telling the coordinator',
      );
    const message = this.#results.encode({
      type: 'result',
      taskId: t.taskId,
      version: t.version,
      nodes: nodes.map((n) => ({
        lo: n.node.lo,
        size: n.node.size,
        lossSum: diverged ? 0 : n.partial.lossSum,
        count: n.partial.count,
        correct: n.partial.correct,
      })),
      dtype: this.#wireDtype,
      diverged,
      grads: diverged ? new Float32Array(0) : grads,
      computeMs,
    });
    // Released once the socket is done with the bytes, so the buffer serves a later result.
    const sent = this.#socket.send(message.bytes);
    if (sent === undefined) message.release();
    else void sent.then(() => message.release());
    const samples = nodes.reduce((a, n) => a + n.partial.count, 0);
    const loss = nodes.reduce((a, n) => a + n.partial.lossSum, 0);
    this.#computeMs += computeMs;
    this.stats.tasksDone++;
    this.stats.samplesDone += samples;
    this.stats.lastLoss = samples > 0 ? loss / samples : null;
    this.stats.samplesPerSec = this.#computeMs > 0 ? (this.stats.samplesDone * 1000) / this.#computeMs : 0;
    this.#options.onProgress?.(this.stats);
  }

  /** Recomputes another worker's task and answers with only the digest of the result. */
  async #check(c: CheckMessage): Promise<void> {
    const computer = this.#computer;
    if (computer === null) throw new Error('check before the dataset arrived');
    if (c.weights !== null && c.weights.length !== computer.paramCount)
      throw new Error(`check weights of ${c.weights.length} values, model has ${computer.paramCount}`);
    // An audit is usually of an older version than this worker's tasks: its weights are used
    // for this check only, never adopted for tasks. Fetched weights newer than this worker's
    // are adopted, though: its next task is at that version or later, and need not fetch them again.
    let fetched: Float32Array | null = null;
    if (c.weightsRef !== undefined && c.version !== this.#version) {
      fetched = await this.#fetchWeights(c.weightsRef, c.version, 'check');
      if (fetched === null) return; // logged; the check's deadline runs out and the coordinator recomputes
      if (c.version > this.#version) {
        this.#adopt(c.version, c.dtype, fetched);
        fetched = null; // held as this worker's weights now, not released after the check
      }
    }
    const weights = c.weights ?? fetched ?? (c.version === this.#version ? this.#weights : null);
    if (weights === null) {
      // No answer: the coordinator's deadline runs out and it recomputes itself.
      this.#options.log.warn({ checkId: c.checkId, version: c.version }, 'check without the weights of its version');
      return;
    }
    // WebCrypto exists only in secure contexts (a page over plain http has none): then no answer.
    if (globalThis.crypto?.subtle === undefined) {
      this.#options.log.warn({ checkId: c.checkId }, 'check not answered: no WebCrypto in this context');
      if (c.weights !== null) this.#release(c.weights);
      this.#release(fetched);
      return;
    }
    const nodes = await computer.computeNodes(weights, c.shards, c.numShards, c.step, c.version);
    const digest = await sha256Hex(resultDigestParts(nodes.map((n) => n.partial)));
    if (c.weights !== null) this.#release(c.weights);
    this.#release(fetched);
    const answer = this.#options.faultDigest?.(digest) ?? digest;
    this.#socket.send(encode({ type: 'digest', checkId: c.checkId, digest: answer }));
  }

  #fail(code: number, detail: string): void {
    this.#options.log.warn({ detail }, 'protocol error; disconnecting');
    this.stats.state = 'stopped';
    this.stats.stopReason = detail;
    this.#socket.close(code, detail.slice(0, 120));
  }
}

/**
 * Hex SHA-256 of a fetched body: WebCrypto where there is one, else plain JS (a page
 * over plain http, not a secure context, has no crypto.subtle).
 */
async function bodyHash(body: Uint8Array): Promise<string> {
  return globalThis.crypto?.subtle !== undefined ? sha256Hex([body]) : sha256HexJs([body]);
}
