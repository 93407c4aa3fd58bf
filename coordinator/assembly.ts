// The one assembly of a serving coordinator: hub, scheduler, HTTP/WebSocket server
// and dashboard feed, wired for a run. `flocktrain coordinator`, the benchmark and
// every in-process test start their coordinator here, so what the tests exercise is
// the production wiring. Dependencies run one way: the server hands sockets to the
// hub, the hub hands ready workers and their results to the scheduler, and the
// scheduler answers workers through their connections; nothing is bound late.
// Training itself (the Trainer over the scheduler) is the caller's.

import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { DEFAULTS } from '../shared/defaults.js';
import { headerFields } from '../shared/data/hash-encoding.js';
import type { DatasetDescriptor } from '../shared/protocol/messages.js';
import { ShardComputer } from '../worker/compute.js';
import { DashboardFeed, StepCounter } from './dashboard.js';
import { FailedTokenThrottle, generateToken, TokenBook } from './auth.js';
import { datasetRoute } from './data/route.js';
import { Events } from './events.js';
import { Hub } from './hub.js';
import { dashboardPageRoutes, publicPageRoutes } from './pages/assets.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';
import { type RouteHandler, type RunningServer, type ServerLimits, startServer, type TlsPem } from './server.js';
import { type AuditOptions, AuditingVerifier } from './step/auditor.js';
import { type Recompute, StructuralVerifier, type Verifier } from './step/verifier.js';
import type { PreparedRun } from './setup.js';
import { WeightsPrimer } from './weights-prime.js';
import { WEIGHTS_PREFIX, type WeightsServed, WeightsStore } from './weights-route.js';

/**
 * What serving needs of a run: PreparedRun has it all (the split stays with the
 * trainer); a relay has only what its coordinator's welcome says.
 */
export interface ServedRun extends Pick<PreparedRun, 'dataset' | 'datasetHash' | 'spec'> {
  readonly config: Pick<PreparedRun['config'], 'batchSize' | 'shardSize' | 'kernels' | 'wireDtype'>;
}

export interface CoordinatorSetup {
  readonly run: ServedRun;
  /** The weights served first (sent to each worker once it is ready), and their version. */
  readonly params: Float32Array;
  /** null: nothing is served until the scheduler's first publish (`params` then only size the model). */
  readonly version: number | null;
  /** The trainer's global step at those weights (a resumed run's); default `version`, as with no rollback behind it. */
  readonly globalStep?: number;
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  readonly token: string;
  /** Named tokens besides it (name → token), replaceable while serving (replaceTokens). */
  readonly namedTokens?: ReadonlyMap<string, string>;
  /** The dashboard's read-only token (its event stream only); default: a random one. */
  readonly dashboardToken?: string;
  /** Workers to wait for, the bounds of a task's deadline (ms), and the misses in a row that eject a worker. */
  readonly scheduler: Pick<
    SchedulerOptions,
    'minWorkers' | 'taskTimeoutMinMs' | 'taskTimeoutMaxMs' | 'ejectAfterMisses'
  >;
  /** What peers without a token can make the coordinator hold; each default: DEFAULTS.coordinator's. */
  readonly limits?: Partial<ServerLimits>;
  /** Serve https and wss with this certificate; default: http and ws. */
  readonly tls?: TlsPem | null;
  /** Origins, besides the coordinator's own, whose pages may open a worker WebSocket. */
  readonly allowedOrigins?: readonly string[];
  /** ms a connection has to say hello. */
  readonly helloTimeoutMs: number;
  /** Ping period in ms; a worker silent for two periods is dropped. */
  readonly heartbeatMs: number;
  /** ms close() gives workers to read their stop message before the sockets are cut. */
  readonly closeGraceMs: number;
  /**
   * Builds the verifier every result passes, given a way to recompute shards here
   * with the run's kernels; default: an AuditingVerifier with `audit`, or without it
   * a StructuralVerifier (no recomputation but of claims of divergence).
   */
  readonly verifier?: (recompute: Recompute) => Verifier;
  /** Probation and audit rate of the default verifier. */
  readonly audit?: AuditOptions;
  /**
   * Publish each weights version at /weights/<version>-<sha256> (public, immutable) for workers to fetch, so an
   * HTTP cache in front fans it out; default false: the weights ride in the task messages.
   */
  readonly weightsOverHttp?: boolean;
  /**
   * With weightsOverHttp, the origin of the HTTP cache in front as this process reaches it (checkedPrimeUrl's): each
   * version is fetched through it before any task names it, so no worker waits on the cache's lock. Default: none.
   */
  readonly weightsPrimeUrl?: string | null;
}

