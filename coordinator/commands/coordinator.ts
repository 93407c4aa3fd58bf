// `flocktrain coordinator`: its flags and how they become run-coordinator.ts's options.

import { boolean, defineCommand, mapped, number, text, type FlagGroup } from '../../shared/node/flags.js';
import { DEFAULTS } from '../../shared/defaults.js';
import { ConfigError } from '../../shared/errors.js';
import { checkedToken, normalizedOrigin } from '../auth.js';
import { checkedPrimeUrl } from '../weights-prime.js';
import { RUN_GROUPS, trainOptions } from './run-flags.js';

const { coordinator } = DEFAULTS;

export const SERVE_GROUP = {
  title: 'Serving',
  flags: {
    host: text({
      default: coordinator.host,
      describe: 'address to listen on (0.0.0.0 accepts other machines)',
    }),
    port: number({
      default: coordinator.port,
      integer: true,
      min: 0,
      max: 65535,
      describe: 'port for WebSocket and HTTP (0 picks a free one)',
    }),
    token: text({
      describe: 'token workers must present, at least 16 characters (default: a random one, printed at startup)',
    }),
    workers: number({
      default: coordinator.workers,
      integer: true,
      min: 0,
      max: 65535,
      describe: 'local worker processes to spawn',
    }),
    minWorkers: number({
      default: coordinator.minWorkers,
      integer: true,
      min: 1,
      max: 65535,
      describe: 'workers to wait for before the first step',
    }),
    taskTimeoutMin: number({
      default: coordinator.taskTimeoutMinMs,
      above: 0,
      describe: 'ms: shortest deadline of a task before its shards go to another worker',
    }),
    taskTimeoutMax: number({
      default: coordinator.taskTimeoutMaxMs,
      above: 0,
      describe: 'ms: longest deadline of a task (before any worker is measured: 10 s, within these bounds)',
    }),
    ejectAfter: number({
      default: coordinator.ejectAfterMisses,
      integer: true,
      min: 1,
      describe: 'disconnect a worker that misses this many task deadlines in a row',
    }),
    weightsOverHttp: boolean({
      default: coordinator.weightsOverHttp,
      describe:
        'publish each weights version at an immutable, public URL (/weights/<version>-<sha256>) that workers fetch, ' +
        'so an HTTP cache in front (nginx, a CDN) sends it on to them; see docs/scaling.md',
    }),
    weightsPrimeUrl: {
      ...mapped(
        text({
          describe:
            'with --weights-over-http: the HTTP cache in front as the coordinator reaches it ' +
            '(e.g. http://127.0.0.1:8080); each version is fetched through it once before any task names it, ' +
            'so no worker waits on its lock',
        }),
        (value, flag) => (value === null ? null : checkedPrimeUrl(value, `--${flag}`)),
      ),
      takes: 'http(s) URL',
    },
  },
} satisfies FlagGroup;

export const SECURITY_GROUP = {
  title: 'Security',
  flags: {
    dashboardToken: text({
      describe: 'read-only token of the dashboard: it cannot join or fetch the data (default: a random one)',
    }),
    allowOrigin: mapped(
      text({
        describe:
          'comma-separated origins (e.g. https://train.example.org) ' +
          "whose pages may open worker WebSockets besides the coordinator's own",
      }),
      (value) =>
        (value ?? '')
          .split(',')
          .map((o) => o.trim())
          .filter((o) => o !== '')
          .map(normalizedOrigin),
    ),
    tokens: text({
      describe:
        'more tokens, one "name token" per line; the name shows in logs and the dashboard; ' +
        'removing a line revokes it (read again on SIGHUP and when the file changes)',
    }),
    tlsCert: text({ describe: 'serve https and wss with this PEM certificate (chain) file; needs --tls-key' }),
    tlsKey: text({ describe: 'PEM private key of --tls-cert' }),
    maxConnections: number({
      default: coordinator.maxConnections,
      integer: true,
      min: 1,
      describe: 'open connections at most (workers, pages, downloads); more are cut at once',
    }),
    maxConnectionsPerIp: number({
      default: coordinator.maxConnectionsPerIp,
      integer: true,
      min: 1,
      describe: 'open connections at most from one IPv4 address or IPv6 /64',
    }),
    idleTimeout: number({
      default: coordinator.idleTimeoutMs,
      above: 0,
      describe: 'ms: close a connection idle (or sending its request headers) this long before it authenticates',
    }),
  },
} satisfies FlagGroup;

export const VERIFY_GROUP = {
  title: 'Verification',
  flags: {
    probation: number({
      default: coordinator.probation,
      integer: true,
      min: 0,
      describe:
        "a new or reconnected worker's first results, each recomputed here and compared bit for bit before it counts",
    }),
    auditRate: number({
      default: coordinator.auditRate,
      min: 0,
      max: 1,
      describe:
        'past probation, the lowest fraction of results recomputed and compared after they count; ' +
        'a mismatch bans the worker and undoes its steps',
    }),
    rollbackSnapshots: number({
      default: coordinator.rollbackSnapshots,
      integer: true,
      min: 2,
      describe: 'states before recent steps kept to roll back to when a forger is found (older ones thinned out)',
    }),
  },
} satisfies FlagGroup;

export const coordinatorCommand = defineCommand({
  name: 'coordinator',
  summary: 'serve workers over WebSocket and train with them',
  groups: { ...RUN_GROUPS, serve: SERVE_GROUP, verify: VERIFY_GROUP, security: SECURITY_GROUP },
  run: async (v) => {
    const { taskTimeoutMin, taskTimeoutMax, ejectAfter, token, ...serve } = v.serve;
    const { dashboardToken, allowOrigin, tlsCert, tlsKey, idleTimeout, tokens, ...caps } = v.security;
    if (taskTimeoutMax < taskTimeoutMin)
      throw new ConfigError(
        `--task-timeout-max must be ≥ --task-timeout-min (${taskTimeoutMin}), got ${taskTimeoutMax}`,
      );
    if (serve.weightsPrimeUrl !== null && !serve.weightsOverHttp)
      throw new ConfigError(
        '--weights-prime-url fills the cache workers fetch the weights from: it needs --weights-over-http',
      );
    if ((tlsCert === null) !== (tlsKey === null))
      throw new ConfigError('--tls-cert and --tls-key go together: give both, or neither');
    const options = {
      ...trainOptions(v),
      ...serve,
      token: token === null ? null : checkedToken(token, '--token'),
      dashboardToken: dashboardToken === null ? null : checkedToken(dashboardToken, '--dashboard-token'),
      allowedOrigins: allowOrigin,
      tokensFile: tokens,
      tls: tlsCert === null || tlsKey === null ? null : { certFile: tlsCert, keyFile: tlsKey },
      limits: { ...caps, idleTimeoutMs: idleTimeout, headersTimeoutMs: idleTimeout },
      ...v.verify,
      taskTimeoutMinMs: taskTimeoutMin,
      taskTimeoutMaxMs: taskTimeoutMax,
      ejectAfterMisses: ejectAfter,
    };
    // Loaded here, not at the top: --help need not load the server.
    const { runCoordinator } = await import('../run-coordinator.js');
    return runCoordinator(options);
  },
});
