// The coordinator's network front: one HTTP (or, with a certificate, HTTPS) server on
// one port, carrying the WebSocket endpoint workers connect to and the HTTP routes
// (the dataset download, the worker page and its bundles, the dashboard and its event
// stream). It knows nothing of training: connections are handed to `onConnection`,
// HTTP requests to the route tables.
//
// It is also the first line against peers that hold no token: connections are capped
// in total and per address; a socket idle before its upgrade or an authorized request,
// or slow to send its headers, is closed; a WebSocket upgrade from a web page must come
// from an allowed origin; and a WebSocket message may not exceed a few kB (the hub
// raises that per socket once it accepts the hello).

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { ConfigError } from '../shared/errors.js';
import { addressKey, type FailedTokenThrottle, normalizedOrigin, type TokenCheck, tokensMatch } from './auth.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

/** What a peer without a token can make the server hold, and for how long. */
export interface ServerLimits {
  /** Largest WebSocket message until the hub raises the socket's limit (after hello), in bytes. */
  readonly preHelloMaxBytes: number;
  /** ms a client has to send a request's headers. */
  readonly headersTimeoutMs: number;
  /** ms a connection may sit idle before its upgrade or an authorized request. */
  readonly idleTimeoutMs: number;
  /** ms an idle keep-alive connection is kept between requests. */
  readonly keepAliveTimeoutMs: number;
  /** Open TCP connections at most, in total and per address (an IPv4 address or an IPv6 /64). */
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
}

/** A certificate and its private key, PEM text. */
export interface TlsPem {
  readonly cert: string;
  readonly key: string;
}

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  readonly limits: ServerLimits;
  /** Serve https and wss with this certificate; null: http and ws. */
  readonly tls: TlsPem | null;
  /** The workers' tokens: one is required by protectedRoutes (Authorization: Bearer, or ?token=). */
  readonly tokens: TokenCheck;
  /** Accepted, besides the workers' token, by dashboardRoutes: it reads, it cannot join or fetch data. */
  readonly dashboardToken: string;
  /** Where failed tokens are counted (the hub counts failed hellos in the same one). */
  readonly throttle: FailedTokenThrottle;
  /** Exact-path routes that require the workers' token. */
  readonly protectedRoutes: ReadonlyMap<string, RouteHandler>;
  /** Exact-path routes that take either token. */
  readonly dashboardRoutes?: ReadonlyMap<string, RouteHandler>;
  /** Exact-path routes anyone may GET (pages and code, never data). */
  readonly publicRoutes?: ReadonlyMap<string, RouteHandler>;
  /**
   * Routes by path prefix that anyone may GET or HEAD, for shared caches: content named by its hash, whose path is
   * the capability (the weights over HTTP; see weights-route.ts). The handler answers every path under its prefix.
   */
  readonly cacheableRoutes?: ReadonlyMap<string, RouteHandler>;
  /** Origins, besides the server's own, whose pages may open a WebSocket (e.g. a reverse proxy's). */
  readonly allowedOrigins?: readonly string[];
  readonly log: Logger;
  readonly onConnection: (socket: WebSocket, req: IncomingMessage) => void;
}

export interface RunningServer {
  readonly host: string;
  readonly port: number;
  /** 'https' when serving TLS (then WebSockets are wss). */
  readonly scheme: 'http' | 'https';
  readonly wss: WebSocketServer;
  /** Origins an upgrade's Origin header may carry. */
  readonly allowedOrigins: ReadonlySet<string>;
  close(): Promise<void>;
}

