// A man in the middle between one real worker and a coordinator: HTTP requests (the
// dataset download) and WebSocket frames pass through unchanged, except the worker's
// `result` messages, which are decoded by the documented protocol (shared/protocol/codec.ts),
// rewritten by a Forgery and encoded again. To the coordinator this is a token holder
// that sends well-formed results with the wrong numbers in them; closes travel both
// ways with their codes, so the worker sees what the coordinator decided.
//
// Not a test file. Every socket and the server close with close().

import { paramLayout } from '../../shared/model/spec.js';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { messageBytes } from '../../shared/node/message-bytes.js';
import {
  decodeCoordinatorMessage,
  decodeWorkerMessage,
  encode,
  type WorkerMessageLimits,
} from '../../shared/protocol/codec.js';
import type { ResultMessage } from '../../shared/protocol/messages.js';

/** How results are rewritten. */
export enum Forgery {
  /** Nothing rewritten: a relay that only adds its latency (for an honest worker beside a forger). */
  None = 'none',
  /** Every result's gradient times −10. */
  ScaleAll = 'scale-all',
  /** Honest for 30 results, then every 5th result's gradient times −10. */
  LateOneInFive = 'late-one-in-five',
  /** Every result carries the gradient of the first result it sent with as many nodes. */
  ReplayOld = 'replay-old',
  /** Gradients untouched; lossSum −1e30 and every sample counted correct. */
  ForgeStats = 'forge-stats',
  /** Honest for 10 results (through probation), then every gradient value 3e38. */
  Huge = 'huge',
}

export class ForgingRelay {
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #upstream: string;
  readonly #forgery: Forgery;
  readonly #sockets = new Set<WebSocket>();
  /** Results passed on, and how many of them were rewritten. */
  results = 0;
  forged = 0;
  #limits: WorkerMessageLimits | null = null;
  readonly #replay = new Map<number, Float32Array>();

  private constructor(server: Server, upstream: string, forgery: Forgery) {
    this.#server = server;
    this.#upstream = upstream;
    this.#forgery = forgery;
    this.#wss = new WebSocketServer({ server, maxPayload: 1 << 30 });
    this.#wss.on('connection', (socket, req) => this.#relay(socket, req));
    server.on('request', (req, res) => this.#proxyHttp(req, res));
  }

  /** Listens on 127.0.0.1:0 and relays to the coordinator at `upstream` (its ws:// URL). */
  static async start(upstream: string, forgery: Forgery): Promise<ForgingRelay> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new ForgingRelay(server, upstream, forgery);
  }

  /** The ws:// URL a worker connects to instead of the coordinator's. */
  get url(): string {
    return `ws://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #proxyHttp(req: IncomingMessage, res: ServerResponse): void {
    const target = new URL(req.url ?? '/', this.#upstream.replace(/^ws/, 'http'));
    const upstream = request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }

  #relay(worker: WebSocket, req: IncomingMessage): void {
    const coordinator = new WebSocket(new URL(req.url ?? '/', this.#upstream), { maxPayload: 1 << 30 });
    this.#sockets.add(worker);
    this.#sockets.add(coordinator);
    const early: Uint8Array[] = [];
    coordinator.on('open', () => {
      for (const bytes of early.splice(0)) coordinator.send(bytes);
    });
    coordinator.on('message', (data: RawData) => {
      const bytes = messageBytes(data);
      if (this.#limits === null) {
        const m = decodeCoordinatorMessage(bytes.slice());
        if (m.type === 'welcome')
          this.#limits = { paramCount: paramLayout(m.spec).totalSize, maxNodes: 1 << 16, wireDtype: m.wireDtype };
      }
      if (worker.readyState === worker.OPEN) worker.send(bytes);
    });
    worker.on('message', (data: RawData) => {
      const bytes = this.#rewrite(messageBytes(data));
      if (coordinator.readyState === coordinator.OPEN) coordinator.send(bytes);
      else if (coordinator.readyState === coordinator.CONNECTING) early.push(bytes);
    });
    const pass = (to: WebSocket) => (code: number, reason: Buffer) => {
      const valid = code >= 3000 || code === 1000;
      if (to.readyState === to.OPEN || to.readyState === to.CONNECTING)
        valid ? to.close(code, reason.toString()) : to.terminate();
    };
    coordinator.on('close', pass(worker));
    worker.on('close', pass(coordinator));
    coordinator.on('error', () => worker.terminate());
    worker.on('error', () => coordinator.terminate());
  }

  #rewrite(bytes: Uint8Array): Uint8Array {
    if (this.#limits === null) return bytes;
    const m = decodeWorkerMessage(bytes.slice(), this.#limits);
    if (m.type !== 'result' || m.diverged) return bytes;
    const n = ++this.results;
    const forged = this.#forge(m, n);
    if (forged === m) return bytes;
    this.forged++;
    return encode(forged);
  }

  #forge(r: ResultMessage, n: number): ResultMessage {
    switch (this.#forgery) {
      case Forgery.None:
        return r;
      case Forgery.ScaleAll:
        return { ...r, grads: r.grads.map((v) => v * -10) };
      case Forgery.LateOneInFive:
        return n > 30 && n % 5 === 0 ? { ...r, grads: r.grads.map((v) => v * -10) } : r;
      case Forgery.ReplayOld: {
        const old = this.#replay.get(r.nodes.length);
        if (old === undefined) {
          this.#replay.set(r.nodes.length, r.grads.slice());
          return r;
        }
        return { ...r, grads: old.slice() };
      }
      case Forgery.ForgeStats:
        return { ...r, nodes: r.nodes.map((node) => ({ ...node, lossSum: -1e30, correct: node.count })) };
      case Forgery.Huge:
        return n > 10 ? { ...r, grads: r.grads.map(() => 3e38) } : r;
      default: {
        const never: never = this.#forgery;
        throw new Error(`unknown forgery ${String(never)}`);
      }
    }
  }
}
