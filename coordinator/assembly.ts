// The one assembly of a serving coordinator: hub, scheduler, HTTP/WebSocket server
// and dashboard feed, wired for a run. `flocktrain coordinator`, the benchmark and
// every in-process test start their coordinator here, so what the tests exercise is
// the production wiring. Dependencies run one way: the server hands sockets to the
// hub, the hub hands ready workers and their results to the scheduler, and the
// scheduler answers workers through their connections; nothing is bound late.
// Training itself (the Trainer over the scheduler) is the caller's.

import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { headerFields } from '../shared/data/hash-encoding.js';
import type { DatasetDescriptor } from '../shared/protocol/messages.js';
import { ShardComputer } from '../worker/compute.js';
import { DashboardFeed } from './dashboard.js';
import { datasetRoute } from './data/route.js';
import { Events } from './events.js';
import { Hub } from './hub.js';
import { protectedPageRoutes, publicPageRoutes } from './pages/assets.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';
import { type RouteHandler, type RunningServer, startServer } from './server.js';
import { type Recompute, StructuralVerifier, type Verifier } from './step/verifier.js';
import type { PreparedRun } from './setup.js';

/** What serving needs of a run: PreparedRun has it all (the split stays with the trainer). */
export type ServedRun = Pick<PreparedRun, 'config' | 'dataset' | 'datasetHash' | 'spec'>;

export interface CoordinatorSetup {
  readonly run: ServedRun;
  /** The weights served first (workers' welcome), and their version. */
  readonly params: Float32Array;
  readonly version: number;
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  readonly token: string;
  /** Workers to wait for, and the bounds of a task's deadline (ms). */
  readonly scheduler: Pick<SchedulerOptions, 'minWorkers' | 'taskTimeoutMinMs' | 'taskTimeoutMaxMs'>;
  /** ms a connection has to say hello. */
  readonly helloTimeoutMs: number;
  /** Ping period in ms; a worker silent for two periods is dropped. */
  readonly heartbeatMs: number;
  /** ms close() gives workers to read their stop message before the sockets are cut. */
  readonly closeGraceMs: number;
  /**
   * Builds the verifier every result passes, given a way to recompute shards here
   * with the run's kernels; default: a StructuralVerifier.
   */
  readonly verifier?: (recompute: Recompute) => Verifier;
}

/** A coordinator serving workers: its scheduler is the trainer's step executor. */
export interface RunningCoordinator {
  /** The address workers join at (a LAN address when listening on all interfaces). */
  readonly url: string;
  readonly scheduler: Scheduler;
  readonly hub: Hub;
  /** Serves /events; it shows the run once the run event is emitted. */
  readonly dashboard: DashboardFeed;
  /** Largest inbound WebSocket message accepted, in bytes. */
  readonly maxPayload: number;
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
  const scheduler = new Scheduler(events.child({ component: 'scheduler' }), paramCount, {
    ...setup.scheduler,
    wireDtype: run.config.wireDtype,
    verifier: (setup.verifier ?? ((recompute) => new StructuralVerifier(recompute)))(recomputeHere(run)),
  });
  const descriptor = datasetDescriptor(run);
  const hub = new Hub(
    {
      token: setup.token,
      datasetHash: run.datasetHash,
      limits: { paramCount, maxNodes: numShards, wireDtype: run.config.wireDtype },
      helloTimeoutMs: setup.helloTimeoutMs,
      heartbeatMs: setup.heartbeatMs,
    },
    log.child({ component: 'hub' }),
    events.child({ component: 'hub' }),
    {
      welcome: () => {
        const current = scheduler.currentWeights();
        return {
          spec: run.spec,
          dataset: descriptor,
          shardSize: run.config.shardSize,
          kernels: run.config.kernels,
          wireDtype: run.config.wireDtype,
          version: current.version,
          weights: current.weights.slice(),
        };
      },
      onReady: (w) => scheduler.onReady(w),
      onResult: (w, r, n) => scheduler.onResult(w, r, n),
      onGone: (w, why) => scheduler.onGone(w, why),
      tensorBuffer: (n) => scheduler.tensorBuffer(n),
    },
  );
  scheduler.publish(setup.version, setup.params);
  const dashboard = new DashboardFeed(events, {
    connections: () => hub.connections,
    globalStep: () => scheduler.version,
  });
  const routes = new Map<string, RouteHandler>([
    [descriptor.path, datasetRoute(run.dataset, run.datasetHash, log.child({ component: 'data' }))],
    ...protectedPageRoutes(),
    ...dashboard.routes(),
  ]);
  // A result carries at most one gradient per shard of the step, plus small fields.
  const maxPayload = paramCount * 4 * numShards + 64 * 1024;
  let server: RunningServer;
  try {
    server = await startServer({
      host: setup.host,
      port: setup.port,
      maxPayload,
      token: setup.token,
      protectedRoutes: routes,
      publicRoutes: new Map(publicPageRoutes()),
      onConnection: (socket, req) => hub.accept(socket, req),
    });
  } catch (err) {
    dashboard.close();
    hub.close();
    throw err;
  }
  const joinHost = setup.host === '0.0.0.0' || setup.host === '::' ? lanAddress() : setup.host;
  if (joinHost !== setup.host) log.info({ host: setup.host }, 'listening on all interfaces: other machines can join');
  return {
    url: `ws://${joinHost.includes(':') ? `[${joinHost}]` : joinHost}:${server.port}`,
    scheduler,
    hub,
    dashboard,
    maxPayload,
    close: async (code, reason) => {
      hub.stopAll(code, reason);
      hub.close();
      await hub.drained(setup.closeGraceMs);
      dashboard.close();
      await server.close();
    },
  };
}

/**
 * Recomputes shards with the very kernels the workers run; the computer is built on
 * first use, so a run whose results are never recomputed never pays for it.
 */
function recomputeHere(run: ServedRun): Recompute {
  let computer: ShardComputer | null = null;
  return (shards, numShards, weights) => {
    computer ??= new ShardComputer(
      run.spec,
      run.dataset,
      run.config.shardSize,
      run.config.kernels,
      run.config.wireDtype,
    );
    return computer.computeNodes(weights, shards, numShards);
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