export function presentedToken(req: IncomingMessage, url: URL): string {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice('Bearer '.length);
  return url.searchParams.get('token') ?? '';
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { limits, log } = options;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => route(options, req, res);
  const httpOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.headersTimeoutMs * 2,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // How often headersTimeout and requestTimeout are checked (Node's default is 30 s).
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
  };
  const http: Server = options.tls === null ? createServer(httpOptions, onRequest) : httpsServer(options.tls);
  function httpsServer(pem: TlsPem): Server {
    try {
      return createHttpsServer({ ...httpOptions, cert: pem.cert, key: pem.key }, onRequest);
    } catch (err) {
      // e.g. a key that is not the certificate's, or a malformed PEM block.
      throw new ConfigError(`--tls-cert/--tls-key: ${(err as Error).message}`);
    }
  }
  // Idle sockets (nothing sent, or nothing more after a response) are destroyed; an
  // upgraded socket leaves this behind (ws clears it) and is the hub's from then on.
  http.setTimeout(limits.idleTimeoutMs);
  capConnections(http, limits, log);
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.preHelloMaxBytes });
  wss.on('connection', options.onConnection);
  const scheme = options.tls === null ? 'http' : 'https';
  let allowed: ReadonlySet<string> = new Set();
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const origin = req.headers.origin;
    // Node workers send no Origin; a browser always does, naming the page that opened the socket.
    if (origin !== undefined && !allowed.has(origin)) {
      log.warn({ origin, remote: req.socket.remoteAddress }, 'WebSocket from a foreign origin refused');
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        reject(
          new ConfigError(
            `port ${options.port} on ${options.host} is in use: pick another with --port (0 = any free port)`,
          ),
        );
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES')
        reject(new ConfigError(`cannot listen on ${options.host}:${options.port} (${err.code})`));
      else reject(err);
    });
    http.listen(options.port, options.host, () => {
      http.removeAllListeners('error');
      resolve();
    });
  });
  // A later error (e.g. EMFILE on accept) must not end the run; the caps keep it rare.
  http.on('error', (err) => log.warn({ err: err.message }, 'server error'));
  const address = http.address() as AddressInfo;
  allowed = new Set([
    ...ownOrigins(scheme, options.host, address.port),
    ...(options.allowedOrigins ?? []).map(normalizedOrigin),
  ]);
  return {
    host: options.host,
    port: address.port,
    scheme,
    wss,
    allowedOrigins: allowed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

function route(options: ServerOptions, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  for (const [prefix, handler] of options.cacheableRoutes ?? []) {
    if (!url.pathname.startsWith(prefix)) continue;
    if (req.method === 'GET' || req.method === 'HEAD') handler(req, res, url);
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  const open = options.publicRoutes?.get(url.pathname);
  if (open !== undefined && req.method === 'GET') {
    open(req, res, url);
    return;
  }
  const forWorkers = options.protectedRoutes.get(url.pathname);
  const forDashboard = options.dashboardRoutes?.get(url.pathname);
  const handler = forWorkers ?? forDashboard;
  if (handler === undefined || req.method !== 'GET') {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  const key = addressKey(req.socket.remoteAddress ?? '?');
  options.throttle.afterDelay(key, () => {
    if (req.destroyed) return;
    const presented = presentedToken(req, url);
    const ok =
      options.tokens.match(presented) !== null ||
      (forWorkers === undefined && tokensMatch(options.dashboardToken, presented));
    if (!ok) {
      options.throttle.failed(key);
      res.writeHead(401, { 'content-type': 'text/plain' }).end('missing or wrong token\n');
      return;
    }
    options.throttle.succeeded(key);
    // Authorized: a slow reader of the dataset or a quiet event stream is not idle abuse.
    req.socket.setTimeout(0);
    handler(req, res, url);
  });
}

/** Descriptors kept out of the connection cap: checkpoints, the model file, compute threads, logs. */
const RESERVED_DESCRIPTORS = 128;

/** The soft limit on open files in /proc/self/limits text; null when unlimited or absent. */
export function openFilesLimit(procLimits: string): number | null {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(procLimits);
  return m === null || m[1] === 'unlimited' ? null : Number(m[1]);
}

/**
 * `wanted`, or less when this process may not open that many files besides what it
 * needs for itself: connections that take the last descriptors would make the next
 * checkpoint fail and refuse workers with a reset instead of a clean cut.
 */
function connectionCap(wanted: number, log: Logger): number {
  let text: string;
  try {
    text = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return wanted; // not Linux: the cap stands as given
  }
  const soft = openFilesLimit(text);
  if (soft === null || wanted <= soft - RESERVED_DESCRIPTORS) return wanted;
  const cap = Math.max(1, soft - RESERVED_DESCRIPTORS);
  log.warn(
    { maxConnections: cap, asked: wanted, openFilesLimit: soft },
    'fewer connections than asked: the open-files limit is low (raise it with ulimit -n)',
  );
  return cap;
}

/** Destroys a new TCP connection over the total or per-address cap, before it costs more than its descriptor. */
function capConnections(http: Server, limits: ServerLimits, log: Logger): void {
  const maxConnections = connectionCap(limits.maxConnections, log);
  const perAddress = new Map<string, number>();
  let total = 0;
  let lastWarned = 0;
  http.on('connection', (socket: Socket) => {
    const key = addressKey(socket.remoteAddress ?? '?');
    const mine = perAddress.get(key) ?? 0;
    if (total >= maxConnections || mine >= limits.maxConnectionsPerIp) {
      // One line per 10 s at most: a flood must not also flood the log.
      if (Date.now() - lastWarned > 10_000) {
        lastWarned = Date.now();
        log.warn({ address: key, fromAddress: mine, total }, 'connection refused: too many connections');
      }
      socket.destroy();
      return;
    }
    total++;
    perAddress.set(key, mine + 1);
    socket.once('close', () => {
      total--;
      const left = (perAddress.get(key) ?? 1) - 1;
      if (left === 0) perAddress.delete(key);
      else perAddress.set(key, left);
    });
  });
}

/**
 * The origins a page served by this server has: the addresses it listens on, with the
 * port, and on all interfaces also this machine's host name (other names, such as a
 * reverse proxy's, come with --allow-origin).
 */
function ownOrigins(scheme: 'http' | 'https', host: string, port: number): string[] {
  const hosts = new Set<string>();
  if (host === '0.0.0.0' || host === '::') {
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) if (a.family === 'IPv4' || host === '::') hosts.add(a.address);
    hosts.add('localhost');
    hosts.add(hostname().toLowerCase());
  } else {
    hosts.add(host);
    if (host === '127.0.0.1' || host === '::1' || host === 'localhost')
      for (const h of ['localhost', '127.0.0.1', '::1']) hosts.add(h);
  }
  const origins: string[] = [];
  for (const h of hosts) {
    const text = `${scheme}://${h.includes(':') ? `[${h}]` : h}:${port}`;
    // A link-local IPv6 address with a zone id makes no URL; no page has it as its origin.
    if (URL.canParse(text)) origins.push(new URL(text).origin);
  }
  return origins;
}
