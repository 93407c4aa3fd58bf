// `flocktrain relay`: its flags and how they become run-relay.ts's options.

import { defineCommand, number, text, type FlagGroup } from '../../shared/node/flags.js';
import { LOG_GROUP } from '../../shared/node/log-flags.js';
import { DEFAULTS } from '../../shared/defaults.js';
import { ConfigError } from '../../shared/errors.js';
import { CONNECTION_GROUP } from '../../worker/node/command.js';
import { checkedToken } from '../auth.js';
import { SECURITY_GROUP, SERVE_GROUP, VERIFY_GROUP } from './coordinator.js';

const { relay } = DEFAULTS;
const { host, taskTimeoutMin, taskTimeoutMax, ejectAfter } = SERVE_GROUP.flags;

const FLEET_GROUP = {
  title: "The relay's own workers",
  flags: {
    host,
    port: number({
      default: relay.port,
      integer: true,
      min: 0,
      max: 65535,
      describe: "port for the relay's workers, WebSocket and HTTP (0 picks a free one)",
    }),
    minWorkers: number({
      default: 1,
      integer: true,
      min: 0,
      max: 65535,
      describe: 'workers of its own to wait for before joining the coordinator as ready',
    }),
    workerToken: text({
      describe:
        "token the relay's workers must present, at least 16 characters (default: a random one, printed at startup)",
    }),
    taskTimeoutMin,
    taskTimeoutMax,
    ejectAfter,
  },
} satisfies FlagGroup;

const { allowOrigin, dashboardToken, tokens, tlsCert, tlsKey, maxConnections, maxConnectionsPerIp, idleTimeout } =
  SECURITY_GROUP.flags;

/** The coordinator's: a relay's workers meet its server as they would a coordinator's. */
const RELAY_SECURITY_GROUP = {
  title: "Security of the relay's server",
  flags: {
    dashboardToken,
    allowOrigin: {
      ...allowOrigin,
      describe: "comma-separated origins whose pages may open worker WebSockets besides the relay's own",
    },
    tokens: {
      ...tokens,
      describe:
        'more tokens for its workers besides --worker-token, one "name token" per line; the name shows in its ' +
        'logs, its dashboard and its ban reports; removing a line revokes it ' +
        '(read again on SIGHUP and when the file changes)',
    },
    tlsCert,
    tlsKey,
    maxConnections,
    maxConnectionsPerIp,
    idleTimeout,
  },
} satisfies FlagGroup;

const RELAY_VERIFY_GROUP = {
  title: 'Verification of its workers',
  flags: { probation: VERIFY_GROUP.flags.probation, auditRate: VERIFY_GROUP.flags.auditRate },
} satisfies FlagGroup;

export const relayCommand = defineCommand({
  name: 'relay',
  summary: 'join a coordinator as one worker that computes with workers of its own',
  groups: {
    connection: CONNECTION_GROUP,
    fleet: FLEET_GROUP,
    verify: RELAY_VERIFY_GROUP,
    security: RELAY_SECURITY_GROUP,
    log: LOG_GROUP,
  },
  run: async (v) => {
    const { taskTimeoutMin: min, taskTimeoutMax: max, ejectAfter: misses, workerToken, ...serve } = v.fleet;
    if (max < min) throw new ConfigError(`--task-timeout-max must be ≥ --task-timeout-min (${min}), got ${max}`);
    const { allowOrigin: allowedOrigins, tlsCert: certFile, tlsKey: keyFile, tokens: tokensFile } = v.security;
    const { maxConnections: connections, maxConnectionsPerIp: perIp, idleTimeout } = v.security;
    if ((certFile === null) !== (keyFile === null))
      throw new ConfigError('--tls-cert and --tls-key go together: give both, or neither');
    // Loaded here, not at the top: --help need not load the server.
    const { runRelay } = await import('../relay/run-relay.js');
    return runRelay({
      ...v.connection,
      ...v.log,
      ...v.verify,
      ...serve,
      workerToken: workerToken === null ? null : checkedToken(workerToken, '--worker-token'),
      dashboardToken:
        v.security.dashboardToken === null ? null : checkedToken(v.security.dashboardToken, '--dashboard-token'),
      tokensFile,
      taskTimeoutMinMs: min,
      taskTimeoutMaxMs: max,
      ejectAfterMisses: misses,
      allowedOrigins,
      tls: certFile === null || keyFile === null ? null : { certFile, keyFile },
      limits: {
        maxConnections: connections,
        maxConnectionsPerIp: perIp,
        idleTimeoutMs: idleTimeout,
        headersTimeoutMs: idleTimeout,
      },
    });
  },
});
