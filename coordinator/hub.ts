// Worker connections: the handshake, heartbeats, decoding, and rejection of bad
// input. Each connection walks an explicit state machine
//   awaiting_hello → authenticating (its address's wait for failed tokens)
//     → loading (welcome sent, worker fetching data) → ready → closed
// and the hub tells the scheduler only about ready workers, their results and their
// departure. Bad input never throws out of here: it is logged with the worker id,
// the worker is disconnected with a close code, and the scheduler reassigns its work.
// Until its hello is accepted a connection may send only small messages (the server's
// limit); a worker that stops reading is dropped once its unsent bytes pass a bound.

import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import { messageBytes } from '../shared/node/message-bytes.js';
import { CloseCode, PROTOCOL_VERSION, ProtocolError, type RejectReason } from '../shared/protocol/codes.js';
import { decodeWorkerMessage, encode, type WorkerMessageLimits } from '../shared/protocol/codec.js';
import type {
  HelloMessage,
  DigestMessage,
  ResultMessage,
  WelcomeMessage,
  WorkerKind,
  WorkerMessage,
} from '../shared/protocol/messages.js';
import { addressKey, type FailedTokenThrottle, MAIN_TOKEN_NAME, type TokenCheck } from './auth.js';
import type { Events } from './events.js';

/** Ban reports logged per connection at most. */
const MAX_BAN_REPORTS = 100;

export type ConnectionState = 'awaiting_hello' | 'authenticating' | 'loading' | 'ready' | 'closed';

/** What a connection may hold or send, and what it does past those bounds. */
interface ConnectionLimits {
  /** Unsent bytes the coordinator holds for it at most. */
  readonly maxBufferedBytes: number;
  /** Called once, soon after a send leaves more than maxBufferedBytes unsent. */
  readonly onUnread: () => void;
}

export class WorkerConnection {
  readonly id: string;
  readonly remote: string;
  /** Bound to the worker's id, and once it is in, to its token's name. */
  log: Logger;
  /** The name of the token it joined with (auth.ts), once it is in. */
  tokenName: string | null = null;
  readonly #socket: WebSocket;
  readonly #onReject: (reason: RejectReason, detail: string, code?: number) => void;
  readonly #limits: ConnectionLimits;
  state: ConnectionState = 'awaiting_hello';
  /** Its unsent bytes passed the bound (reported once). */
  #unread = false;
  kind: WorkerKind | null = null;
  agent = '';
  /** Tasks completed and samples computed, for the logs and the dashboard. */
  tasksDone = 0;
  samplesDone = 0;
  computeMs = 0;
  /** Set by the scheduler while the worker stands by (see StepWorker). */
  standby: string | null = null;
  /** banReport messages received (a relay's); past MAX_BAN_REPORTS they are no longer logged. */
  banReports = 0;
  lastSeen = Date.now();

  /** `onReject`: what rejecting this worker does (the hub logs it, closes it and reports it gone). */
  constructor(
    id: string,
    socket: WebSocket,
    remote: string,
    log: Logger,
    onReject: (reason: RejectReason, detail: string, code?: number) => void,
    limits: ConnectionLimits,
  ) {
    this.id = id;
    this.#socket = socket;
    this.remote = remote;
    this.log = log;
    this.#onReject = onReject;
    this.#limits = limits;
  }