/** A coordinator serving workers: its scheduler is the trainer's step executor. */
export interface RunningCoordinator {
  /** The address workers join at (a LAN address when listening on all interfaces): ws:// or wss://. */
  readonly url: string;
  /** The same address as http:// or https://, ending in '/': the worker page. */
  readonly pageUrl: string;
  /** The dashboard's read-only token. */
  readonly dashboardToken: string;
  readonly scheduler: Scheduler;
  readonly hub: Hub;
  /** Serves /events; it shows the run once the run event is emitted. */
  readonly dashboard: DashboardFeed;
  /** Largest inbound WebSocket message accepted, in bytes. */
  readonly maxPayload: number;
  /** What /weights/ has answered so far; null when the weights are not served over HTTP. */
  weightsServed(): WeightsServed | null;
  /**
   * Makes `named` the named tokens; workers that joined with a token no longer there
   * are disconnected. Returns the revoked names.
   */
  replaceTokens(named: ReadonlyMap<string, string>): string[];
  /** Tells the workers to stop, waits for them to go (at most closeGraceMs), and closes the server. */
  close(code: number, reason: string): Promise<void>;
}

/**
 * Starts serving `setup.params` as weights `setup.version`; workers may connect from
 * now on. `events`: where the hub and scheduler announce what happens (and what the
 * dashboard listens to); the trainer should emit into the same.
 */
export async function startCoordinator(
  setup: CoordinatorSetup,
  log: Logger,
  events: Events = new Events(log),
): Promise<RunningCoordinator> {
  const { run } = setup;
  const paramCount = setup.params.length;
  const numShards = Math.ceil(run.config.batchSize / run.config.shardSize);
  // Made by the scheduler's broadcaster (so it counts into the scheduler's bytes), served by the server below.
  let weightsStore = null as WeightsStore | null;
  let primer = null as WeightsPrimer | null;
  const scheduler = new Scheduler(events.child({ component: 'scheduler' }), paramCount, {
    ...setup.scheduler,
    wireDtype: run.config.wireDtype,
    verifier: (setup.verifier ?? defaultVerifier(setup.audit))(recomputeHere(run)),
    ...(setup.weightsOverHttp === true
      ? {
          weightsOverHttp: (counters) => {
            const store = new WeightsStore(
              DEFAULTS.coordinator.weightsVersionsKept,
              log.child({ component: 'weights' }),
              counters,
            );
            weightsStore = store;
            const url = setup.weightsPrimeUrl ?? null;
            if (url === null) return store;
            const timeoutMs = DEFAULTS.coordinator.weightsPrimeTimeoutMs;
            primer = new WeightsPrimer(store, { url, timeoutMs, log: log.child({ component: 'weights' }) });
            return primer;
          },
        }
      : {}),
  });
  const descriptor = datasetDescriptor(run);
  const limits = serverLimits(setup.limits);
  const tokens = new TokenBook(setup.token, setup.namedTokens);
  const throttle = new FailedTokenThrottle({
    baseMs: DEFAULTS.coordinator.failedTokenDelayMs,
    maxMs: DEFAULTS.coordinator.failedTokenMaxDelayMs,
    forgetMs: 10 * 60_000,
    maxAddresses: 10_000,
  });
  // A result carries at most one gradient per shard of the step, plus small fields.
  const maxPayload = paramCount * 4 * numShards + 64 * 1024;
  const hub = new Hub(
    {
      tokens,
      throttle,
      maxPayload,
      // A few weights messages: a worker busy computing reads late, one that never reads is cut.
      maxBufferedBytes: 4 * paramCount * 4 + (1 << 20),
      datasetHash: run.datasetHash,
      limits: { paramCount, maxNodes: numShards, wireDtype: run.config.wireDtype },
      helloTimeoutMs: setup.helloTimeoutMs,
      heartbeatMs: setup.heartbeatMs,
    },
    log.child({ component: 'hub' }),
    events.child({ component: 'hub' }),
    {
      // No weights: the scheduler sends them once the worker is ready (onReady).
      welcome: () => ({
        spec: run.spec,
        dataset: descriptor,
        shardSize: run.config.shardSize,
        kernels: run.config.kernels,
        wireDtype: run.config.wireDtype,
      }),
      onReady: (w) => scheduler.onReady(w),
      onResult: (w, r, n) => scheduler.onResult(w, r, n),
      onDigest: (w, d) => scheduler.onDigest(w, d),
      onGone: (w, why) => scheduler.onGone(w, why),
      tensorBuffer: (n) => scheduler.tensorBuffer(n),
    },
  );
  if (setup.version !== null) scheduler.publish(setup.version, setup.params);
  // The trainer's step, not the weights version: a rollback publishes a version and takes steps back.
  const steps = new StepCounter(events, () => scheduler.version, setup.globalStep ?? setup.version ?? 0);
  const dashboard = new DashboardFeed(events, {
    connections: () => hub.connections,
    globalStep: () => steps.step,
  });
  const dashboardToken = setup.dashboardToken ?? generateToken();
  let server: RunningServer;
  try {
    server = await startServer({
      host: setup.host,
      port: setup.port,
      limits,
      tls: setup.tls ?? null,
      tokens,
      dashboardToken,
      throttle,
      protectedRoutes: new Map<string, RouteHandler>([
        [descriptor.path, datasetRoute(run.dataset, run.datasetHash, log.child({ component: 'data' }))],
      ]),
      dashboardRoutes: new Map(dashboard.routes()),
      // The dashboard page is code, like the worker page: its token stays in the address
      // bar's fragment, and only its event stream is behind a token.
      publicRoutes: new Map([...publicPageRoutes(), ...dashboardPageRoutes()]),
      cacheableRoutes: new Map(weightsStore === null ? [] : [[WEIGHTS_PREFIX, weightsStore.route()]]),
      allowedOrigins: setup.allowedOrigins ?? [],
      log: log.child({ component: 'server' }),
      onConnection: (socket, req) => hub.accept(socket, req),
    });
  } catch (err) {
    dashboard.close();
    steps.close();
    hub.close();
    throw err;
  }
  const joinHost = setup.host === '0.0.0.0' || setup.host === '::' ? lanAddress() : setup.host;
  if (joinHost !== setup.host) log.info({ host: setup.host }, 'listening on all interfaces: other machines can join');
  const hostPort = `${joinHost.includes(':') ? `[${joinHost}]` : joinHost}:${server.port}`;
  return {
    url: `${server.scheme === 'https' ? 'wss' : 'ws'}://${hostPort}`,
    pageUrl: `${server.scheme}://${hostPort}/`,
    dashboardToken,
    scheduler,
    hub,
    dashboard,
    replaceTokens: (named) => {
      const revoked = tokens.replace(named);
      hub.revoke(revoked);
      return revoked;
    },
    maxPayload,
    weightsServed: () => (weightsStore === null ? null : { ...weightsStore.served }),
    close: async (code, reason) => {
      primer?.close();
      hub.stopAll(code, reason);
      hub.close();
      await hub.drained(setup.closeGraceMs);
      dashboard.close();
      steps.close();
      await server.close();
      // With a cache in front, maxBodiesPerVersion is 1: each version left this process once.
      if (weightsStore !== null) log.info({ ...weightsStore.served }, 'weights served over HTTP');
    },
  };
}

