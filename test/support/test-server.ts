// The coordinator's HTTP server with only the routes a test gives it: on loopback, any
// free port, small limits, one worker token and one dashboard token, and every
// WebSocket closed at once (these tests speak HTTP).

import { pino } from 'pino';
import { FailedTokenThrottle, singleToken } from '../../coordinator/auth.js';
import { type RunningServer, type ServerOptions, startServer } from '../../coordinator/server.js';

export type TestServerRoutes = Pick<
  ServerOptions,
  'protectedRoutes' | 'dashboardRoutes' | 'publicRoutes' | 'cacheableRoutes'
>;

export function startTestServer(
  routes: TestServerRoutes,
  tokens: { readonly worker: string; readonly dashboard: string },
): Promise<RunningServer> {
  return startServer({
    host: '127.0.0.1',
    port: 0,
    limits: {
      preHelloMaxBytes: 1024,
      headersTimeoutMs: 5000,
      idleTimeoutMs: 5000,
      keepAliveTimeoutMs: 5000,
      maxConnections: 64,
      maxConnectionsPerIp: 64,
    },
    tls: null,
    tokens: singleToken(tokens.worker),
    dashboardToken: tokens.dashboard,
    throttle: new FailedTokenThrottle({ baseMs: 1, maxMs: 1, forgetMs: 1, maxAddresses: 1 }),
    ...routes,
    log: pino({ level: 'silent' }),
    onConnection: (socket) => socket.close(),
  });
}