  /** Lets the authenticated worker send messages of up to `maxPayload` bytes (results). */
  admit(maxPayload: number): void {
    raiseMaxPayload(this.#socket, maxPayload);
  }

  /**
   * Disconnects the worker for a bad result (close code BAD_RESULT), or for missing its
   * deadlines (`too_slow`, close code TOO_SLOW); its work is reassigned.
   */
  reject(reason: RejectReason, detail: string): void {
    this.#onReject(reason, detail);
  }

  /** Disconnects the worker for a forged result (close code BANNED); the hub refuses it for the rest of the run. */
  ban(detail: string): void {
    this.#onReject('forged', detail, CloseCode.BANNED);
  }

  /**
   * Sends already-encoded bytes (one encoding can serve many workers). `onSent` runs
   * once the bytes are handed to the OS or the send failed: until then they must not change.
   */
  send(bytes: Uint8Array, onSent?: () => void): void {
    if (this.state === 'closed' || this.#socket.readyState !== this.#socket.OPEN) {
      onSent?.();
      return;
    }
    this.#socket.send(bytes, { binary: true }, onSent === undefined ? undefined : () => onSent());
    if (!this.#unread && this.#socket.bufferedAmount > this.#limits.maxBufferedBytes) {
      this.#unread = true;
      // Not from inside send: the caller (the scheduler, mid-dispatch) finishes first.
      queueMicrotask(this.#limits.onUnread);
    }
  }

  close(code: number, reason: string): void {
    if (this.#socket.readyState === this.#socket.OPEN || this.#socket.readyState === this.#socket.CONNECTING)
      this.#socket.close(code, reason);
  }

  terminate(): void {
    this.#socket.terminate();
  }

  /** A WebSocket ping; browsers and ws answer with a pong automatically. */
  ping(): void {
    if (this.#socket.readyState === this.#socket.OPEN) this.#socket.ping();
  }
}

/**
 * What a ban refuses: the connection itself, then any hello from the same IP address
 * with the same agent name. A token is shared by every worker, and the address and
 * agent are the best a shared-token run knows of a peer; a forger that changes either
 * comes back as a new worker on probation, whose results are checked before they count.
 */
function banIdentity(remote: string, agent: string): string {
  return `${remote.slice(0, remote.lastIndexOf(':'))}\u0000${agent}`;
}

/** What the hub needs from the rest of the coordinator. */
export interface HubHandlers {
  /** Everything a welcome carries except the worker id. */
  welcome(): Omit<WelcomeMessage, 'type' | 'protocol' | 'workerId'>;
  onReady(worker: WorkerConnection): void;
  /** `byteLength`: the message's size on the wire. */
  onResult(worker: WorkerConnection, result: ResultMessage, byteLength: number): void;
  /** The answer to a `check` this worker was sent (audits on idle workers). */
  onDigest?(worker: WorkerConnection, digest: DigestMessage): void;
  onGone(worker: WorkerConnection, why: string): void;
  /** Where a bf16 gradient is widened (see TensorAlloc); default: a fresh buffer. */
  tensorBuffer?(length: number): Float32Array;
}

export interface HubOptions {
  /** Who may join, and under which token name. */
  readonly tokens: TokenCheck;
  /** Where failed tokens are counted, per address (shared with the HTTP routes). */
  readonly throttle: FailedTokenThrottle;
  /** Largest message an authenticated worker may send, in bytes (before hello: the server's small limit). */
  readonly maxPayload: number;
  /** Unsent bytes held for one worker at most; a worker past it does not read, and is dropped. */
  readonly maxBufferedBytes: number;
  readonly datasetHash: string;
  readonly limits: WorkerMessageLimits;
  /** A connection must say hello within this many ms. */
  readonly helloTimeoutMs: number;
  /** Ping period; a worker that misses a whole period's pong is dropped. */
  readonly heartbeatMs: number;
}

export class Hub {
  readonly #options: HubOptions;
  readonly #log: Logger;
  readonly #events: Events;
  readonly #handlers: HubHandlers;
  readonly #connections = new Set<WorkerConnection>();
  /** Each connection's address key (auth.ts), for the failed-token throttle. */
  readonly #addresses = new Map<WorkerConnection, string>();
  /** Banned workers' identities (see banIdentity): a hello that matches one is refused. */
  readonly #banned = new Set<string>();
  readonly #heartbeat: NodeJS.Timeout;
  #drainWaiters: (() => void)[] = [];
  #nextId = 1;

  /** `log`: for the connection's own lines; `events`: where rejections are announced. */
  constructor(options: HubOptions, log: Logger, events: Events, handlers: HubHandlers) {
    this.#options = options;
    this.#log = log;
    this.#events = events;
    this.#handlers = handlers;
    this.#heartbeat = setInterval(() => this.#checkHeartbeats(), options.heartbeatMs);
    this.#heartbeat.unref();
  }

  get connections(): ReadonlySet<WorkerConnection> {
    return this.#connections;
  }

  /** Hands a new WebSocket to the hub. */
  accept(socket: WebSocket, req: IncomingMessage): void {
    const id = `w${this.#nextId++}`;
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    const address = addressKey(req.socket.remoteAddress ?? '?');
    const worker: WorkerConnection = new WorkerConnection(
      id,
      socket,
      remote,
      this.#log.child({ workerId: id }),
      (reason, detail, code = reason === 'too_slow' ? CloseCode.TOO_SLOW : CloseCode.BAD_RESULT) => {
        if (code === CloseCode.BANNED) this.#banned.add(banIdentity(worker.remote, worker.agent));
        // A banned worker already gone needs no second close or departure.
        if (worker.state !== 'closed') this.#reject(worker, code, detail, reason);
      },
      {
        maxBufferedBytes: this.#options.maxBufferedBytes,
        onUnread: () => this.#dropUnread(worker),
      },
    );
    this.#addresses.set(worker, address);
    this.#connections.add(worker);
    const helloTimer = setTimeout(() => {
      if (worker.state === 'awaiting_hello')
        this.#reject(worker, CloseCode.HELLO_TIMEOUT, 'no hello within the handshake deadline');
    }, this.#options.helloTimeoutMs);
    socket.on('pong', () => {
      worker.lastSeen = Date.now();
    });
    socket.on('message', (data: RawData, isBinary: boolean) => {
      worker.lastSeen = Date.now();
      this.#onMessage(worker, data, isBinary);
    });
    socket.on('close', (code: number, reason: Buffer) => {
      clearTimeout(helloTimer);
      this.#connections.delete(worker);
      this.#addresses.delete(worker);
      if (this.#connections.size === 0) for (const wake of this.#drainWaiters.splice(0)) wake();
      this.#markGone(worker, `closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`);
    });
    socket.on('error', (err: Error & { code?: string }) => {
      // ws reports oversized or malformed frames here, then closes the socket.
      const reason: RejectReason = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'too_large' : 'malformed';
      this.#events.emit('workerRejected', { workerId: id, reason, detail: err.message, remote });
      this.#markGone(worker, `rejected (${err.message})`);
    });
  }

  /** Disconnects every worker that joined with one of these token names (close code UNAUTHORIZED). */
  revoke(names: readonly string[]): void {
    const revoked = new Set(names);
    for (const w of this.#connections) {
      if (w.tokenName === null || !revoked.has(w.tokenName) || w.state === 'closed') continue;
      w.log.warn({ tokenName: w.tokenName }, 'token revoked; disconnecting');
      w.close(CloseCode.UNAUTHORIZED, 'token revoked');
      this.#markGone(w, `token ${w.tokenName} revoked`);
    }
  }

  /** Tells every connected worker to stop, with a reason, and closes. */
  stopAll(code: number, reason: string): void {
    const bytes = encode({ type: 'stop', reason });
    for (const w of this.#connections) {
      w.send(bytes);
      w.close(code, reason);
    }
  }

  close(): void {
    clearInterval(this.#heartbeat);
  }

  /** Resolves once every connection has closed, or after `timeoutMs`, whichever comes first. */
  drained(timeoutMs: number): Promise<void> {
    if (this.#connections.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#drainWaiters.push(done);
    });
  }

  #onMessage(worker: WorkerConnection, data: RawData, isBinary: boolean): void {
    if (worker.state === 'closed') return;
    if (!isBinary) {
      this.#reject(worker, CloseCode.PROTOCOL_ERROR, 'text frame; the protocol is binary msgpack', 'malformed');
      return;
    }
    const bytes = messageBytes(data);
    let message: WorkerMessage;
    try {
      message = decodeWorkerMessage(bytes, this.#options.limits, this.#handlers.tensorBuffer);
    } catch (err) {
      if (!(err instanceof ProtocolError)) {
        // A decoder bug must not let one peer's bytes stop the run: say so loudly, drop the peer.
        worker.log.error({ err }, 'a message could not be decoded (a flocktrain bug): dropping the worker');
        this.#reject(worker, CloseCode.PROTOCOL_ERROR, 'undecodable message', 'malformed');
        return;
      }
      // Only a result carries gradients: a wrong length or a non-finite value there is
      // a bad result (codes.ts), not a protocol violation.
      const code =
        err.reason === 'bad_length' || err.reason === 'non_finite' ? CloseCode.BAD_RESULT : CloseCode.PROTOCOL_ERROR;
      this.#reject(worker, code, err.message, err.reason);
      return;
    }
    switch (message.type) {
      case 'hello': {
        if (worker.state !== 'awaiting_hello')
          return this.#reject(worker, CloseCode.PROTOCOL_ERROR, 'second hello', 'unexpected');
        worker.state = 'authenticating';
        const address = this.#addresses.get(worker) ?? '?';
        this.#options.throttle.afterDelay(address, () => this.#authenticate(worker, message, address));
        return;
      }
      case 'ready': {
        if (worker.state !== 'loading')
          return this.#reject(worker, CloseCode.PROTOCOL_ERROR, `ready while ${worker.state}`, 'unexpected');
        if (message.datasetHash !== this.#options.datasetHash) {
          return this.#reject(
            worker,
            CloseCode.PROTOCOL_ERROR,
            `worker loaded dataset ${message.datasetHash.slice(0, 12)}…, ` +
              `expected ${this.#options.datasetHash.slice(0, 12)}…`,
            'unexpected',
          );
        }
        worker.state = 'ready';
        this.#handlers.onReady(worker);
        return;
      }
      case 'result':
        if (worker.state !== 'ready')
          return this.#reject(worker, CloseCode.PROTOCOL_ERROR, `result while ${worker.state}`, 'unexpected');
        this.#handlers.onResult(worker, message, bytes.byteLength);
        return;
      case 'digest':
        if (worker.state !== 'ready')
          return this.#reject(worker, CloseCode.PROTOCOL_ERROR, `digest while ${worker.state}`, 'unexpected');
        this.#handlers.onDigest?.(worker, message);
        return;
      case 'banReport':
        if (worker.state !== 'ready')
          return this.#reject(worker, CloseCode.PROTOCOL_ERROR, `banReport while ${worker.state}`, 'unexpected');
        // A token holder cannot fill the log with them; a relay that bans this many has its own log.
        if (++worker.banReports > MAX_BAN_REPORTS) {
          if (worker.banReports === MAX_BAN_REPORTS + 1)
            worker.log.warn({ max: MAX_BAN_REPORTS }, 'further ban reports of this relay are not logged');
          return;
        }
        // Only said and shown: the relay's own results are audited like any worker's.
        this.#events.emit('relayBanReported', {
          relayId: worker.id,
          relayAgent: worker.agent,
          workerId: message.workerId,
          agent: message.agent,
          remote: message.remote,
          detail: message.detail,
        });
        return;
      default: {
        const never: never = message;
        throw new Error(`unhandled message ${JSON.stringify(never)}`);
      }
    }
  }

  /** The token of a hello, checked once its address's wait for earlier failures is over. */
  #authenticate(worker: WorkerConnection, hello: HelloMessage, address: string): void {
    if (worker.state !== 'authenticating') return; // gone while it waited
    const tokenName = this.#options.tokens.match(hello.token);
    if (tokenName === null) {
      this.#options.throttle.failed(address);
      worker.log.warn({ remote: worker.remote }, 'rejected: wrong or missing token');
      worker.state = 'closed';
      worker.close(CloseCode.UNAUTHORIZED, 'wrong or missing token');
      return;
    }
    this.#options.throttle.succeeded(address);
    if (hello.protocol !== PROTOCOL_VERSION) {
      return this.#reject(
        worker,
        CloseCode.VERSION_MISMATCH,
        `protocol ${hello.protocol} not supported (coordinator speaks ${PROTOCOL_VERSION})`,
        'version',
      );
    }
    // The dashboard and the join/leave lines show the agent: a named token is part of who it is.
    const agent = tokenName === MAIN_TOKEN_NAME ? hello.agent : `${hello.agent} [${tokenName}]`;
    if (this.#banned.has(banIdentity(worker.remote, agent)))
      return this.#reject(worker, CloseCode.BANNED, 'banned for the rest of the run', 'forged');
    worker.kind = hello.kind;
    worker.tokenName = tokenName;
    worker.log = worker.log.child({ tokenName });
    worker.agent = agent;
    worker.state = 'loading';
    worker.admit(this.#options.maxPayload);
    const w = this.#handlers.welcome();
    worker.send(encode({ type: 'welcome', protocol: PROTOCOL_VERSION, workerId: worker.id, ...w }));
    worker.log.debug({ kind: worker.kind, agent: worker.agent, remote: worker.remote }, 'welcomed');
  }

  /** A worker whose unsent bytes passed the bound: cut at once (a close frame would queue behind them). */
  #dropUnread(worker: WorkerConnection): void {
    if (worker.state === 'closed') return;
    const detail = `more than ${this.#options.maxBufferedBytes} bytes sent to it are still unread`;
    this.#events.emit('workerRejected', { workerId: worker.id, reason: 'not_reading', detail, remote: worker.remote });
    this.#markGone(worker, 'rejected (not_reading)');
    worker.terminate();
  }

  /** Logs a rejection with the worker id and disconnects; the scheduler reassigns its work. */
  #reject(worker: WorkerConnection, code: number, detail: string, reason: RejectReason = 'unexpected'): void {
    this.#events.emit('workerRejected', { workerId: worker.id, reason, detail, remote: worker.remote });
    // The close reason is limited to 123 bytes by RFC 6455.
    worker.close(code, `${reason}: ${detail}`.slice(0, 120));
    // Out now, not when the close handshake ends: what the worker sent behind the bad
    // message is ignored, and its shards are reassigned without waiting for its reply.
    this.#markGone(worker, `rejected (${reason})`);
  }

  /** Marks the worker closed; one that was welcomed has joined, so it is reported gone, once. */
  #markGone(worker: WorkerConnection, why: string): void {
    const previous = worker.state;
    worker.state = 'closed';
    if (previous === 'loading' || previous === 'ready') this.#handlers.onGone(worker, why);
  }

  #checkHeartbeats(): void {
    const now = Date.now();
    for (const w of this.#connections) {
      if (now - w.lastSeen > 2 * this.#options.heartbeatMs) {
        w.log.warn({ silentMs: now - w.lastSeen }, 'heartbeat missed; dropping worker');
        w.terminate();
      }
    }
    for (const w of this.#connections) w.ping();
  }
}

/**
 * Raises one socket's largest accepted message, once its peer has authenticated. ws
 * fixes maxPayload per server and has no public way to change it per socket (a
 * change was proposed and declined upstream), so this sets the receiver's limit,
 * which it checks against each frame's declared length before buffering any of it.
 * Throws if ws no longer has that field, so an upgrade cannot silently drop the limit.
 */
function raiseMaxPayload(socket: WebSocket, bytes: number): void {
  const receiver = (socket as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (receiver === undefined || receiver === null || typeof receiver._maxPayload !== 'number')
    throw new Error('ws internals changed: cannot raise a socket maxPayload (see coordinator/hub.ts)');
  receiver._maxPayload = bytes;
}
