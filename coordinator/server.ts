// The coordinator's network front: one HTTP server on one port, carrying the
// WebSocket endpoint workers connect to and the HTTP routes (the dataset download,
// the worker page and its bundles, the dashboard and its event stream). It knows
// nothing of training: connections are handed to `onConnection`, HTTP requests to the
// route tables.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { ConfigError } from '../shared/errors.js';
import { tokensMatch } from './auth.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  /** Largest inbound WebSocket message, in bytes. */
  readonly maxPayload: number;
  readonly token: string;
  /** Exact-path routes that require the token (query ?token= or Authorization: Bearer). */
  readonly protectedRoutes: ReadonlyMap<string, RouteHandler>;
  /** Exact-path routes anyone may GET (pages and code, never data). */
  readonly publicRoutes?: ReadonlyMap<string, RouteHandler>;
  readonly onConnection: (socket: WebSocket, req: IncomingMessage) => void;
}

export interface RunningServer {
  readonly host: string;
  readonly port: number;
  readonly wss: WebSocketServer;
  close(): Promise<void>;
}

export function presentedToken(req: IncomingMessage, url: URL): string {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice('Bearer '.length);
  return url.searchParams.get('token') ?? '';
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const http: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const open = options.publicRoutes?.get(url.pathname);
    if (open !== undefined && req.method === 'GET') {
      open(req, res, url);
      return;
    }
    const route = options.protectedRoutes.get(url.pathname);
    if (route === undefined || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (!tokensMatch(options.token, presentedToken(req, url))) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('missing or wrong token\n');
      return;
    }
    route(req, res, url);
  });
  const wss = new WebSocketServer({ server: http, maxPayload: options.maxPayload });
  wss.on('connection', options.onConnection);
  // The WebSocketServer re-emits the HTTP server's errors; the listen handler below
  // turns those into user-facing errors, so this one only keeps them from crashing.
  wss.on('error', () => {});
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
  const address = http.address() as AddressInfo;
  return {
    host: options.host,
    port: address.port,
    wss,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