function defaultVerifier(audit: AuditOptions | undefined): (recompute: Recompute) => Verifier {
  return (recompute) =>
    audit === undefined ? new StructuralVerifier(recompute) : new AuditingVerifier(recompute, audit);
}

/**
 * Recomputes shards with the very kernels the workers run; the computer is built on
 * first use, so a run whose results are never recomputed never pays for it.
 */
function recomputeHere(run: ServedRun): Recompute {
  let computer: ShardComputer | null = null;
  return (shards, numShards, weights, step) => {
    computer ??= new ShardComputer(
      run.spec,
      run.dataset,
      run.config.shardSize,
      run.config.kernels,
      run.config.wireDtype,
    );
    return computer.computeNodes(weights, shards, numShards, step);
  };
}

function serverLimits(given: Partial<ServerLimits> = {}): ServerLimits {
  const d = DEFAULTS.coordinator;
  return {
    preHelloMaxBytes: d.preHelloMaxBytes,
    headersTimeoutMs: d.headersTimeoutMs,
    idleTimeoutMs: d.idleTimeoutMs,
    keepAliveTimeoutMs: d.keepAliveTimeoutMs,
    maxConnections: d.maxConnections,
    maxConnectionsPerIp: d.maxConnectionsPerIp,
    ...given,
  };
}

function datasetDescriptor(run: ServedRun): DatasetDescriptor {
  return { ...headerFields(run.dataset), hash: run.datasetHash, path: `/data/${run.datasetHash}` };
}

function lanAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
