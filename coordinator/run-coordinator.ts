// `flocktrain coordinator`: serves workers over WebSocket, trains with them, and
// (with --workers N) spawns N local worker processes. Prints the command with which
// more workers can join from other machines.

import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism, networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { headerFields } from '../shared/data/hash-encoding.js';
import { CloseCode } from '../shared/protocol/codes.js';
import type { DatasetDescriptor } from '../shared/protocol/messages.js';
import { generateToken } from './auth.js';
import { DashboardFeed } from './dashboard.js';
import type { CoordinatorOptions } from './cli.js';
import { Hub } from './hub.js';
import { createLogger } from './logger.js';
import { writeModelFile } from './model-file.js';
import { protectedPageRoutes, publicPageRoutes } from './pages/assets.js';
import { trainerOptions } from './run-train.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';
import { startServer, type RouteHandler } from './server.js';
import { prepareRun, type PreparedRun } from './setup.js';
import { DivergedError, Trainer } from './trainer.js';
import { allNodesFinite, ShardComputer } from '../worker/compute.js';

const HELLO_TIMEOUT_MS = 10_000;
const HEARTBEAT_MS = 5_000;
// Browser tabs on a busy link can take seconds to read their last frames.
const CLOSE_GRACE_MS = 5_000;

export interface NetworkOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly scheduler: Partial<SchedulerOptions>;
  /** Serves /events from this feed (it must also be a destination of `log`); without one, /dashboard shows no run. */
  readonly dashboard?: DashboardFeed;
}

/** A coordinator serving workers: its scheduler is the trainer's step executor. */
export interface ServingCoordinator {
  readonly url: string;
  readonly scheduler: Scheduler;
  readonly hub: Hub;
  /** Tells the workers to stop and closes the server. */
  close(code: number, reason: string): Promise<void>;
}

/** Starts serving `params` as weights `version`; workers may connect from now on. */
export async function startCoordinator(
  run: PreparedRun,
  params: Float32Array,
  version: number,
  options: NetworkOptions,
  log: Logger,
): Promise<ServingCoordinator> {
  const paramCount = params.length;
  const numShards = Math.ceil(run.config.batchSize / run.config.shardSize);
  const scheduler = new Scheduler(log.child({ component: 'scheduler' }), paramCount, {
    ...options.scheduler,
    wireDtype: run.config.wireDtype,
    confirmDivergence: divergenceJudge(run),
  });
  const descriptor = datasetDescriptor(run);
  const hub = new Hub(
    {
      token: options.token,
      datasetHash: run.datasetHash,
      limits: { paramCount, maxNodes: numShards, wireDtype: run.config.wireDtype },
      helloTimeoutMs: HELLO_TIMEOUT_MS,
      heartbeatMs: HEARTBEAT_MS,
    },
    log.child({ component: 'hub' }),
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
  scheduler.attach({ reject: (w, reason, detail) => hub.reject(w, reason, detail) });
  scheduler.publish(version, params);
  const routes = new Map<string, RouteHandler>([
    [descriptor.path, dataRoute(run)],
    ...protectedPageRoutes(),
    ...(options.dashboard?.routes() ?? []),
  ]);
  // A result carries at most one gradient per shard of the step, plus small fields.
  const maxPayload = paramCount * 4 * numShards + 64 * 1024;
  const server = await startServer({
    host: options.host,
    port: options.port,
    maxPayload,
    token: options.token,
    protectedRoutes: routes,
    publicRoutes: new Map(publicPageRoutes()),
    onConnection: (socket, req) => hub.accept(socket, req),
  });
  options.dashboard?.attach({ connections: () => hub.connections, globalStep: () => scheduler.version });
  const joinHost = options.host === '0.0.0.0' || options.host === '::' ? lanAddress() : options.host;
  if (joinHost !== options.host)
    log.info({ host: options.host }, 'listening on all interfaces: other machines can join');
  return {
    url: `ws://${joinHost.includes(':') ? `[${joinHost}]` : joinHost}:${server.port}`,
    scheduler,
    hub,
    close: async (code, reason) => {
      hub.stopAll(code, reason);
      hub.close();
      // Give workers a moment to receive the close frame before sockets are cut.
      const deadline = Date.now() + CLOSE_GRACE_MS;
      while (hub.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      options.dashboard?.close();
      await server.close();
    },
  };
}

export async function runCoordinator(options: CoordinatorOptions): Promise<number> {
  const dashboard = new DashboardFeed();
  const log = createLogger(options.logFormat, options.logLevel, 'flocktrain', dashboard.stream);
  const run = prepareRun(options.config);
  const trainerOpts = trainerOptions(run, options, log);
  const params = trainerOpts.initialParams;
  const token = options.token ?? generateToken();
  const coordinator = await startCoordinator(
    run,
    params,
    trainerOpts.resume?.state.version ?? 0,
    {
      host: options.host,
      port: options.port,
      token,
      scheduler: {
        minWorkers: options.minWorkers,
        taskTimeoutMinMs: options.taskTimeoutMinMs,
        taskTimeoutMaxMs: options.taskTimeoutMaxMs,
      },
      dashboard,
    },
    log,
  );
  const { url, scheduler } = coordinator;
  // The join link opens the worker page (a browser tab becomes a worker); the dashboard sits beside it.
  const page = `${url.replace(/^ws/, 'http')}/`;
  log.info(
    {
      url,
      token,
      command: `npx flocktrain worker --url ${url} --token ${token}`,
      link: `${page}?token=${token}`,
      dashboard: `${page}dashboard?token=${token}`,
    },
    'join',
  );
  log.info(
    {
      dataset: run.dataset.name,
      datasetHash: run.datasetHash,
      train: run.split.train.length,
      val: run.split.val.length,
      spec: run.spec,
      config: run.config,
    },
    'run',
  );

  const trainer = new Trainer(run, scheduler, log, trainerOpts);
  const children = spawnLocalWorkers(options.workers, url, token, log);
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    log.warn('interrupted: stopping after the current step');
    trainer.requestStop();
    if (interrupts > 1) scheduler.cancel('interrupted');
    else scheduler.cancelWhenStarved('interrupted');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code = 0;
  let interrupted = false;
  try {
    const summary = await trainer.train();
    interrupted = summary.interrupted;
    if (options.out !== null) writeModelFile(options.out, run.spec, trainer.params, run.config, summary.weightsHash);
    log.info({ ...summary, out: options.out }, 'done');
  } catch (err) {
    if (!(err instanceof DivergedError)) throw err;
    log.error({ err: err.message }, 'diverged');
    code = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Interrupted: remote workers keep trying to reconnect, for a resumed coordinator.
    if (interrupted) await coordinator.close(CloseCode.SHUTDOWN, 'coordinator interrupted');
    else await coordinator.close(CloseCode.DONE, 'training finished');
    // Connected workers got the stop message and exit by themselves; any still starting
    // up (never connected) are told by signal.
    await waitForExit(children, 1500, 'SIGTERM');
    await waitForExit(children, 3000, 'SIGKILL');
  }
  return code;
}

/**
 * Recomputes a task's shards with the very kernels the workers run (built on first
 * use: a run that never diverges never pays for it) and says whether the gradient is
 * non-finite here too.
 */
function divergenceJudge(run: PreparedRun): NonNullable<SchedulerOptions['confirmDivergence']> {
  let computer: ShardComputer | null = null;
  return (shards, numShards, weights, step) => {
    computer ??= new ShardComputer(
      run.spec,
      run.dataset,
      run.config.shardSize,
      run.config.kernels,
      run.config.wireDtype,
    );
    return !allNodesFinite(computer.computeNodes(weights, shards, numShards, step));
  };
}

function datasetDescriptor(run: PreparedRun): DatasetDescriptor {
  return { ...headerFields(run.dataset), hash: run.datasetHash, path: `/data/${run.datasetHash}` };
}

/** The dataset body: features then labels, raw little-endian float32. */
function dataRoute(run: PreparedRun): RouteHandler {
  const { features, labels } = run.dataset;
  const f = new Uint8Array(features.buffer, features.byteOffset, features.byteLength);
  const l = new Uint8Array(labels.buffer, labels.byteOffset, labels.byteLength);
  return (_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': f.byteLength + l.byteLength,
      'cache-control': 'no-store',
    });
    res.write(f);
    res.end(l);
  };
}

function lanAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export function spawnLocalWorkers(count: number, url: string, token: string, log: Logger): ChildProcess[] {
  const cli = fileURLToPath(new URL('./cli.js', import.meta.url));
  // The workers share this machine's cores: more compute threads than cores only
  // adds switching and messages (same bits either way).
  const threads = String(Math.max(1, Math.floor(availableParallelism() / Math.max(1, count))));
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    const child = spawn(
      process.execPath,
      [
        cli,
        'worker',
        '--url',
        url,
        '--token',
        token,
        '--name',
        `local-${i + 1}`,
        '--threads',
        threads,
        '--log-format',
        'json',
        '--log-level',
        'warn',
      ],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
        // Own process group: a Ctrl-C in the terminal reaches the coordinator, which
        // finishes the step and then stops its workers itself.
        detached: true,
      },
    );
    child.on('exit', (code, signal) => {
      if (code !== 0) log.warn({ worker: `local-${i + 1}`, code, signal }, 'local worker exited');
    });
    children.push(child);
  }
  if (count > 0) log.info({ count, threads: Number(threads) }, 'spawned local workers');
  return children;
}

/** Waits for the children to exit; those still running after timeoutMs get `signal`. */
export async function waitForExit(
  children: ChildProcess[],
  timeoutMs: number,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => {
            child.kill(signal);
            resolve();
          }, timeoutMs);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    ),
  );
}
